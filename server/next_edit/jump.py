"""Where to go next: the location after an accepted edit, in this file or another.

Other files are found by a scan of the workspace for the identifier that the
edit changed (a renamed definition, a function whose parameters changed): the
`Walker` picks the files (it respects .gitignore and never yields secrets), a
plain substring test skips most of them, and tree-sitter then finds the real
references (`propagate.py`). Open documents are read from the editor's text,
not the disk. The scan runs in a worker thread; file texts are cached by
modification time so a scan after the first reads only what changed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from lowentropy.retrieval.syntax import language_for
from lowentropy.retrieval.walker import Walker, read_text

from .propagate import Candidate, FileText

MAX_FILES = 20_000
SCAN_SECONDS = 2.0  # a scan gives up after this long (huge workspaces)
_CACHE = 4096


@attrs.frozen(kw_only=True)
class Jump:
    uri: str
    offset: int  # in the target document's text after the answer's edits in it (or now)


class WorkspaceFiles:
    """Texts of workspace files by identifier, off the event loop (call from a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.walker = Walker(root)
        self._texts: OrderedDict[str, tuple[int, int, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def _text(self, rel: str, path: Path, size: int, mtime_ns: int) -> str | None:
        with self._lock:
            hit = self._texts.get(rel)
            if hit is not None and hit[0] == mtime_ns and hit[1] == size:
                self._texts.move_to_end(rel)
                return hit[2]
        text = read_text(path)
        with self._lock:
            self._texts[rel] = (mtime_ns, size, text)
            if len(self._texts) > _CACHE:
                self._texts.popitem(last=False)
        return text

    def containing(
        self, word: str, language: str, open_docs: Mapping[str, str], exclude: set[str]
    ) -> list[FileText]:
        """Files of `language` whose text mentions `word` (open documents as edited)."""
        out: list[FileText] = []
        seen: set[str] = set()
        for uri, text in open_docs.items():
            if uri in exclude or not uri.startswith("file:"):
                continue
            lang = language_for(uri)
            seen.add(uri)
            if lang == language and word in text:
                out.append(FileText(uri=uri, text=text, language=lang))
        deadline = time.monotonic() + SCAN_SECONDS
        for n, entry in enumerate(self.walker.walk()):
            if n >= MAX_FILES or time.monotonic() > deadline:
                break
            if language_for(entry.rel) != language:
                continue
            uri = entry.path.as_uri()
            if uri in seen or uri in exclude:
                continue
            found = self._text(entry.rel, entry.path, entry.size, entry.mtime_ns)
            if found is not None and word in found:
                out.append(FileText(uri=uri, text=found, language=language))
        return out


def next_jump(ordered: Sequence[Candidate], applied: Sequence[Candidate]) -> Jump | None:
    """The first place of `ordered` that is not one of the `applied` edits.

    In the applied edits' own file, its offset is in the text after them: it shifts
    by the length change of each edit that ends at or before it.
    """
    rest = [c for c in ordered if c not in applied]
    if not rest:
        return None
    nxt = rest[0]
    offset = nxt.start
    for e in applied:
        if e.new is not None and e.uri == nxt.uri and e.end <= nxt.start:
            offset += len(e.new) - (e.end - e.start)
    return Jump(uri=nxt.uri, offset=offset)


def apply_edits(text: str, uri: str, edits: Sequence[Candidate]) -> str:
    """`text` (the document `uri`) with those of `edits` that are in it applied."""
    out = text
    for e in sorted(
        (e for e in edits if e.uri == uri and e.new is not None), key=_start_key, reverse=True
    ):
        assert e.new is not None
        out = out[: e.start] + e.new + out[e.end :]
    return out


def _start_key(c: Candidate) -> tuple[int, int]:
    return (c.start, c.end)
