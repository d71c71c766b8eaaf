"""Document sync that survives a client sending `didChange` out of version order.

Helix 25.01 sends a burst of typed characters as notifications that can reach the
server out of order (seen in its own log: versions 2, 5, 6, 3, 4 within one
millisecond, while the server was answering a completion). Incremental changes
applied in arrival order corrupt the server's copy of the buffer, and every
suggestion and edit made from it is then wrong.

Versions cannot be required to grow by one (Neovim's are its `changedtick`, which
skips), so a gap says nothing; a change *older* than one already applied does.
Each document keeps the text as it was before its recent changes and those
changes; a late one is put in its place and the text rebuilt in version order.
The log restarts after a quiet moment or a few dozen changes, so it stays small.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Generator
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from .text_model import LspWorkspace, adopt, utf16_only

log = logging.getLogger(__name__)

REORDER_WINDOW_S = 2.0  # a change this long after the previous one starts a new log
MAX_LOGGED = 64  # changes kept per document; older ones cannot be reordered any more


@attrs.define
class ChangeLog:
    """One document's text before its recent changes, and those changes by version."""

    base: str
    base_version: int | None
    changes: list[tuple[int, list[types.TextDocumentContentChangeEvent]]] = attrs.field(
        factory=list
    )
    at: float = 0.0

    @property
    def last_version(self) -> int | None:
        return self.changes[-1][0] if self.changes else self.base_version


class OrderedSyncProtocol(LanguageServerProtocol):
    """pygls's protocol with `didChange` applied in version order (see the module doc),
    LSP's document model and UTF-16 positions (`text_model`), and quiet error answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.change_logs: dict[str, ChangeLog] = {}
        self.reordered = 0  # late changes put back in order, for stats and tests
        self.dropped = 0  # changes too late to place (older than the log), ignored

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        """pygls's initialize, negotiating UTF-16 positions and LSP's line breaks (text_model)."""
        utf16_only(params.capabilities)
        inner = super().lsp_initialize(params)
        value = None
        while True:
            try:
                step = inner.send(value)
            except StopIteration as stop:
                self._adopt_workspace()
                result: types.InitializeResult = stop.value
                return result
            self._adopt_workspace()  # made before the first step; no document in it yet
            value = yield step

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        """A handler's deliberate JSON-RPC error (superseded, stale, invalid) is answered
        with one log line; pygls logs a traceback for each, megabytes while typing."""
        if future.done() and not future.cancelled():
            exc = future.exception()
            if isinstance(exc, JsonRpcException):
                self._request_futures.pop(msg_id, None)
                log.info("request %s answered with error %s: %s", msg_id, exc.code, exc.message)
                self._send_response(msg_id, error=exc.to_response_error())
                return
        super()._send_handler_result(future, msg_id=msg_id)

    def _adopt_workspace(self) -> None:
        if self._workspace is not None and not isinstance(self._workspace, LspWorkspace):
            self._workspace = adopt(self._workspace)

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: types.DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        self.change_logs.pop(params.text_document.uri, None)
        yield from super().lsp_text_document__did_open(params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: types.DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        self.change_logs.pop(params.text_document.uri, None)
        yield from super().lsp_text_document__did_close(params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if not self._apply(params):
            return
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    def _apply(self, params: types.DidChangeTextDocumentParams) -> bool:
        """Apply the change in version order; False when it was dropped."""
        uri = params.text_document.uri
        version = params.text_document.version
        doc = self.workspace.get_text_document(uri)
        now = time.monotonic()
        entry = self.change_logs.get(uri)
        if entry is None or now - entry.at > REORDER_WINDOW_S or len(entry.changes) >= MAX_LOGGED:
            entry = ChangeLog(base=doc.source, base_version=doc.version)
            self.change_logs[uri] = entry
        entry.at = now
        last = entry.last_version
        changes = list(params.content_changes)
        if last is None or version > last:
            entry.changes.append((version, changes))
            for change in changes:
                self.workspace.update_text_document(params.text_document, change)
            return True
        if (
            entry.base_version is not None
            and version <= entry.base_version
            or any(v == version for v, _ in entry.changes)
        ):
            self.dropped += 1
            log.warning(
                "%s: didChange version %d arrived after version %s and is older than the "
                "changes kept to reorder; ignored",
                uri,
                version,
                last,
            )
            return False
        bisect.insort(entry.changes, (version, changes), key=lambda c: c[0])
        self._rebuild(uri, entry)
        self.reordered += 1
        log.info("%s: didChange version %d arrived after %s; replayed in order", uri, version, last)
        # The document now reads as of the newest version; handlers see that version.
        params.text_document.version = entry.changes[-1][0]
        return True

    def _rebuild(self, uri: str, entry: ChangeLog) -> None:
        doc = self.workspace.get_text_document(uri)
        doc.apply_change(types.TextDocumentContentChangeWholeDocument(text=entry.base))
        for _, changes in entry.changes:
            for change in changes:
                doc.apply_change(change)
        doc.version = entry.changes[-1][0]
