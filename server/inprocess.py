"""Run the real server in this process and talk LSP to it over a pair of pipes.

`lowentropy complete` and the demo use this: the same handlers, protocol and
serialisation as an editor gets, without a subprocess or a port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.io_ import StdoutWriter, run_async
from pygls.lsp.client import LanguageClient

from .app import __version__, create_server

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def in_process_client(
    root: Path,
    initialization_options: dict[str, Any] | None = None,
    *,
    setup: Callable[[LanguageClient], None] | None = None,
) -> AsyncIterator[LanguageClient]:
    """A client connected to a fresh server; `setup` registers client handlers before initialize."""
    c2s_read, c2s_write = os.pipe()
    s2c_read, s2c_write = os.pipe()
    server = create_server()
    server_in = os.fdopen(c2s_read, "rb")
    server_out = os.fdopen(s2c_write, "wb")
    thread = threading.Thread(
        target=server.start_io, args=(server_in, server_out), daemon=True, name="lowentropy-server"
    )
    thread.start()

    client = LanguageClient("lowentropy-cli", __version__)
    if setup is not None:
        setup(client)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    client_in = os.fdopen(s2c_read, "rb")
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), client_in
    )
    client_out = os.fdopen(c2s_write, "wb")
    client.protocol.set_writer(StdoutWriter(client_out))
    reading = asyncio.create_task(
        run_async(
            stop_event=client._stop_event,
            reader=reader,
            protocol=client.protocol,
            logger=log,
            error_handler=client.report_server_error,
        )
    )
    try:
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=root.resolve().as_uri(),
                workspace_folders=[
                    types.WorkspaceFolder(uri=root.resolve().as_uri(), name=root.name)
                ],
                initialization_options=initialization_options,
            )
        )
        client.initialized(types.InitializedParams())
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_async(None), 10)
            client.exit(None)
        client._stop_event.set()
        with contextlib.suppress(Exception):
            client_out.close()
        thread.join(timeout=10)
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading
        transport.close()
        for stream in (server_in, server_out):  # the server thread has ended: its pipe ends
            with contextlib.suppress(OSError):
                stream.close()


async def complete_at(
    path: Path,
    line: int,
    character: int,
    *,
    root: Path | None = None,
    initialization_options: dict[str, Any] | None = None,
) -> str:
    """The inline suggestion the server gives at (line, character), 0-based, UTF-16 columns."""
    text = path.read_text(encoding="utf-8")
    root = root or path.parent
    # One completion needs no codebase index (and must not start one in a stranger's folder).
    options = {"index": {"enabled": False}, **(initialization_options or {})}
    async with in_process_client(root, options) as client:
        uri = path.resolve().as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=_language(path), version=1, text=text
                )
            )
        )
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
    return first_suggestion(result)


def first_suggestion(
    result: types.InlineCompletionList | Sequence[types.InlineCompletionItem] | None,
) -> str:
    """The text of the first inline completion item ("" when there is none)."""
    if result is None:
        return ""
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    if not items:
        return ""
    first = items[0].insert_text
    return first if isinstance(first, str) else first.value


_LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".rb": "ruby",
    ".md": "markdown",
}


def _language(path: Path) -> str:
    return _LANGUAGES.get(path.suffix, "plaintext")
