"""Pool: prefix-affinity routing, least-loaded fallback, taking replicas out and back in.

One real llama.cpp server (`llama_server`) is reached directly and through a
pass-through `FaultInjectionServer("proxy")`, which gives two replicas of one
model; other FaultInjectionServers play the dead, failing and slow replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import attrs
import httpx
import pytest
from servers import FaultFactory, FaultInjectionServer, free_port

from lowentropy.models.config import EndpointConfig, RoleConfig, Timeouts
from lowentropy.models.errors import (
    BackendConfigError,
    BackendHTTPError,
    BackendStreamBroken,
    BackendUnavailable,
)
from lowentropy.models.http_backend import OpenAIBackend
from lowentropy.models.pool import (
    Pool,
    Replica,
    affinity_choice,
    prefix_digest,
    rendezvous_order,
    rendezvous_score,
)
from lowentropy.models.types import Capabilities, CompletionRequest, Generator, Stream

TIMEOUTS = Timeouts(connect=1.0, read=10.0, total=30.0)
ROLE = RoleConfig(timeouts=TIMEOUTS)


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def backend(url: str, client: httpx.AsyncClient) -> OpenAIBackend:
    return OpenAIBackend(EndpointConfig(url=url), ROLE, client)


def request(prefix: str = "", max_tokens: int = 3) -> CompletionRequest:
    return CompletionRequest(
        prompt=prefix + "def f():\n    ", max_tokens=max_tokens, stable_prefix=prefix
    )


async def run(pool: Pool, req: CompletionRequest) -> str:
    return "".join([t async for t in pool.stream_completion(req)])


def served(pool: Pool) -> list[int]:
    return [r.backend.stats.completed for r in pool.replicas]


def owner(pool: Pool, prefix: str) -> int:
    digest = prefix_digest(prefix)
    scores = [rendezvous_score(digest, r.key) for r in pool.replicas]
    return scores.index(max(scores))


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_pool_states_its_capabilities_and_a_closed_stream_ends_its_replicas(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    pool = Pool([backend(llama_server, client)])
    assert pool.capabilities == Capabilities(chat_template=True, speculation=False, embedded=False)
    predicting = OpenAIBackend(EndpointConfig(url=llama_server, supports_prediction=True), ROLE)
    assert Pool([predicting]).capabilities.speculation
    assert not Pool([predicting, backend(llama_server, client)]).capabilities.speculation
    await predicting.aclose()
    async with contextlib.aclosing(pool.stream_completion(request(max_tokens=16))) as stream:
        assert isinstance(stream, Stream)
        async for _ in stream:
            break  # closing the pool's stream closes the replica's HTTP stream now
    assert stream.stats is None  # an HTTP endpoint counts no tokens per stream
    assert pool.counters() == {}
    counters = pool.replicas[0].backend.counters()
    assert (counters["started"], counters["cancelled"]) == (1, 1)


async def test_same_stable_prefix_same_replica(
    llama_server: str, fault_server: FaultFactory, client: httpx.AsyncClient
) -> None:
    proxy = await fault_server("proxy", upstream=llama_server)
    pool = Pool([backend(llama_server, client), backend(proxy.url, client)])
    assert isinstance(pool, Generator)
    prefixes = [f"# file_{i}.py\nimport os\n" for i in range(6)]
    expected = [owner(pool, p) for p in prefixes]
    for _ in range(2):
        for prefix, want in zip(prefixes, expected, strict=True):
            before = served(pool)
            assert await run(pool, request(prefix))
            after = served(pool)
            assert [a - b for a, b in zip(after, before, strict=True)] == [
                int(i == want) for i in range(2)
            ], f"{prefix!r} should stay on replica {want}"
    # warm goes to the replica the prefix's requests will use
    warms_before = [r.backend.stats.warms for r in pool.replicas]
    await pool.warm(prefixes[0])
    warmed = [r.backend.stats.warms - w for r, w in zip(pool.replicas, warms_before, strict=True)]
    assert warmed[expected[0]] == 1 and sum(warmed) == 1


async def test_least_loaded_without_prefix_and_a_busy_replica_sheds_to_the_second_choice(
    llama_server: str, fault_server: FaultFactory, client: httpx.AsyncClient
) -> None:
    slow = await fault_server("drip", interval=0.05)  # a replica busy with an endless stream
    pool = Pool([backend(slow.url, client), backend(llama_server, client)], affinity_choices=2)
    busy = pool.stream_completion(request())
    assert await busy.__anext__()  # slow replica now has one stream in flight
    assert pool.info()[0].in_flight == 1
    await run(pool, request())
    assert served(pool) == [0, 1], "no prefix: the idle replica takes it"

    # a prefix whose first choice is the busy replica goes to its second, the idle one
    prefix = next(p for p in (f"doc{i}" for i in range(100)) if owner(pool, p) == 0)
    await run(pool, request(prefix))
    assert served(pool) == [0, 2]
    # with one choice it waits for its own replica, however busy
    pool.affinity_choices = 1
    second = pool.stream_completion(request(prefix))
    assert await second.__anext__()
    assert pool.info()[0].in_flight == 2
    await second.aclose()
    await busy.aclose()
    assert pool.info()[0].in_flight == 0


async def test_round_robin_and_least_loaded_ignore_the_prefix(
    llama_server: str, fault_server: FaultFactory, client: httpx.AsyncClient
) -> None:
    proxy = await fault_server("proxy", upstream=llama_server)
    pool = Pool([backend(llama_server, client), backend(proxy.url, client)], routing="round_robin")
    for _ in range(4):
        assert await run(pool, request("# one document\n"))
    assert served(pool) == [2, 2]
    with pytest.raises(BackendConfigError, match="routing 'nearest' is not one of"):
        Pool([backend(llama_server, client)], routing="nearest")
    with pytest.raises(BackendConfigError, match="affinityChoices must be at least 1"):
        Pool([backend(llama_server, client)], affinity_choices=0)
    # least_loaded: the proxy has one stream in flight, so the direct replica takes the rest
    pool = Pool([backend(proxy.url, client), backend(llama_server, client)], routing="least_loaded")
    busy = pool.stream_completion(request("# one document\n", max_tokens=32))
    assert await busy.__anext__()
    for _ in range(2):
        assert await run(pool, request("# one document\n"))
    assert served(pool) == [0, 2]
    await busy.aclose()


def test_affinity_choice_keeps_a_prefix_on_its_first_replicas() -> None:
    order = [2, 0, 1]  # the prefix's rendezvous order
    assert affinity_choice(order, [0, 0, 0], 2) == 2
    assert affinity_choice(order, [1, 0, 1], 2) == 2, "a tie goes to the first choice"
    assert affinity_choice(order, [0, 0, 1], 2) == 0, "a busier first choice sheds to the second"
    assert affinity_choice(order, [0, 0, 1], 1) == 2, "one choice: always the first"
    assert affinity_choice(order, [3, 0, 5], 2) == 0, "never beyond the prefix's choices"
    assert affinity_choice(order, [3, 0, 5], 3) == 1


async def test_refused_replica_is_taken_out_and_probed_back_in(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    dead_port = free_port()
    revived = FaultInjectionServer("proxy", port=dead_port, upstream=llama_server)
    pool = Pool(
        [backend(revived.url, client), backend(llama_server, client)],
        failure_threshold=2,
        probe_interval=0.3,
    )
    # Without a prefix the first replica (dead) is tried first, then the retry succeeds.
    for expected_failures in (1, 2):
        assert await run(pool, request())
        assert pool.replicas[0].backend.stats.failed == expected_failures
    info = pool.info()[0]
    assert not info.healthy and info.consecutive_failures == 2 and info.probe_in is not None
    assert await run(pool, request())
    assert pool.replicas[0].backend.stats.started == 2, "a replica that is out gets no traffic"
    assert served(pool) == [0, 3]

    await revived.start()
    try:
        await asyncio.sleep(0.35)
        assert await run(pool, request())  # routing notices the probe is due and starts it
        await wait_until(lambda: pool.info()[0].healthy)
        assert revived.connections >= 1  # the probe went through the revived port
        assert await run(pool, request())
        assert served(pool)[0] == 1, "back in: it takes traffic again"
    finally:
        await revived.stop()
        await pool.aclose()


async def test_a_request_waits_for_a_due_probe_when_all_are_out(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    revived = FaultInjectionServer("proxy", port=free_port(), upstream=llama_server)
    pool = Pool([backend(revived.url, client)], failure_threshold=1, probe_interval=0.2)
    with pytest.raises(BackendUnavailable):
        await run(pool, request())
    assert not pool.info()[0].healthy
    await revived.start()
    try:
        await asyncio.sleep(0.25)
        assert await run(pool, request())  # probed inline, then served
        assert pool.info()[0].healthy and served(pool) == [1]
    finally:
        await revived.stop()
        await pool.aclose()


async def test_retry_once_on_another_replica(
    llama_server: str, fault_server: FaultFactory, client: httpx.AsyncClient, refused_url: str
) -> None:
    failing = await fault_server("http500")
    pool = Pool([backend(failing.url, client), backend(llama_server, client)])
    assert await run(pool, request())
    assert len(failing.requests) == 1 and served(pool) == [0, 1]

    # only once: two broken replicas give the second error
    pool = Pool([backend(refused_url, client), backend(failing.url, client)], failure_threshold=5)
    with pytest.raises(BackendHTTPError):
        await run(pool, request())
    assert [r.backend.stats.failed for r in pool.replicas] == [1, 1]


async def test_errors_after_the_first_token_propagate(
    llama_server: str, fault_server: FaultFactory, client: httpx.AsyncClient
) -> None:
    cut = await fault_server("cut_stream", chunks=2)
    pool = Pool([backend(cut.url, client), backend(llama_server, client)])
    got: list[str] = []
    with pytest.raises(BackendStreamBroken):
        async for text in pool.stream_completion(request()):
            got.append(text)
    assert got == [" tok0", " tok1"]
    assert pool.replicas[1].backend.stats.started == 0, "no retry once text was shown"


async def test_no_healthy_replica(refused_url: str, client: httpx.AsyncClient) -> None:
    pool = Pool([backend(refused_url, client)], failure_threshold=1, probe_interval=60)
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        await run(pool, request())
    start = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="no healthy replica; next probe in"):
        await run(pool, request())
    assert time.perf_counter() - start < 0.5


async def test_client_errors_do_not_take_a_replica_out(
    fault_server: FaultFactory, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = await fault_server("http500")
    role = RoleConfig(endpoints=(EndpointConfig(url=failing.url),), api_key_env="LE_NO_SUCH_KEY")
    monkeypatch.delenv("LE_NO_SUCH_KEY", raising=False)
    pool = Pool.from_config(role, client)
    for _ in range(3):
        with pytest.raises(BackendConfigError):
            await run(pool, request())
    assert pool.info()[0].healthy and failing.requests == []


async def test_from_config_owns_a_client_when_given_none(llama_server: str) -> None:
    role = RoleConfig(
        endpoints=(EndpointConfig(url=llama_server + "/v1"), EndpointConfig(url=llama_server)),
        failure_threshold=3,
        probe_interval=1.5,
    )
    pool = Pool.from_config(role, name="tab")
    assert (pool.failure_threshold, pool.probe_interval) == (3, 1.5)
    assert (pool.routing, pool.affinity_choices) == ("affinity", 1)
    assert [r.url for r in pool.info()] == [llama_server, llama_server]
    assert pool.tokenizer() is pool.replicas[0].backend.tokenizer()
    reports = await pool.health()
    assert all(r.ok for r in reports)
    await pool.aclose()
    with pytest.raises(BackendConfigError):
        Pool.from_config(RoleConfig())
    rr = Pool.from_config(attrs.evolve(role, routing="round_robin", affinity_choices=2))
    assert (rr.routing, rr.affinity_choices) == ("round_robin", 2)
    await rr.aclose()


def test_rendezvous_moves_only_the_departed_replicas_documents() -> None:
    keys = ["http://a|m", "http://b|m", "http://c|m"]
    prefixes = [f"doc{i}" for i in range(300)]

    def pick(prefix: str, alive: list[str]) -> str:
        digest = prefix_digest(prefix)
        return max(alive, key=lambda k: rendezvous_score(digest, k))

    before = {p: pick(p, keys) for p in prefixes}
    after = {p: pick(p, keys[:2]) for p in prefixes}
    moved = [p for p in prefixes if before[p] != after[p]]
    assert all(before[p] == keys[2] for p in moved)
    counts = [list(before.values()).count(k) for k in keys]
    assert min(counts) > 60, f"uneven spread {counts}"
    # rendezvous_order agrees: its first choice is the highest score
    assert all(keys[rendezvous_order(prefix_digest(p), keys)[0]] == before[p] for p in prefixes)


async def test_replica_key_includes_model(client: httpx.AsyncClient) -> None:
    role = RoleConfig()
    a = Replica(OpenAIBackend(EndpointConfig(url="http://h/v1", model="x"), role, client))
    b = Replica(OpenAIBackend(EndpointConfig(url="http://h", model="y"), role, client))
    assert a.key != b.key and a.backend.root == b.backend.root
