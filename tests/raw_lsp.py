"""The real server over raw pipes: write any bytes, read framed JSON back.

pytest-lsp frames every message correctly; the hardening and fuzz tests need to
write wrong lengths, broken JSON and invalid UTF-8, so they talk to
`python -m lowentropy.server serve` through this small client instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Tab with no model: an endpoint that refuses connections answers every completion
# empty at once, so these tests cost no inference (tests/servers.py `refused_url`).
NO_MODEL = {
    "tab": {"endpoints": [{"url": "http://127.0.0.1:9/v1"}], "timeouts": {"connect": 0.2}},
    "completion": {"warmDelayMs": -1, "prefetch": False},
    "index": {"enabled": False},
}


# ---- an LSP edit applier written from the specification, independent of server/positions.py


def _lines(text: str) -> list[str]:
    """LSP lines with their breaks; the last one may be empty."""
    out, start, i = [], 0, 0
    while i < len(text):
        step = 2 if text.startswith("\r\n", i) else 1
        if text[i] in "\r\n":
            out.append(text[start : i + step])
            start = i + step
        i += step
    out.append(text[start:])
    return out


def reference_offset(text: str, line: int, character: int) -> int:
    lines = _lines(text)
    if line >= len(lines):
        return len(text)
    before = sum(len(x) for x in lines[:line])
    content = lines[line]
    for brk in ("\r\n", "\r", "\n"):
        if content.endswith(brk):
            content = content[: -len(brk)]
            break
    units = content.encode("utf-16-le")
    prefix = units[: 2 * character]
    # a column between the halves of a surrogate pair counts as the character's end
    if prefix and 0xD800 <= int.from_bytes(prefix[-2:], "little") <= 0xDBFF:
        prefix = units[: 2 * character + 2]
    return before + len(prefix.decode("utf-16-le"))


def reference_apply(text: str, change: dict[str, Any]) -> str:
    if "range" not in change:
        return str(change["text"])
    r = change["range"]
    a = reference_offset(text, r["start"]["line"], r["start"]["character"])
    b = reference_offset(text, r["end"]["line"], r["end"]["character"])
    a, b = min(a, b), max(a, b)
    return text[:a] + change["text"] + text[b:]


def apply_text_edits(text: str, edits: list[dict[str, Any]]) -> str:
    """`text` with LSP TextEdits (UTF-16 columns) applied as an editor does, back to front."""
    spans = []
    for edit in edits:
        r = edit["range"]
        a = reference_offset(text, r["start"]["line"], r["start"]["character"])
        b = reference_offset(text, r["end"]["line"], r["end"]["character"])
        spans.append((a, b, edit["newText"]))
    for a, b, new in sorted(spans, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def frame(body: bytes | str, length: int | None = None) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return f"Content-Length: {len(data) if length is None else length}\r\n\r\n".encode() + data


def message(obj: Any) -> bytes:
    return frame(json.dumps(obj))


class RawClient:
    """Raw LSP over a pair of byte streams; `send` writes bytes, `response(id)` waits for that id."""

    def __init__(
        self, root: Path, options: dict[str, Any] | None, to_server: Any, from_server: Any
    ) -> None:
        self.root = root
        self.options = options
        self.to_server = to_server
        self.from_server = from_server
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.pending: list[dict[str, Any]] = []
        self._next_id = 1000
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        out = self.from_server
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n") and length is not None:
                    break
            assert length is not None
            self.messages.put(json.loads(out.read(length)))

    def send(self, data: bytes) -> None:
        self.to_server.write(data)
        self.to_server.flush()

    def notify(self, method: str, params: Any) -> None:
        self.send(message({"jsonrpc": "2.0", "method": method, "params": params}))

    def request(self, method: str, params: Any, timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        msg_id = self._next_id
        self.send(message({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}))
        return self.response(msg_id, timeout)

    def response(self, msg_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The response with `msg_id`; server requests and notifications are kept aside."""
        deadline = time.monotonic() + timeout
        for i, msg in enumerate(self.pending):
            if "method" not in msg and msg.get("id") == msg_id:
                return self.pending.pop(i)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response to {msg_id!r} in {timeout} s")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if "method" in msg:
                if "id" in msg:  # a request from the server (registerCapability...): answer it
                    self.send(message({"jsonrpc": "2.0", "id": msg["id"], "result": None}))
                continue
            if msg.get("id") == msg_id:
                return msg
            self.pending.append(msg)

    def drain(self) -> None:
        """Forget every message not yet asked for (what an earlier failing case left)."""
        self.pending.clear()
        while not self.messages.empty():
            self.messages.get_nowait()

    def initialize(self, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": self.root.as_uri(),
                "capabilities": capabilities or {},
                "initializationOptions": self.options if self.options is not None else NO_MODEL,
            },
        )
        self.notify("initialized", {})
        return result

    def open(self, name: str, text: str, language: str = "python") -> str:
        uri = (self.root / name).as_uri()
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}},
        )
        return uri

    def shutdown(self, timeout: float = 20.0) -> None:
        self.request("shutdown", None, timeout=timeout)
        self.notify("exit", None)


class RawServer(RawClient):
    """`python -m lowentropy.server serve` in its own process."""

    def __init__(self, root: Path, options: dict[str, Any] | None = None, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lowentropy.server", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
        )
        self.stderr = bytearray()
        self.stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self.stderr_reader.start()
        super().__init__(root, options, self.proc.stdin, self.proc.stdout)

    def _drain_stderr(self) -> None:
        err = self.proc.stderr
        assert err is not None
        for line in err:
            self.stderr += line

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, timeout: float = 20.0) -> int:
        """Shut down and exit as an editor does; the exit status."""
        if self.alive():
            try:
                self.shutdown(timeout)
            except (TimeoutError, BrokenPipeError, OSError):
                self.proc.kill()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.reader.join(5)
        self.stderr_reader.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()
        return code


class InProcessServer(RawClient):
    """The real server on a thread of this process, over a pair of OS pipes (as
    `server/inprocess.py` runs it), so a test can read its document model directly."""

    def __init__(self, root: Path, options: dict[str, Any] | None = None) -> None:
        from lowentropy.server.app import create_server

        c2s_read, c2s_write = os.pipe()
        s2c_read, s2c_write = os.pipe()
        self.server = create_server()
        self.server_files = os.fdopen(c2s_read, "rb"), os.fdopen(s2c_write, "wb")
        self.thread = threading.Thread(
            target=self.server.start_io, args=self.server_files, daemon=True
        )
        self.thread.start()
        super().__init__(root, options, os.fdopen(c2s_write, "wb"), os.fdopen(s2c_read, "rb"))

    def text(self, uri: str) -> str:
        """The server's copy of a document (read after a response, so every earlier
        notification has been applied: pygls handles messages in order)."""
        return str(self.server.workspace.get_text_document(uri).source)

    def alive(self) -> bool:
        return self.thread.is_alive()

    def close(self, timeout: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(TimeoutError, OSError):
                self.shutdown(timeout)
        with contextlib.suppress(OSError):
            self.to_server.close()
        self.thread.join(timeout)
        for f in (*self.server_files, self.from_server):
            with contextlib.suppress(OSError):
                f.close()


@contextlib.contextmanager
def in_process_server(
    root: Path, options: dict[str, Any] | None = None
) -> Iterator[InProcessServer]:
    """An initialized `InProcessServer`, shut down and joined on leaving."""
    s = InProcessServer(root, options)
    try:
        s.initialize()
        yield s
    finally:
        s.close()
