"""One OpenAI-compatible endpoint (vLLM, llama.cpp server, OpenAI, Fireworks …) as a Generator.

Requests are built and responses parsed by pure functions; `OpenAIBackend._stream`
and `OpenAIBackend._request_json` are the only places that touch the network.
Streams run inside `client.stream(...)`, so cancelling the consuming task (or
closing the iterator) closes the HTTP response and the server stops generating.
Every request has three limits: httpx connect and read timeouts, and a total
deadline checked around each network await.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs
import httpx

from lowentropy.models.config import EndpointConfig, RoleConfig, Timeouts
from lowentropy.models.errors import (
    BackendConfigError,
    BackendError,
    BackendHTTPError,
    BackendStreamBroken,
    BackendTimeout,
    map_httpx_errors,
)
from lowentropy.models.sse import Kind, text_deltas
from lowentropy.models.types import (
    Capabilities,
    ChatRequest,
    CompletionRequest,
    Scalar,
    TextStream,
    Tokenizer,
    flat_counters,
)

if TYPE_CHECKING:
    from lowentropy.models.remote_tokenizer import RemoteTokenizer

log = logging.getLogger(__name__)
T = TypeVar("T")
Outcome = Literal["completed", "cancelled", "failed"]


# ---------------------------------------------------------------- pure helpers


def api_root(url: str) -> str:
    """The server root of a base URL given with or without `/v1` (`http://h:8000`)."""
    root = url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root


def auth_headers(
    api_key_env: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The Bearer header from the variable named `api_key_env`, read now (never stored)."""
    if not api_key_env:
        return {}
    env = os.environ if environ is None else environ
    key = env.get(api_key_env)
    if not key:
        raise BackendConfigError(f"environment variable {api_key_env} (API key) is not set")
    return {"Authorization": f"Bearer {key}"}


def request_timeout(timeouts: Timeouts) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
    )


def completion_body(
    req: CompletionRequest, *, model: str, stream: bool = True, supports_prediction: bool = False
) -> dict[str, Any]:
    body = _sampling_fields(req, model=model, stream=stream)
    body["prompt"] = req.prompt
    if req.prediction is not None and supports_prediction:
        body["prediction"] = {"type": "content", "content": req.prediction}
    return body


def chat_body(
    req: ChatRequest, *, model: str, stream: bool = True, supports_prediction: bool = False
) -> dict[str, Any]:
    body = _sampling_fields(req, model=model, stream=stream)
    body["messages"] = [{"role": m.role, "content": m.content} for m in req.messages]
    if req.prediction is not None and supports_prediction:
        body["prediction"] = {"type": "content", "content": req.prediction}
    return body


def _sampling_fields(
    req: CompletionRequest | ChatRequest, *, model: str, stream: bool
) -> dict[str, Any]:
    """The fields completions and chat share."""
    body: dict[str, Any] = {
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "stream": stream,
    }
    if model:
        body["model"] = model
    if req.stop:
        body["stop"] = list(req.stop)
    return body


def embeddings_body(texts: Sequence[str], *, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"input": list(texts)}
    if model:
        body["model"] = model
    return body


def parse_embeddings(payload: Any, count: int, *, endpoint: str = "") -> list[list[float]]:
    try:
        rows = sorted(payload["data"], key=lambda row: row.get("index", 0))
        vectors = [[float(x) for x in row["embedding"]] for row in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendStreamBroken("malformed embeddings response", endpoint=endpoint) from exc
    if len(vectors) != count:
        raise BackendStreamBroken(
            f"asked for {count} embeddings, got {len(vectors)}", endpoint=endpoint
        )
    return vectors


def parse_models(payload: Any) -> tuple[str, ...]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return ()
    return tuple(str(m["id"]) for m in data if isinstance(m, dict) and "id" in m)


def status_error(status: int, body: bytes, *, endpoint: str = "") -> BackendHTTPError:
    """A non-2xx response as BackendHTTPError, with the server's message when it sent one."""
    detail = body[:300].decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError):
        payload = json.loads(body)
        if isinstance(payload, dict):
            err = payload.get("error", payload.get("detail", payload))
            if isinstance(err, dict):
                err = err.get("message", err)
            detail = str(err)[:300]
    hint = " (check the API key variable)" if status in (401, 403) else ""
    return BackendHTTPError(f"HTTP {status}: {detail}{hint}", status=status, endpoint=endpoint)


# ---------------------------------------------------------------- deadlines


async def _within(deadline: float, aw: Awaitable[T], *, endpoint: str) -> T:
    """Await `aw`, raising BackendTimeout at the loop-time `deadline`."""
    try:
        async with asyncio.timeout_at(deadline):
            return await aw
    except TimeoutError as exc:
        raise BackendTimeout("total deadline exceeded", endpoint=endpoint) from exc


async def _lines_within(
    lines: AsyncIterator[str], deadline: float, *, endpoint: str
) -> AsyncGenerator[str, None]:
    # The timeout is entered and left inside one step: never held across a yield.
    while True:
        try:
            line = await _within(deadline, lines.__anext__(), endpoint=endpoint)
        except StopAsyncIteration:
            return
        yield line


# ---------------------------------------------------------------- the backend


@attrs.define
class BackendStats:
    """Stream counters (completion + chat); warm and embed calls are counted apart."""

    started: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    warms: int = 0
    embeds: int = 0

    @property
    def in_flight(self) -> int:
        return self.started - self.completed - self.cancelled - self.failed

    def finish(self, outcome: Outcome) -> None:
        if outcome == "completed":
            self.completed += 1
        elif outcome == "cancelled":
            self.cancelled += 1
        else:
            self.failed += 1


@attrs.frozen(kw_only=True)
class HealthReport:
    name: str
    url: str
    ok: bool
    latency_ms: float
    models: tuple[str, ...] = ()
    error: str | None = None


class OpenAIBackend:
    """Generator for one OpenAI-compatible endpoint.

    `client` is shared by every backend of a server (keep-alive); when None the
    backend makes its own and closes it in `aclose`.
    """

    def __init__(
        self,
        endpoint: EndpointConfig,
        role: RoleConfig,
        client: httpx.AsyncClient | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.role = role
        self.root = api_root(endpoint.url)
        self.model = endpoint.model or role.model
        self.name = name or (f"{self.root} [{self.model}]" if self.model else self.root)
        self.stats = BackendStats()
        self._timeouts = role.timeouts
        self._timeout = request_timeout(role.timeouts)
        self._owns_client = client is None
        self._client = client if client is not None else make_client()
        self._tokenizer: RemoteTokenizer | None = None

    # -- Generator

    @property
    def capabilities(self) -> Capabilities:
        # The endpoint applies its model's chat template; it counts no tokens per stream.
        return Capabilities(speculation=self.endpoint.supports_prediction)

    def stream_completion(self, req: CompletionRequest) -> TextStream[None]:
        body = completion_body(
            req, model=self.model, supports_prediction=self.endpoint.supports_prediction
        )
        return TextStream(self._stream("/v1/completions", body, "completion"), None)

    def stream_chat(self, req: ChatRequest) -> TextStream[None]:
        body = chat_body(
            req, model=self.model, supports_prediction=self.endpoint.supports_prediction
        )
        return TextStream(self._stream("/v1/chat/completions", body, "chat"), None)

    async def warm(self, prefix: str) -> None:
        self.stats.warms += 1
        req = CompletionRequest(prompt=prefix, max_tokens=1)
        await self._request_json(
            "POST", "/v1/completions", completion_body(req, model=self.model, stream=False)
        )

    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            from lowentropy.models.remote_tokenizer import RemoteTokenizer

            self._tokenizer = RemoteTokenizer(self.endpoint, self.role)
        return self._tokenizer

    def counters(self) -> dict[str, Scalar]:
        return flat_counters(self.stats)

    async def aclose(self) -> None:
        if self._tokenizer is not None:
            self._tokenizer.close()
        if self._owns_client:
            await self._client.aclose()

    # -- beyond the protocol

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        self.stats.embeds += 1
        payload = await self._request_json(
            "POST", "/v1/embeddings", embeddings_body(texts, model=self.model)
        )
        return parse_embeddings(payload, len(texts), endpoint=self.root)

    async def health(self) -> HealthReport:
        """GET /v1/models with its latency; never raises (for `lowentropy doctor`)."""
        start = time.perf_counter()
        try:
            payload = await self._request_json("GET", "/v1/models", None)
        except BackendError as exc:
            latency = (time.perf_counter() - start) * 1000
            return HealthReport(
                name=self.name, url=self.root, ok=False, latency_ms=latency, error=exc.user_message
            )
        latency = (time.perf_counter() - start) * 1000
        return HealthReport(
            name=self.name, url=self.root, ok=True, latency_ms=latency, models=parse_models(payload)
        )

    # -- I/O

    async def _stream(
        self, path: str, body: dict[str, Any], kind: Kind
    ) -> AsyncGenerator[str, None]:
        self.stats.started += 1
        outcome: Outcome = "failed"
        deadline = asyncio.get_running_loop().time() + self._timeouts.total
        try:
            headers = auth_headers(self.role.api_key_env)
            with map_httpx_errors(self.root):
                async with contextlib.AsyncExitStack() as stack:
                    response = await _within(
                        deadline,
                        stack.enter_async_context(
                            self._client.stream(
                                "POST",
                                self.root + path,
                                json=body,
                                headers=headers,
                                timeout=self._timeout,
                            )
                        ),
                        endpoint=self.root,
                    )
                    if response.status_code >= 400:
                        raw = await _within(deadline, response.aread(), endpoint=self.root)
                        raise status_error(response.status_code, raw, endpoint=self.root)
                    lines = _lines_within(response.aiter_lines(), deadline, endpoint=self.root)
                    deltas = text_deltas(lines, kind, endpoint=self.root)
                    async with contextlib.aclosing(lines), contextlib.aclosing(deltas):
                        async for text in deltas:
                            yield text
            outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        finally:
            self.stats.finish(outcome)

    async def _request_json(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        deadline = asyncio.get_running_loop().time() + self._timeouts.total
        headers = auth_headers(self.role.api_key_env)
        with map_httpx_errors(self.root):
            response = await _within(
                deadline,
                self._client.request(
                    method, self.root + path, json=body, headers=headers, timeout=self._timeout
                ),
                endpoint=self.root,
            )
        if response.status_code >= 400:
            raise status_error(response.status_code, response.content, endpoint=self.root)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendStreamBroken(f"malformed JSON from {path}", endpoint=self.root) from exc


def make_client() -> httpx.AsyncClient:
    """The shared keep-alive client; timeouts are set per request from each role's config."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30),
        timeout=httpx.Timeout(10.0),
    )
