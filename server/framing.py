"""Reading LSP frames from a damaged stream, and answering every request that arrives.

pygls reads a frame as `Content-Length: N`, a blank line, then exactly N bytes. One
wrong length (too small, too large, counted in characters) left its reader reading
bodies as headers and headers as bodies: the server stayed alive and deaf, and the
editor never restarted it. Here each frame is found by searching for the next
`Content-Length:` header, so junk between frames is skipped, and a body that does
not parse at its declared length is recovered when one JSON value fills the bytes up
to the next header (the length was too small), or when the declared bytes start with
one (too large: it is followed by the next header, or nothing more comes for
`STALL_S`, the client waiting for an answer).

pygls also dropped without answer a request whose params do not structure (a null,
negative or >= 2^31 position), invalid JSON, a JSON array and invalid UTF-8. `dispatch`
answers each request that can be identified: InvalidParams (-32602) for bad params or
a lone UTF-16 surrogate, ParseError (-32700) for bytes that are not JSON in UTF-8,
InvalidRequest (-32600) for batches, non-objects and requests after shutdown; a
request whose id cannot be read gets the error with id null, as JSON-RPC says.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

import attrs
import cattrs
from lsprotocol import types
from pygls.protocol import JsonRPCProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)

__all__ = ["FrameError", "FrameReader", "dispatch", "run_async", "serve_stdio"]

log = logging.getLogger(__name__)

HEADER = re.compile(rb"Content-Length[ \t]*:[ \t]*(\d+)[ \t]*\r?\n", re.I)
HEADER_END = re.compile(rb"\r?\n\r?\n")
OTHER_HEADERS = re.compile(
    rb"(?:\r?\n)*(?:[A-Za-z][A-Za-z0-9-]*:[^\r\n]*\r?\n)+"
)  # before Content-Length
STALL_S = 0.2  # no byte for this long while a body is short: the client waits for us
MAX_HEADERS = 8192  # a header block longer than this is junk
CHUNK = 1 << 16

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = int(types.ErrorCodes.InvalidParams)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@attrs.frozen
class FrameError:
    """A frame that holds no usable message: the error to answer and the id, if one was read."""

    code: int
    message: str
    id: int | str | None = None


class FrameReader:
    """LSP frames from a byte stream, resynchronising on the next header after damage."""

    def __init__(self, read: Callable[[], Awaitable[bytes]]) -> None:
        self._read = read
        self.buf = bytearray()
        self.eof = False
        self._pending: asyncio.Future[bytes] | None = None

    async def _fill(self, wait_s: float | None = None) -> bool:
        """Append the next chunk; False at end of stream or after `wait_s` with none."""
        if self.eof:
            return False
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._read())
        done, _ = await asyncio.wait({self._pending}, timeout=wait_s)
        if not done:
            return False  # the read stays pending for the next call
        chunk, self._pending = self._pending.result(), None
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    async def next(self) -> tuple[Any, bytes] | FrameError | None:
        """The next message as (JSON value, body bytes), a FrameError, or None at the end."""
        while True:
            found = HEADER.search(self.buf)
            if found is None:
                if len(self.buf) > MAX_HEADERS:  # keep what may be the start of a header
                    self._skip(len(self.buf) - 64)
                if not await self._fill():
                    self._skip(len(self.buf))
                    return None
                continue
            self._skip(found.start())
            found = HEADER.match(self.buf)
            assert found is not None
            end = HEADER_END.search(self.buf, found.end() - 2)
            if end is None and len(self.buf) <= MAX_HEADERS and await self._fill():
                continue
            if end is None or end.start() > MAX_HEADERS:
                if self.eof:
                    self._skip(len(self.buf))
                    return None
                del self.buf[: found.end()]  # a header block with no end: find the next
                continue
            again = HEADER.search(self.buf, found.end(), end.end())
            if again is not None:  # the block ran into the next frame's header
                del self.buf[: again.start()]
                continue
            length = int(found.group(1))
            del self.buf[: end.end()]
            return await self._body(length)

    def _skip(self, n: int) -> None:
        skipped = bytes(self.buf[:n])
        if skipped.strip() and not OTHER_HEADERS.fullmatch(skipped):
            log.warning(
                "skipped %d bytes that are not an LSP frame: %r", n, bytes(self.buf[: min(n, 40)])
            )
        del self.buf[:n]

    async def _body(self, length: int) -> tuple[Any, bytes] | FrameError:
        tried = -1  # buffer size at the last recovery attempt
        while True:
            if len(self.buf) >= length:
                body = bytes(self.buf[:length])
                try:
                    value = json.loads(body.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    if _is_json(body.decode("utf-8", "replace")):
                        # The length is right and the JSON whole: one undecodable byte
                        # inside it. Answered under its id, whatever junk follows.
                        del self.buf[:length]
                        return _bad_utf8(body, exc)
                except ValueError:  # a length in characters, or a wrong one
                    pass
                else:
                    del self.buf[:length]
                    return value, body
            elif not self.eof and await self._fill(STALL_S):
                continue  # a body still arriving: no search until it stops
            # Damaged: the body ends at the next header, or where the client stopped.
            following = HEADER.search(self.buf)
            if following is None and not self.eof:
                if len(self.buf) >= length and await self._fill(STALL_S):
                    continue  # too short a length: the rest of the body may follow
                if len(self.buf) == tried:  # nothing new since the last attempt
                    await self._fill()
                    continue
            tried = len(self.buf)
            limit = following.start() if following is not None else len(self.buf)
            recovered = _first_value(bytes(self.buf[:limit]))
            if recovered is not None:
                value, used, blank_after = recovered
                # A JSON-RPC object with junk after it: a length too long, into junk that
                # came before the next frame (the junk is skipped as the next frame is found).
                if blank_after or (isinstance(value, dict) and "jsonrpc" in value):
                    log.warning(
                        "a frame declared %d bytes for a %d-byte message; resynchronised",
                        length,
                        used,
                    )
                    body = bytes(self.buf[:used])
                    del self.buf[:used]
                    return value, body
            if following is None and not self.eof and len(self.buf) < length:
                continue  # a body still arriving
            body = bytes(self.buf[:limit])
            del self.buf[:limit]
            log.warning("dropped a %d-byte frame body that is not JSON", limit)
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                return _bad_utf8(body, exc)
            return FrameError(PARSE_ERROR, "Parse error: the frame's body is not JSON")


def _first_value(data: bytes) -> tuple[Any, int, bool] | None:
    """The JSON value `data` starts with (in valid UTF-8), its size in bytes, and whether
    only whitespace follows it (junk after it may be any bytes)."""
    text = data.decode("utf-8", "surrogateescape")
    stripped = text.lstrip()
    try:
        value, end = json.JSONDecoder().raw_decode(stripped)
        stripped[:end].encode("utf-8")  # an undecodable byte inside the value: no value
    except (ValueError, UnicodeEncodeError):
        return None
    used = len(text) - len(stripped) + end
    size = len(text[:used].encode("utf-8", "surrogateescape"))
    return value, size, not stripped[end:].strip()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _bad_utf8(body: bytes, exc: UnicodeDecodeError) -> FrameError:
    try:
        value = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        value = None
    return FrameError(
        PARSE_ERROR, f"Parse error: invalid UTF-8 at byte {exc.start} of the body", _id_of(value)
    )


def _id_of(value: Any) -> int | str | None:
    if isinstance(value, dict) and "method" in value:
        msg_id = value.get("id")
        if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
            return msg_id
    return None


# ---- dispatch ------------------------------------------------------------------------------


def send_error(
    protocol: JsonRPCProtocol, msg_id: int | str | None, code: int, message: str
) -> None:
    """An error response; `id` is written even when null (lsprotocol's type would drop it)."""
    protocol._send_data(
        {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
    )


def _replace_surrogates(value: Any) -> tuple[Any, bool]:
    """`value` with lone surrogates in its strings replaced by U+FFFD; whether any was."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            fixed = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return fixed, True
        return value, False
    if isinstance(value, dict):
        changed = False
        out = {}
        for k, v in value.items():
            out[k], c = _replace_surrogates(v)
            changed |= c
        return out, changed
    if isinstance(value, list):
        items = [_replace_surrogates(v) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


def _structure(protocol: JsonRPCProtocol, data: dict[str, Any]) -> Any:
    """pygls's `structure_message` for one top-level message, without its logged traceback."""
    converter = protocol._converter
    if "id" in data:
        if "error" in data:
            return converter.structure(data, types.ResponseErrorMessage)
        if "method" in data:
            kind = protocol.get_message_type(data["method"]) or JsonRPCRequestMessage
            if kind is JsonRPCRequestMessage:  # JSON-RPC lets a request leave params out
                data = {"params": None, **data}
            return converter.structure(data, kind)
        kind = protocol._result_types.pop(data["id"], None) or JsonRPCResponseMessage
        return converter.structure(data, kind)
    kind = protocol.get_message_type(data.get("method", "")) or JsonRPCNotification
    if kind is JsonRPCNotification:
        data = {"params": None, **data}
    return converter.structure(data, kind)


def _describe(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, path="message")[:3])
    return f"{type(exc).__name__}: {exc}"


def dispatch(protocol: JsonRPCProtocol, item: tuple[Any, bytes] | FrameError) -> None:
    """Hand one frame to pygls, answering here every request pygls would drop."""
    if isinstance(item, FrameError):
        send_error(protocol, item.id, item.code, item.message)
        return
    value, body = item
    if isinstance(value, list):
        ids = [_id_of(v) for v in value if _id_of(v) is not None] or [None]
        for msg_id in ids:
            send_error(protocol, msg_id, INVALID_REQUEST, "Invalid request: LSP has no batches")
        return
    if not isinstance(value, dict) or value.get("jsonrpc") != "2.0":
        log.warning("not a JSON-RPC 2.0 message: %.80r", value)
        if not isinstance(value, dict) or "method" in value:
            msg = "Invalid request: not a JSON-RPC 2.0 object"
            send_error(protocol, _id_of(value), INVALID_REQUEST, msg)
        return
    msg_id = _id_of(value)
    is_request = "method" in value and "id" in value
    if is_request and msg_id is None:
        send_error(
            protocol, None, INVALID_REQUEST, "Invalid request: id must be a string or number"
        )
        return
    method = value.get("method")
    if _SURROGATE_ESCAPE.search(body):
        value, changed = _replace_surrogates(value)
        if changed and is_request:
            msg = "Invalid params: a string holds a lone UTF-16 surrogate, which is not Unicode"
            send_error(protocol, msg_id, INVALID_PARAMS, msg)
            return
        if changed:
            log.warning("%s: lone surrogates replaced by U+FFFD", method)
    if is_request and protocol._shutdown and method != types.EXIT:
        send_error(protocol, msg_id, INVALID_REQUEST, "Invalid request: the server is shut down")
        return
    try:
        message = _structure(protocol, value)
    except Exception as exc:
        reason = _describe(exc)
        if is_request:
            log.warning("request %s %s: invalid params: %s", msg_id, method, reason)
            send_error(protocol, msg_id, INVALID_PARAMS, f"Invalid params: {reason}")
        else:
            log.warning("dropped %s: %s", method or "a response", reason)
        return
    try:
        protocol.handle_message(message)
    except Exception:
        log.exception("handling %s failed", method)
        if is_request:
            send_error(protocol, msg_id, int(types.ErrorCodes.InternalError), "Internal error")


# ---- the loop ------------------------------------------------------------------------------


def _chunks(reader: Any) -> Callable[[], Awaitable[bytes]]:
    """Chunk reads from pygls's stdin reader (a thread) or an asyncio stream (TCP)."""
    if isinstance(reader, asyncio.StreamReader):
        return lambda: reader.read(CHUNK)
    stdin: BinaryIO = reader.stdin
    read1 = getattr(stdin, "read1", None) or stdin.read
    loop = asyncio.get_running_loop()
    return lambda: loop.run_in_executor(reader.executor, read1, CHUNK)


async def run_async(
    stop_event: Any,
    reader: Any,
    protocol: JsonRPCProtocol,
    logger: logging.Logger | None = None,
    error_handler: Any = None,
) -> None:
    """`pygls.io_.run_async` with resynchronising frames and an answer for every request."""
    frames = FrameReader(_chunks(reader))
    while not stop_event.is_set():
        item = await frames.next()
        if item is None:
            break
        dispatch(protocol, item)


def serve_stdio(server: Any, stdin: BinaryIO | None, stdout: BinaryIO | None) -> None:
    """pygls's `_start_io_async` with `run_async` above; the status `exit` asked for is
    left in `server.exit_code`."""
    from threading import Event

    from pygls.io_ import StdinAsyncReader, StdoutWriter

    server._stop_event = Event()
    reader = StdinAsyncReader(stdin or sys.stdin.buffer, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    try:
        asyncio.run(run_async(server._stop_event, reader, server.protocol))
    except BrokenPipeError:
        log.error("Connection to the client is lost! Shutting down the server.")
    except SystemExit as exc:  # pygls's `exit`: 0 after shutdown, else 1 (LSP)
        server.exit_code = exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
