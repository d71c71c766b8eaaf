"""Document state beyond pygls' text: versions, a bounded edit history, cheap offset lookups.

The text lives in the workspace (`text_model.LspTextDocument`, which applies the
incremental changes); this module keeps what the features need on every keystroke
without re-splitting the whole file each time (a line index computed once per
version, with LSP's line breaks).
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import attrs
import numpy as np

from .positions import codepoints_to_utf16, utf16_to_codepoints

if TYPE_CHECKING:
    from lsprotocol import types

__all__ = [
    "MAX_DOCUMENT_CHARS",
    "DocumentState",
    "Edit",
    "LineIndex",
    "codepoints_to_utf16",  # re-exported: callers convert columns through `positions`
    "utf16_to_codepoints",
]

MAX_HISTORY = 64
# Files larger than this get no completions: every keystroke would cost O(size).
MAX_DOCUMENT_CHARS = 4_000_000


@attrs.frozen(kw_only=True)
class Edit:
    """One content change as the client sent it (LSP range in the text before the change)."""

    version: int
    start_line: int
    start_character: int
    end_line: int
    end_character: int
    text: str
    at: float


class LineIndex:
    """Line starts of one text, for O(log n) offset <-> (line, column) conversion.

    Lines break where LSP breaks them: "\\n", "\\r\\n" and a lone "\\r" (see `positions`).
    Built with numpy (a vectorised search, ~0.04 ms for 250 KB against ~0.6 ms in a
    Python loop): it runs once per document version, so once per keystroke.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        if text.isascii():
            chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        else:
            chars = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        lf = chars == 10
        cr_alone = (chars == 13) & ~np.concatenate((lf[1:], [False]))
        self.starts = np.concatenate(([0], np.flatnonzero(lf | cr_alone) + 1))

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def line(self, n: int) -> str:
        """Line n without its line break."""
        start = int(self.starts[n])
        end = int(self.starts[n + 1]) if n + 1 < len(self.starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")  # a line holds one break, at its end

    def offset(self, line: int, column: int) -> int:
        return int(self.starts[line]) + column

    def position(self, offset: int) -> tuple[int, int]:
        line = int(np.searchsorted(self.starts, offset, side="right")) - 1
        return line, offset - int(self.starts[line])


@attrs.define
class DocumentState:
    uri: str
    version: int = 0
    language_id: str = ""
    history: deque[Edit] = attrs.field(factory=lambda: deque(maxlen=MAX_HISTORY))
    last_edit_at: float = 0.0
    last_edit_offset: int | None = None
    _index: LineIndex | None = None
    _index_version: int = -1

    def index(self, text: str) -> LineIndex:
        if (
            self._index is None
            or self._index_version != self.version
            or self._index.text is not text
        ):
            self._index = LineIndex(text)
            self._index_version = self.version
        return self._index

    def record_change(self, version: int, change: types.TextDocumentContentChangeEvent) -> None:
        """Remember one change event; the history feeds prompts, never edits."""
        self.version = version
        now = time.monotonic()
        range_ = getattr(change, "range", None)
        if range_ is not None:
            self.history.append(
                Edit(
                    version=version,
                    start_line=range_.start.line,
                    start_character=range_.start.character,
                    end_line=range_.end.line,
                    end_character=range_.end.character,
                    text=change.text,
                    at=now,
                )
            )
        self.last_edit_at = now
