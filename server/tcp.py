"""TCP transport: one session per server, opened only with a token the user can read.

Anyone on the machine can connect to a loopback port, so the port alone proves
nothing. At start the server takes a random token (or the one its starting process
put in `LOWENTROPY_TCP_TOKEN`) and writes it to a file only the user can read
(mode 0600, in a 0700 folder: `$XDG_RUNTIME_DIR/lowentropy/tcp-PORT.token`, else
`~/.cache/lowentropy/run/...`, or `--token-file`). The first frame of a connection
must be `initialize` with `initializationOptions.tcpToken` equal to it (within
10 s); anything else is answered with an error and the connection closed, and the
server waits for the next one. While a session is open, every other connection is
refused at once, unread: it can neither see a buffer nor shut the server down.
When the session ends the server exits, as over stdio.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from .framing import CHUNK, INVALID_REQUEST, FrameReader, dispatch

log = logging.getLogger(__name__)

__all__ = ["TOKEN_ENV", "TOKEN_KEY", "default_token_file", "serve_tcp", "write_token"]

TOKEN_KEY = "tcpToken"  # in initializationOptions, taken out before the settings see them
TOKEN_ENV = "LOWENTROPY_TCP_TOKEN"
AUTH_TIMEOUT_S = 10.0
UNAUTHORIZED = -32001


def default_token_file(port: int) -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "lowentropy" if runtime else Path.home() / ".cache/lowentropy/run"
    return base / f"tcp-{port}.token"


def write_token(path: Path, token: str) -> None:
    """Write `token` to `path`, readable by the user alone (folder 0700, file 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.parent.stat().st_uid == os.getuid():
        path.parent.chmod(0o700)
    path.unlink(missing_ok=True)  # a stale file (or a link someone left) is not reused
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _refuse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    msg_id: Any,
    code: int,
    message: str,
) -> None:
    """Answer with the error and close. What the peer sent is read and dropped for a
    moment first: closing with unread bytes resets the connection, and the reset can
    destroy the answer before the peer reads it."""
    log.warning("TCP: refused a connection: %s", message)
    error = {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
    try:
        writer.write(_frame(error))
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(1.0):
            while await reader.read(CHUNK):
                pass
    except (ConnectionError, TimeoutError):
        pass
    writer.close()


def _admit(item: Any, token: str) -> tuple[Any, str | None]:
    """(the message's id, why it is refused or None) for a connection's first frame.
    An admitted initialize has the token taken out of its initializationOptions."""
    if not isinstance(item, tuple) or not isinstance(item[0], dict):
        return None, "the first message must be initialize"
    value = item[0]
    msg_id = value.get("id")
    if value.get("method") != "initialize":
        return msg_id, "the first message must be initialize"
    params = value.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.pop(TOKEN_KEY, None) if isinstance(options, dict) else None
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
        return msg_id, f"initializationOptions.{TOKEN_KEY} is missing or wrong"
    return msg_id, None


def serve_tcp(server: Any, host: str, port: int, token_file: Path | None = None) -> None:
    """Listen on host:port and serve one authenticated session (blocks until it ends)."""
    from threading import Event

    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32)
    server._stop_event = stop_event = Event()
    state: dict[str, Any] = {"busy": False, "file": None}

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if state["busy"]:
            await _refuse(
                reader, writer, None, INVALID_REQUEST, "lowentropy: this server has a session"
            )
            return
        state["busy"] = True
        frames = FrameReader(lambda: reader.read(CHUNK))
        try:
            first = await asyncio.wait_for(frames.next(), AUTH_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            first = None
        msg_id, refused = _admit(first, token)
        if refused is not None or first is None:
            state["busy"] = False
            why = f"lowentropy: {refused or 'no initialize'}"
            await _refuse(reader, writer, msg_id, UNAUTHORIZED, why)
            return
        log.info("TCP: session opened")
        server.protocol.set_writer(writer)
        dispatch(server.protocol, first)
        while not stop_event.is_set():
            try:
                item = await frames.next()
            except ConnectionError:
                break
            if item is None:
                break
            dispatch(server.protocol, item)
        log.info("TCP: session ended")
        writer.close()
        server.shutdown()

    def publish(path: Path) -> None:
        if TOKEN_ENV not in os.environ:
            write_token(path, token)
            state["file"] = path

    async def listen() -> None:
        # The token is in its file before the port accepts (unless the OS picks the port).
        path = token_file or (default_token_file(port) if port else None)
        if path is not None:
            publish(path)
        server._server = await asyncio.start_server(connection, host, port)
        bound = server._server.sockets[0].getsockname()[1]
        if path is None:
            path = default_token_file(bound)
            publish(path)
        where = f"from ${TOKEN_ENV}" if TOKEN_ENV in os.environ else f"in {path} (mode 0600)"
        print(
            f"lowentropy: listening on {host}:{bound}, one session; the client sends "
            f"initializationOptions.{TOKEN_KEY}, the token {where}",
            file=sys.stderr,
            flush=True,
        )
        async with server._server:
            await server._server.serve_forever()

    try:
        asyncio.run(listen())
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    finally:
        if state["file"] is not None:
            state["file"].unlink(missing_ok=True)
