"""TCP serves one session, opened only with the token the server wrote to a 0600 file.

A real `lowentropy serve --tcp` process and real connections: a first connection with
a wrong token is refused and the next one may still open the session; while the
session holds an unsaved buffer, a second connection is refused at once, never sees
the buffer, and its shutdown/exit leave the session working.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from servers import free_port

CLI = [sys.executable, "-m", "lowentropy.server", "--log-level", "INFO", "serve"]
UNSAVED = "UNSAVED_" + "BUFFER_MARKER_5521"


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _raw(port: int, *messages: dict[str, Any]) -> bytes:
    """Send `messages` on a fresh connection; everything the server writes until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for message in messages:
        writer.write(_frame(message))
    try:
        await writer.drain()
    except ConnectionError:
        pass
    try:
        data = await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()
    return data


def _initialize(root: Path, token: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"index": {"enabled": False}, "completion": {"warmDelayMs": -1}}
    if token is not None:
        options["tcpToken"] = token
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"capabilities": {}, "rootUri": root.as_uri(), "initializationOptions": options},
    }


async def _token(path: Path) -> str:
    for _ in range(300):
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.1)
    raise AssertionError("the server wrote no token file")


async def test_one_session_opened_by_the_token_and_others_refused(tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "run" / "lowentropy.token"
    log = (tmp_path / "server.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--tcp", str(port), "--token-file", str(token_file), stderr=log
    )
    try:
        token = await _token(token_file)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700

        # No token, then a wrong one: refused with a reason; the slot stays free.
        for given in (None, token[:-1] + ("x" if token[-1] != "x" else "y")):
            answer = await _raw(port, _initialize(tmp_path, given))
            assert b'"code": -32001' in answer and b"tcpToken" in answer, answer
            assert b"capabilities" not in answer

        client = LanguageClient("editor", "1")
        await client.start_tcp("127.0.0.1", port)
        params = _initialize(tmp_path, token)["params"]
        result = await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=params["rootUri"],
                initialization_options=params["initializationOptions"],
            )
        )
        assert result.capabilities.inline_completion_provider is not None
        client.initialized(types.InitializedParams())
        uri = (tmp_path / "notes.py").as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=f"# {UNSAVED}\nx = 1\n"
                )
            )
        )

        # A second connection: refused at once, whatever it sends, and it learns nothing.
        intruder = [
            _initialize(tmp_path, token),
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "textDocument/codeAction",
                "params": {
                    "textDocument": {"uri": uri},
                    "range": {
                        "start": {"line": 0, "character": 0},
                        "end": {"line": 1, "character": 0},
                    },
                    "context": {"diagnostics": []},
                },
            },
            {"jsonrpc": "2.0", "id": 3, "method": "shutdown"},
            {"jsonrpc": "2.0", "method": "exit"},
        ]
        answer = await _raw(port, *intruder)
        assert b"has a session" in answer, answer
        assert UNSAVED.encode() not in answer
        assert proc.returncode is None

        # The session still works: its buffer is served to it, not to the intruder.
        stats = await client.protocol.send_request_async("lowentropy/stats", {})
        assert stats is not None
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert not token_file.exists()  # the token goes with the server
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
