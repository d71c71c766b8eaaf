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
from collections.abc import Mapping
from pathlib import Path

import attrs

from lowentropy.retrieval.languages import language_for
from lowentropy.retrieval.walker import Walker, read_text

from .propagate import Candidate, FileText

MAX_FILES = 20_000
SCAN_SECONDS = 2.0  # a scan gives up after this long (huge workspaces)
_CACHE = 4096


@attrs.frozen(kw_only=True)
class Jump:
    uri: str
    offset: int  # in the target document's text after the primary edit (same file) or now


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


def next_jump(ordered: list[Candidate], primary: Candidate | None) -> Jump | None:
    """The place after `primary` (or the first place when there is no primary edit).

    In the primary edit's own file, offsets after it shift by the edit's length change.
    """
    rest = [c for c in ordered if c is not primary]
    if not rest:
        return None
    nxt = rest[0]
    offset = nxt.start
    if primary is not None and primary.new is not None and nxt.uri == primary.uri:
        if nxt.start >= primary.end:
            offset += len(primary.new) - (primary.end - primary.start)
    return Jump(uri=nxt.uri, offset=offset)
