"""The server's copy of each open document, kept exactly as LSP defines its edits.

pygls's `TextDocument` splits lines with `str.splitlines` (breaking also at form
feed, NEL, U+2028, ...), so an edit after such a character landed on the wrong line
("return 3\\n4"); and it clamps a past-the-end column one character short on a last
line. Here lines break at "\\n", "\\r\\n" and "\\r" only and a change's range is
resolved with `positions.offset_at`, the one conversion every feature uses.

Positions are negotiated as UTF-16 whatever the client offers first (the LSP
default every client must support): features count UTF-16 columns, and one
encoding everywhere cannot disagree with itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from .positions import line_starts, offset_at, split_lines

__all__ = ["LspTextDocument", "LspWorkspace", "adopt", "apply_change", "utf16_only"]


def apply_change(text: str, change: types.TextDocumentContentChangeEvent) -> str:
    """`text` after one didChange content change (a range with UTF-16 columns, or all)."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return change.text
    starts = line_starts(text)
    a = offset_at(text, change.range.start.line, change.range.start.character, starts)
    b = offset_at(text, change.range.end.line, change.range.end.character, starts)
    a, b = min(a, b), max(a, b)
    return text[:a] + change.text + text[b:]


class LspTextDocument(TextDocument):
    """pygls's document with LSP's line breaks and range arithmetic."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(split_lines(self.source, keepends=True))

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        self._source = apply_change(self.source, change)


class _ByUri(dict[str, TextDocument]):
    """Documents by URI, found whether a caller's URI is percent-encoded or not: pygls
    keys them unquoted, features look them up by the client's (quoted) URI, and a path
    with a space or a non-ASCII character was an "unknown document"."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(unquote(key), default)

    def __getitem__(self, key: str) -> TextDocument:
        return super().__getitem__(unquote(key))

    def __contains__(self, key: object) -> bool:
        return super().__contains__(unquote(key) if isinstance(key, str) else key)


class LspWorkspace(Workspace):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._text_documents = _ByUri()

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LspTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self._position_codec,
        )


def utf16_only(capabilities: types.ClientCapabilities) -> None:
    """Leave UTF-16 the only encoding pygls can choose from the client's offer."""
    if capabilities.general is not None and capabilities.general.position_encodings:
        capabilities.general.position_encodings = [types.PositionEncodingKind.Utf16]


def adopt(workspace: Workspace) -> LspWorkspace:
    """`workspace` (just made by pygls, holding no document yet) as an `LspWorkspace`."""
    return LspWorkspace(
        workspace.root_uri,
        workspace._sync_kind,
        list(workspace.folders.values()),
        types.PositionEncodingKind.Utf16,
    )
