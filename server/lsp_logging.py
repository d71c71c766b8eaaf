"""Forward the server's warnings to the editor's log (`window/logMessage`).

Users see why a suggestion did not come (a backend down, a timeout) where
their editor shows language-server logs, not only in a log file.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from lsprotocol import types
from pygls.lsp.server import LanguageServer

_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}


class LspLogHandler(logging.Handler):
    def __init__(
        self, ls: LanguageServer, loop: asyncio.AbstractEventLoop, level: int = logging.WARNING
    ) -> None:
        super().__init__(level)
        self.ls = ls
        self.loop = loop
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            params = types.LogMessageParams(
                type=_LEVELS.get(record.levelno, types.MessageType.Log), message=self.format(record)
            )
            if threading.get_ident() == self._thread:
                self.ls.window_log_message(params)
            elif not self.loop.is_closed():
                self.loop.call_soon_threadsafe(self.ls.window_log_message, params)
        except Exception:  # logging must never take the server down
            self.handleError(record)


def attach(ls: LanguageServer) -> LspLogHandler:
    handler = LspLogHandler(ls, asyncio.get_running_loop())
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger("lowentropy").addHandler(handler)
    return handler
