"""OpenAIBackend, the SSE parser and RemoteTokenizer.

Happy paths run against a real llama.cpp server (`llama_server`, SmolLM2-135M,
greedy); faults against `FaultInjectionServer`s (tests/servers.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from servers import FaultFactory, FaultInjectionServer, smollm2_gguf

from lowentropy.models.config import EndpointConfig, RoleConfig, Timeouts
from lowentropy.models.errors import (
    BackendConfigError,
    BackendHTTPError,
    BackendStreamBroken,
    BackendTimeout,
    BackendUnavailable,
)
from lowentropy.models.http_backend import (
    OpenAIBackend,
    api_root,
    completion_body,
    parse_embeddings,
    status_error,
)
from lowentropy.models.remote_tokenizer import RemoteTokenizer, estimate_tokens
from lowentropy.models.sse import Delta, SseDecoder, parse_chunk, text_deltas
from lowentropy.models.types import ChatMessage, ChatRequest, CompletionRequest, Generator

FAST = Timeouts(connect=1.0, read=10.0, total=30.0)
PROMPT = "def fibonacci(n):\n    "


def role_for(url: str, timeouts: Timeouts = FAST) -> RoleConfig:
    return RoleConfig(endpoints=(EndpointConfig(url=url),), timeouts=timeouts)


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def backend_for(url: str, client: httpx.AsyncClient, timeouts: Timeouts = FAST) -> OpenAIBackend:
    role = role_for(url, timeouts)
    return OpenAIBackend(role.endpoints[0], role, client)


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [chunk async for chunk in stream]


# ---------------------------------------------------------------- pure parts


def test_api_root_accepts_v1_or_not() -> None:
    assert api_root("http://h:8000") == "http://h:8000"
    assert api_root("http://h:8000/v1/") == "http://h:8000"
    assert api_root(" https://api.example.com/v1 ") == "https://api.example.com"


def test_prediction_only_where_supported() -> None:
    req = CompletionRequest(prompt="p", prediction="draft", stop=("\n",))
    assert "prediction" not in completion_body(req, model="m")
    body = completion_body(req, model="m", supports_prediction=True)
    assert body["prediction"] == {"type": "content", "content": "draft"}
    assert body["stop"] == ["\n"] and body["stream"] is True and body["model"] == "m"
    assert "model" not in completion_body(req, model="")


def test_sse_decoder_handles_comments_keepalives_and_multiline() -> None:
    decoder = SseDecoder()
    events = [
        decoder.feed(line)
        for line in [": ping", "", "event: message", "data: a", "data: b", "", "", "data: c"]
    ]
    assert [e.data for e in events if e] == ["a\nb"]
    last = decoder.flush()
    assert last is not None and last.data == "c"


def test_parse_chunk_completion_and_chat() -> None:
    assert parse_chunk('{"choices":[{"text":"x","finish_reason":null}]}', "completion") == Delta(
        "x"
    )
    role_only = parse_chunk('{"choices":[{"delta":{"role":"assistant"}}]}', "chat")
    assert role_only == Delta("")
    done = parse_chunk('{"choices":[{"delta":{"content":"y"},"finish_reason":"stop"}]}', "chat")
    assert done == Delta("y", "stop")
    assert parse_chunk('{"choices":[],"usage":{}}', "chat") == Delta("")


def test_parse_chunk_errors() -> None:
    with pytest.raises(BackendHTTPError) as http:
        parse_chunk('{"error":{"message":"overloaded","code":503}}', "completion")
    assert http.value.status == 503 and http.value.retryable
    with pytest.raises(BackendStreamBroken, match="boom"):
        parse_chunk('{"error":"boom"}', "completion")
    with pytest.raises(BackendStreamBroken, match="malformed"):
        parse_chunk("{not json", "completion")


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_text_deltas_until_done_and_cut_detection() -> None:
    chunk = 'data: {"choices":[{"text":"%s","finish_reason":%s}]}'
    ok = _lines(chunk % ("a", "null"), "", ": keep-alive", "", chunk % ("b", "null"), "")
    done = _lines(*ok_lines("a"), "data: [DONE]", "", chunk % ("ignored", "null"), "")
    assert await collect(text_deltas(done, "completion")) == ["a"]
    with pytest.raises(BackendStreamBroken, match="without \\[DONE\\]"):
        await collect(text_deltas(ok, "completion"))
    # finish_reason without [DONE] (some servers) is a complete stream
    finished = _lines(chunk % ("a", '"stop"'), "")
    assert await collect(text_deltas(finished, "completion")) == ["a"]
    with pytest.raises(BackendHTTPError):
        await collect(
            text_deltas(_lines("event: error", 'data: {"message":"x","code":500}', ""), "chat")
        )


def ok_lines(text: str) -> list[str]:
    return ['data: {"choices":[{"text":"' + text + '","finish_reason":null}]}', ""]


def test_status_error_keeps_the_server_message() -> None:
    err = status_error(400, b'{"error":{"message":"prompt too long"}}')
    assert err.status == 400 and not err.retryable and "prompt too long" in str(err)
    assert "API key" in str(status_error(401, b"{}"))


def test_parse_embeddings_orders_by_index() -> None:
    payload = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1]}]}
    assert parse_embeddings(payload, 2) == [[1.0], [2.0]]
    with pytest.raises(BackendStreamBroken):
        parse_embeddings(payload, 3)


# ---------------------------------------------------------------- real llama.cpp server


async def test_streaming_completion_is_deterministic(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    backend = backend_for(llama_server, client)
    assert isinstance(backend, Generator)
    req = CompletionRequest(prompt=PROMPT, max_tokens=24)
    first = await collect(backend.stream_completion(req))
    second = await collect(backend.stream_completion(req))
    assert len(first) > 1, "expected several streamed deltas"
    assert "".join(first).strip()
    assert "".join(first) == "".join(second)
    assert (backend.stats.started, backend.stats.completed, backend.stats.in_flight) == (2, 2, 0)


async def test_chat_streaming(llama_server: str, client: httpx.AsyncClient) -> None:
    backend = backend_for(llama_server + "/v1/", client)  # base URL given with /v1
    req = ChatRequest(
        messages=(ChatMessage(role="user", content="Name one prime number."),), max_tokens=16
    )
    text = "".join(await collect(backend.stream_chat(req)))
    assert text.strip()
    assert backend.stats.completed == 1


async def test_warm_then_complete(llama_server: str, client: httpx.AsyncClient) -> None:
    backend = backend_for(llama_server, client)
    prefix = "# utilities for strings\n\ndef reverse(s):\n    return s[::-1]\n\n"
    await backend.warm(prefix)
    text = "".join(
        await collect(
            backend.stream_completion(CompletionRequest(prompt=prefix + "def ", max_tokens=8))
        )
    )
    assert text
    assert backend.stats.warms == 1 and backend.stats.completed == 1


async def test_health_reports_models_and_latency(
    llama_server: str, client: httpx.AsyncClient, refused_url: str
) -> None:
    up = await backend_for(llama_server, client).health()
    assert up.ok and up.models and up.latency_ms > 0 and up.error is None
    down = await backend_for(refused_url, client).health()
    assert not down.ok and down.error and "connect" in down.error


async def test_cancel_closes_the_stream(
    llama_server: str, client: httpx.AsyncClient, fault_server: FaultFactory
) -> None:
    # Through a pass-through proxy, to watch the client's TCP connection.
    proxy = await fault_server("proxy", upstream=llama_server)
    backend = backend_for(proxy.url, client)
    first_chunk = asyncio.Event()

    async def consume() -> None:
        req = CompletionRequest(prompt="Write a long story about a dragon.\n", max_tokens=400)
        async for _ in backend.stream_completion(req):
            first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), 20)
    assert proxy.active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.stats.cancelled == 1 and backend.stats.in_flight == 0
    await wait_until(lambda: proxy.active == 0)  # the half-read response's connection closed
    # The server keeps answering; a finished stream leaves its connection open for reuse.
    text = await collect(backend.stream_completion(CompletionRequest(prompt=PROMPT, max_tokens=4)))
    assert text and backend.stats.completed == 1
    assert (proxy.connections, proxy.active) == (2, 1)


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- faults


async def test_connection_refused(refused_url: str, client: httpx.AsyncClient) -> None:
    backend = backend_for(refused_url, client)
    start = time.perf_counter()
    with pytest.raises(BackendUnavailable) as err:
        await collect(backend.stream_completion(CompletionRequest(prompt="x")))
    assert time.perf_counter() - start < 2 and err.value.retryable
    assert backend.stats.failed == 1 and backend.stats.in_flight == 0


async def test_http_500(http500_server: FaultInjectionServer, client: httpx.AsyncClient) -> None:
    backend = backend_for(http500_server.url, client)
    with pytest.raises(BackendHTTPError) as err:
        await collect(
            backend.stream_chat(ChatRequest(messages=(ChatMessage(role="user", content="hi"),)))
        )
    assert err.value.status == 500 and err.value.retryable
    assert "injected fault" in str(err.value)
    assert http500_server.requests[0].path == "/v1/chat/completions"


async def test_stall_past_read_timeout(
    stall_server: FaultInjectionServer, client: httpx.AsyncClient
) -> None:
    short_read = Timeouts(connect=1, read=0.5, total=10)
    backend = backend_for(stall_server.url, client, short_read)
    start = time.perf_counter()
    with pytest.raises(BackendTimeout):
        await collect(backend.stream_completion(CompletionRequest(prompt="x")))
    assert 0.4 < time.perf_counter() - start < 2.5


async def test_total_deadline_on_a_dripping_stream(
    fault_server: FaultFactory, client: httpx.AsyncClient
) -> None:
    server = await fault_server("drip", interval=0.1)
    backend = backend_for(server.url, client, timeouts=Timeouts(connect=1, read=1, total=0.8))
    got: list[str] = []
    start = time.perf_counter()
    with pytest.raises(BackendTimeout, match="total deadline"):
        async for text in backend.stream_completion(CompletionRequest(prompt="x")):
            got.append(text)
    assert got and 0.7 < time.perf_counter() - start < 2.0
    assert backend.stats.failed == 1


@pytest.mark.parametrize("mode", ["cut_stream", "no_done"])
async def test_stream_cut_halfway(
    mode: str, fault_server: FaultFactory, client: httpx.AsyncClient
) -> None:
    server = await fault_server(mode, chunks=3)
    backend = backend_for(server.url, client)
    got: list[str] = []
    with pytest.raises(BackendStreamBroken):
        async for text in backend.stream_completion(CompletionRequest(prompt="x")):
            got.append(text)
    assert got == [" tok0", " tok1", " tok2"]


async def test_api_key_is_sent_and_never_logged(
    http500_server: FaultInjectionServer,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-test-0123456789"
    monkeypatch.setenv("LOWENTROPY_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    role = RoleConfig(
        endpoints=(EndpointConfig(url=http500_server.url, supports_prediction=True),),
        api_key_env="LOWENTROPY_TEST_KEY",
        timeouts=FAST,
    )
    backend = OpenAIBackend(role.endpoints[0], role, client)
    with pytest.raises(BackendHTTPError):
        await collect(backend.stream_completion(CompletionRequest(prompt="x", prediction="d")))
    request = http500_server.requests[-1]
    assert request.headers["authorization"] == f"Bearer {secret}"
    assert request.json()["prediction"] == {"type": "content", "content": "d"}
    assert secret not in caplog.text

    monkeypatch.delenv("LOWENTROPY_TEST_KEY")
    with pytest.raises(BackendConfigError, match="LOWENTROPY_TEST_KEY") as err:
        await collect(backend.stream_completion(CompletionRequest(prompt="x")))
    assert not err.value.retryable


async def test_embed_maps_server_errors(
    http500_server: FaultInjectionServer, client: httpx.AsyncClient
) -> None:
    backend = backend_for(http500_server.url, client)
    with pytest.raises(BackendHTTPError):
        await backend.embed(["a", "b"])
    assert http500_server.requests[-1].path == "/v1/embeddings"
    assert http500_server.requests[-1].json()["input"] == ["a", "b"]


async def test_backend_owns_its_client_when_given_none(llama_server: str) -> None:
    role = role_for(llama_server)
    backend = OpenAIBackend(role.endpoints[0], role)
    assert (await backend.health()).ok
    await backend.aclose()


# ---------------------------------------------------------------- RemoteTokenizer

TEXTS = [
    "def fibonacci(n):\n    return n",
    "<|im_start|>user\nhello<|im_end|>",
    "unicode: naïve café 🐍",
    "",
]


async def test_remote_tokenizer_matches_the_gguf_vocabulary(llama_server: str) -> None:
    requests: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: requests.append(r.url.path)]})
    remote = RemoteTokenizer(EndpointConfig(url=llama_server), RoleConfig(), client=http)
    local = RemoteTokenizer(
        EndpointConfig(url=llama_server), RoleConfig(tokenizer=str(smollm2_gguf()))
    )

    def counts(tok: RemoteTokenizer) -> list[int]:
        return [tok.count(t) for t in TEXTS]

    remote_counts = await asyncio.to_thread(counts, remote)
    local_counts = await asyncio.to_thread(counts, local)
    assert remote.source == "/extras/tokenize" and remote.exact
    assert local.source == "gguf" and local.exact
    assert remote_counts == local_counts
    assert remote_counts[0] > 5 and remote_counts[-1] == 0
    # the special tokens are single tokens, as the server sees them in a prompt
    assert remote_counts[1] < estimate_tokens(TEXTS[1])
    seen = len(requests)
    assert await asyncio.to_thread(counts, remote) == remote_counts
    assert len(requests) == seen, "repeated texts come from the cache"
    await asyncio.to_thread(remote.close)
    await asyncio.to_thread(http.close)


async def test_remote_tokenizer_estimates_when_nothing_answers(
    refused_url: str, http500_server: FaultInjectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    for url in (refused_url, http500_server.url):
        tok = RemoteTokenizer(EndpointConfig(url=url), RoleConfig())
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            n1 = await asyncio.to_thread(tok.count, "x" * 40)
            n2 = await asyncio.to_thread(tok.count, "y" * 8)
        assert (n1, n2) == (10, 2) and not tok.exact and tok.source == "estimate"
        assert len([r for r in caplog.records if "estimates" in r.message]) == 1
        tok.close()
    tried = {r.path for r in http500_server.requests}
    assert tried == {"/tokenize", "/extras/tokenize"}


def test_bad_tokenizer_gguf_is_a_config_error(tmp_path: object) -> None:
    with pytest.raises(BackendConfigError, match="tokenizer GGUF"):
        RemoteTokenizer(
            EndpointConfig(url="http://127.0.0.1:1"), RoleConfig(tokenizer="/nonexistent.gguf")
        )
