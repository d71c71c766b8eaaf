"""Several replicas of one role's model behind one Generator.

Routing (`routing`, default "affinity"): rendezvous (highest-random-weight) hashing of
`stable_prefix` orders the healthy replicas for each prefix, and the first takes the
request, so a document keeps hitting the replica whose KV cache holds its prefix and
only the documents of a replica that leaves move. `affinity_choices` > 1 takes the
least loaded of the prefix's first that many instead (the first on a tie). The loads
are the streams this client has in flight, not the replica's: on replayed multi-user
traces (bench/route.py, issue 18; README, Scaling) shedding on them split one user's
keystrokes between two caches and lost to the first choice on every trace, while a
router that sees every user's load gains from shedding. Without a prefix the
least-loaded healthy replica takes it. "round_robin" and "least_loaded" ignore the
prefix (a router in front that routes on its own, or replicas without prefix caching).

Health: `failure_threshold` consecutive failures take a replica out; once
`probe_interval` seconds have passed a background probe (GET /v1/models) lets
it back in. Live requests never serve as trials, so a dead replica costs a
keystroke nothing. A connection failure or 5xx before the first token is
retried once on another replica; after a token was yielded errors propagate.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence

import attrs
import httpx

from lowentropy.models.config import RoleConfig
from lowentropy.models.errors import (
    BackendConfigError,
    BackendError,
    BackendHTTPError,
    BackendStreamBroken,
    BackendTimeout,
    BackendUnavailable,
)
from lowentropy.models.http_backend import BackendStats, HealthReport, OpenAIBackend, make_client
from lowentropy.models.types import (
    Capabilities,
    ChatRequest,
    CompletionRequest,
    Scalar,
    Stream,
    TextStream,
    Tokenizer,
)

log = logging.getLogger(__name__)

ROUTINGS = ("affinity", "round_robin", "least_loaded")
# Chosen by bench/route.py (issue 18): the prefix's first replica, whatever this client's
# load there (2 split one user's keystrokes between two caches and lost on every trace).
DEFAULT_AFFINITY_CHOICES = 1


def rendezvous_score(prefix_digest: bytes, replica_key: str) -> int:
    """The HRW weight of a replica for a prefix; the highest score wins."""
    h = hashlib.blake2b(prefix_digest + replica_key.encode("utf-8"), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def prefix_digest(stable_prefix: str) -> bytes:
    return hashlib.blake2b(stable_prefix.encode("utf-8"), digest_size=16).digest()


def rendezvous_order(prefix_digest: bytes, keys: Sequence[str]) -> list[int]:
    """Indexes of `keys`, the prefix's preferred replica first (highest HRW score)."""
    scores = [rendezvous_score(prefix_digest, key) for key in keys]
    return sorted(range(len(keys)), key=lambda i: scores[i], reverse=True)


def affinity_choice(order: Sequence[int], loads: Sequence[int], choices: int) -> int:
    """The least loaded of the prefix's first `choices` replicas in rendezvous `order`, the
    earlier on a tie (power of d choices among the prefix's own replicas): a prefix lives on
    at most `choices` replicas, so each of them keeps it cached, and a hot one sheds load."""
    top = order[: max(1, choices)]
    return min(top, key=lambda i: loads[i])


def counts_against_replica(exc: BackendError) -> bool:
    """Failures that say the replica is unwell (not the request: a 4xx, a bad key)."""
    if isinstance(exc, BackendHTTPError):
        return exc.status >= 500
    return isinstance(exc, BackendUnavailable | BackendTimeout | BackendStreamBroken)


def worth_retrying_elsewhere(exc: BackendError) -> bool:
    """Before the first token: refused/reset connections, connect timeouts and 5xx."""
    if isinstance(exc, BackendHTTPError):
        return exc.status >= 500
    if isinstance(exc, BackendTimeout):
        return isinstance(exc.__cause__, httpx.ConnectTimeout)
    return isinstance(exc, BackendUnavailable | BackendStreamBroken)


@attrs.define(eq=False)
class Replica:
    backend: OpenAIBackend
    healthy: bool = True
    consecutive_failures: int = 0
    # monotonic time at which a taken-out replica is probed again
    probe_at: float = 0.0
    probe_task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return self.backend.root + "|" + self.backend.model

    @property
    def in_flight(self) -> int:
        return self.backend.stats.in_flight


@attrs.frozen(kw_only=True)
class ReplicaInfo:
    """A snapshot of one replica for `doctor` and stats."""

    name: str
    url: str
    healthy: bool
    consecutive_failures: int
    in_flight: int
    probe_in: float | None  # seconds until the next probe of a taken-out replica
    stats: BackendStats


class Pool:
    """A Generator over replicas of one model; see the module docstring for the policy."""

    def __init__(
        self,
        backends: Sequence[OpenAIBackend],
        *,
        name: str = "pool",
        failure_threshold: int = 2,
        probe_interval: float = 5.0,
        routing: str = "affinity",
        affinity_choices: int = DEFAULT_AFFINITY_CHOICES,
        probe_wait: float = 2.0,
        owned_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends:
            raise BackendConfigError(f"{name}: a pool needs at least one endpoint")
        if routing not in ROUTINGS:
            raise BackendConfigError(
                f"{name}: routing {routing!r} is not one of {', '.join(ROUTINGS)}"
            )
        if affinity_choices < 1:
            raise BackendConfigError(
                f"{name}: affinityChoices must be at least 1, got {affinity_choices}"
            )
        self.name = name
        self.replicas = [Replica(b) for b in backends]
        self.failure_threshold = max(1, failure_threshold)
        self.probe_interval = probe_interval
        self.routing = routing
        # affinity: how many of a prefix's rendezvous replicas share its requests (the
        # least loaded takes each; 1 = always the first, however busy)
        self.affinity_choices = affinity_choices
        self._turn = 0  # round_robin's next replica
        # how long a request waits for due probes when every replica is out
        self.probe_wait = probe_wait
        self._owned_client = owned_client  # closed by aclose (from_config made it)
        self._clock = clock

    @classmethod
    def from_config(
        cls, role: RoleConfig, client: httpx.AsyncClient | None = None, *, name: str = "pool"
    ) -> Pool:
        """One OpenAIBackend per endpoint on a shared client (made here, and owned, when None)."""
        if not role.endpoints:
            raise BackendConfigError(f"{name}: no endpoints configured")
        owned = None
        if client is None:
            client = owned = make_client()
        backends = [OpenAIBackend(ep, role, client) for ep in role.endpoints]
        return cls(
            backends,
            name=name,
            failure_threshold=role.failure_threshold,
            probe_interval=role.probe_interval,
            routing=role.routing,
            affinity_choices=role.affinity_choices,
            owned_client=owned,
        )

    # -- Generator

    @property
    def capabilities(self) -> Capabilities:
        # A request may land on any replica: a prediction is sent only if all take it.
        return Capabilities(
            speculation=all(r.backend.endpoint.supports_prediction for r in self.replicas)
        )

    def stream_completion(self, req: CompletionRequest) -> TextStream[None]:
        stream = self._stream(lambda b: b.stream_completion(req), req.stable_prefix)
        return TextStream(stream, None)

    def stream_chat(self, req: ChatRequest) -> TextStream[None]:
        return TextStream(self._stream(lambda b: b.stream_chat(req), req.stable_prefix), None)

    async def warm(self, prefix: str) -> None:
        """Warm the replica that requests with this stable prefix will be routed to."""
        replica = await self._pick(prefix, exclude=(), for_warm=True)
        try:
            await replica.backend.warm(prefix)
        except BackendError as exc:
            self._record_failure(replica, exc)
            raise
        self._record_success(replica)

    def tokenizer(self) -> Tokenizer:
        # Replicas serve one model: the first one's tokenizer counts for all.
        return self.replicas[0].backend.tokenizer()

    def counters(self) -> dict[str, Scalar]:
        return {}  # per replica: `info()`

    async def aclose(self) -> None:
        for replica in self.replicas:
            if replica.probe_task is not None:
                replica.probe_task.cancel()
                await asyncio.gather(replica.probe_task, return_exceptions=True)
            await replica.backend.aclose()
        if self._owned_client is not None:
            await self._owned_client.aclose()

    # -- beyond the protocol

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        tried: list[Replica] = []
        last_error: BackendError | None = None
        while True:
            replica = await self._pick("", exclude=tried, last_error=last_error)
            tried.append(replica)
            try:
                vectors = await replica.backend.embed(texts)
            except BackendError as exc:
                self._record_failure(replica, exc)
                last_error = exc
                if len(tried) > 1 or not worth_retrying_elsewhere(exc):
                    raise
                continue
            self._record_success(replica)
            return vectors

    async def health(self) -> list[HealthReport]:
        """Probe every replica now (for `doctor`); a passing probe lets a replica back in."""
        reports = await asyncio.gather(*(r.backend.health() for r in self.replicas))
        for replica, report in zip(self.replicas, reports, strict=True):
            if report.ok and not replica.healthy:
                self._record_success(replica)
        return list(reports)

    def info(self) -> list[ReplicaInfo]:
        now = self._clock()
        return [
            ReplicaInfo(
                name=r.backend.name,
                url=r.backend.root,
                healthy=r.healthy,
                consecutive_failures=r.consecutive_failures,
                in_flight=r.in_flight,
                probe_in=None if r.healthy else max(0.0, r.probe_at - now),
                stats=r.backend.stats,
            )
            for r in self.replicas
        ]

    # -- routing

    def _choose(
        self, stable_prefix: str, *, exclude: Sequence[Replica], for_warm: bool = False
    ) -> Replica | None:
        self._start_due_probes()
        candidates = [r for r in self.replicas if r.healthy and r not in exclude]
        if not candidates:
            return None
        if self.routing == "round_robin":
            self._turn += 1
            return candidates[(self._turn - 1) % len(candidates)]
        loads = [r.in_flight for r in candidates]
        if not stable_prefix or self.routing == "least_loaded":
            return candidates[loads.index(min(loads))]
        order = rendezvous_order(prefix_digest(stable_prefix), [r.key for r in candidates])
        if for_warm:
            return candidates[order[0]]
        return candidates[affinity_choice(order, loads, self.affinity_choices)]

    async def _pick(
        self,
        stable_prefix: str,
        *,
        exclude: Sequence[Replica],
        for_warm: bool = False,
        last_error: BackendError | None = None,
    ) -> Replica:
        """`_choose`, but when every replica is out wait briefly for due probes first."""
        replica = self._choose(stable_prefix, exclude=exclude, for_warm=for_warm)
        if replica is None and not exclude:
            probes = [
                r.probe_task for r in self.replicas if r.probe_task and not r.probe_task.done()
            ]
            if probes:
                await asyncio.wait(probes, timeout=self.probe_wait)
                replica = self._choose(stable_prefix, exclude=exclude, for_warm=for_warm)
        if replica is None:
            raise last_error if last_error is not None else self._unavailable()
        return replica

    def _unavailable(self) -> BackendUnavailable:
        waits = [r.probe_at - self._clock() for r in self.replicas if not r.healthy]
        soon = f"; next probe in {max(0.0, min(waits)):.1f} s" if waits else ""
        return BackendUnavailable(f"{self.name}: no healthy replica{soon}")

    async def _stream(
        self, call: Callable[[OpenAIBackend], Stream], stable_prefix: str
    ) -> AsyncGenerator[str, None]:
        tried: list[Replica] = []
        last_error: BackendError | None = None
        while True:
            replica = await self._pick(stable_prefix, exclude=tried, last_error=last_error)
            tried.append(replica)
            yielded = False
            try:
                stream = call(replica.backend)
                async with contextlib.aclosing(stream):
                    async for text in stream:
                        yielded = True
                        yield text
            except BackendError as exc:
                self._record_failure(replica, exc)
                last_error = exc
                if yielded or len(tried) > 1 or not worth_retrying_elsewhere(exc):
                    raise
                log.info("%s: retrying on another replica after %s", self.name, exc.user_message)
                continue
            self._record_success(replica)
            return

    # -- health bookkeeping

    def _record_success(self, replica: Replica) -> None:
        if not replica.healthy:
            log.info("%s: replica %s is back", self.name, replica.backend.name)
        replica.healthy = True
        replica.consecutive_failures = 0

    def _record_failure(self, replica: Replica, exc: BackendError) -> None:
        if not counts_against_replica(exc):
            return
        replica.consecutive_failures += 1
        if replica.healthy and replica.consecutive_failures >= self.failure_threshold:
            replica.healthy = False
            replica.probe_at = self._clock() + self.probe_interval
            log.warning(
                "%s: taking replica %s out after %d failures (%s)",
                self.name,
                replica.backend.name,
                replica.consecutive_failures,
                exc.user_message,
            )

    def _start_due_probes(self) -> None:
        now = self._clock()
        for replica in self.replicas:
            if replica.healthy or now < replica.probe_at:
                continue
            if replica.probe_task is None or replica.probe_task.done():
                replica.probe_task = asyncio.get_running_loop().create_task(self._probe(replica))

    async def _probe(self, replica: Replica) -> None:
        report = await replica.backend.health()
        if report.ok:
            self._record_success(replica)
        else:
            replica.probe_at = self._clock() + self.probe_interval
            log.debug("%s: probe of %s failed: %s", self.name, replica.backend.name, report.error)
