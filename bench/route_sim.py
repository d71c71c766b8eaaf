"""A replica simulator good enough to rank routing policies (issue 18).

Each replica has:
- a KV prefix cache of bounded size: LRU over chained 16-token blocks, as vLLM's
  automatic prefix caching keys them (`route_trace.block_hashes`); a request's hit is
  its run of leading cached blocks (never the whole prompt: one token is recomputed).
  `SequenceCache` is the other model: llama-cpp-python's server keeps the KV of one
  sequence (the last prompt), and a hit is the common token prefix with it;
- a prefill cost per uncached token and a decode cost per output token (a `Profile`);
- a FIFO queue. Prefill runs one request at a time; with `batched_decode` (vLLM's
  continuous batching) decoding overlaps the next prefill, without it (llama.cpp, one
  slot) the replica is busy until the last token.

A request's TTFT is its queueing delay plus its prefill; the load a policy sees is the
number of requests in flight on each replica (queued, prefilling or decoding) at arrival:
all of them for a router, only the requesting user's own for the client-side pool (each
editor runs its own lowentropy). The oracle sees every cache and queue.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lowentropy.models.pool import affinity_choice, prefix_digest, rendezvous_order

BLOCK = 16


@dataclass(frozen=True)
class Profile:
    name: str
    prefill_tok_s: float  # prompt tokens a second, one request
    decode_tok_s: float  # output tokens a second, one request
    overhead_s: float  # per request: HTTP, scheduling, sampling setup
    batched_decode: bool  # decoding overlaps other requests' prefill
    cache_tokens: int  # KV cache per replica
    source: str = ""


# The real-engine check replays one request at a time: only the cache model matters.
CHECK_PROFILE = Profile("check", 1000.0, 100.0, 0.0, False, 0)


@dataclass(frozen=True)
class SimRequest:
    t: float
    user: int
    digest: bytes  # of the stable prefix: what the pool routes on
    blocks: tuple[int, ...]  # chained block hashes of the prompt's full blocks
    n_tokens: int
    output_tokens: int
    tokens: np.ndarray | None = None  # kept for the sequence cache model only


def sim_request(
    t: float,
    user: int,
    stable_prefix: str,
    blocks: Sequence[int],
    n_tokens: int,
    output_tokens: int,
    tokens: np.ndarray | None = None,
) -> SimRequest:
    return SimRequest(
        t, user, prefix_digest(stable_prefix), tuple(blocks), n_tokens, output_tokens, tokens
    )


class BlockCache:
    """LRU over chained block hashes, `capacity` blocks."""

    def __init__(self, capacity_tokens: int) -> None:
        self.capacity = max(1, capacity_tokens // BLOCK)
        self.lru: OrderedDict[int, None] = OrderedDict()

    def cached(self, req: SimRequest) -> int:
        n = 0
        for h in req.blocks:
            if h not in self.lru:
                break
            n += 1
        return min(n * BLOCK, req.n_tokens - 1)

    def admit(self, req: SimRequest) -> None:
        lru = self.lru
        for h in req.blocks:
            if h in lru:
                lru.move_to_end(h)
            else:
                lru[h] = None
        while len(lru) > self.capacity:
            lru.popitem(last=False)


class SequenceCache:
    """llama-cpp-python's server: the KV of the last prompt; a hit is the common prefix."""

    def __init__(self, capacity_tokens: int = 0) -> None:
        self.last: np.ndarray | None = None

    def cached(self, req: SimRequest) -> int:
        assert req.tokens is not None, "the sequence cache needs the prompt's tokens"
        if self.last is None:
            return 0
        n = min(len(self.last), len(req.tokens))
        diff = np.nonzero(self.last[:n] != req.tokens[:n])[0]
        common = int(diff[0]) if len(diff) else n
        # llama-cpp-python re-evaluates one token when the whole prompt matches
        return common - 1 if common == len(req.tokens) else common

    def admit(self, req: SimRequest) -> None:
        self.last = req.tokens


Cache = BlockCache | SequenceCache


@dataclass
class Replica:
    key: str
    cache: Cache
    free_at: float = 0.0  # when the prefill server is next free
    busy: float = 0.0  # seconds of work done
    finishing: list[float] = field(default_factory=list)  # heap of in-flight finish times
    by_user: dict[int, list[float]] = field(default_factory=dict)  # the same, per user

    def load(self, now: float, user: int | None = None) -> int:
        """Requests in flight at `now`: all of them (what a router sees), or one user's
        (what that user's own pool sees: each editor runs its own lowentropy)."""
        heap = self.finishing if user is None else self.by_user.setdefault(user, [])
        while heap and heap[0] <= now:
            heapq.heappop(heap)
        return len(heap)

    def loads_for(self, now: float, req: SimRequest, client: bool) -> int:
        return self.load(now, req.user if client else None)


@dataclass
class Outcome:
    policy: str
    replicas: int
    requests: int
    prompt_tokens: int
    cached_tokens: int
    ttft: list[float]
    queue: list[float]
    busy: list[float]
    span: float
    chosen: list[int]  # the replica of each request

    @property
    def hit_rate(self) -> float:
        return self.cached_tokens / max(1, self.prompt_tokens)

    def ttft_ms(self, q: float) -> float:
        return 1000 * float(np.quantile(self.ttft, q))

    def queue_ms(self, q: float) -> float:
        return 1000 * float(np.quantile(self.queue, q))

    @property
    def imbalance(self) -> float:
        """The busiest replica's work over the mean replica's."""
        mean = sum(self.busy) / len(self.busy)
        return max(self.busy) / mean if mean else 1.0

    @property
    def utilization(self) -> float:
        return sum(self.busy) / (len(self.busy) * self.span) if self.span else 0.0


# ---- policies: (request, replicas, now, profile) -> index ----------------------------------------

Policy = Callable[[SimRequest, list[Replica], float, Profile], int]


def round_robin() -> Policy:
    counter = itertools.count()
    return lambda req, reps, now, prof: next(counter) % len(reps)


def least_loaded(req: SimRequest, reps: list[Replica], now: float, prof: Profile) -> int:
    loads = [r.load(now) for r in reps]
    return loads.index(min(loads))


def affinity(saturation: int = 4, client: bool = True) -> Policy:
    """The pool before this issue: the rendezvous owner of the stable prefix, unless it has
    `saturation` requests in flight and another has fewer: then the least loaded."""

    def choose(req: SimRequest, reps: list[Replica], now: float, prof: Profile) -> int:
        order = rendezvous_order(req.digest, [r.key for r in reps])
        loads = [r.loads_for(now, req, client) for r in reps]
        owner = order[0]
        least = loads.index(min(loads))
        if loads[owner] >= saturation and loads[least] < loads[owner]:
            return least
        return owner

    return choose


def bounded_choice(order: Sequence[int], loads: Sequence[int], load_factor: float) -> int:
    """The first replica in `order` that stays within `load_factor` times the mean load once
    it takes the request (consistent hashing with bounded loads, Mirrokni et al. 2018)."""
    cap = math.ceil(load_factor * (sum(loads) + 1) / len(loads))
    return next((i for i in order if loads[i] + 1 <= cap), order[0])


def bounded(load_factor: float, client: bool = False) -> Policy:
    """Rendezvous order of the stable prefix, bounded loads: a hot prefix moves to its next
    choice (the same for all its requests) while its first is over the bound."""

    def choose(req: SimRequest, reps: list[Replica], now: float, prof: Profile) -> int:
        order = rendezvous_order(req.digest, [r.key for r in reps])
        return bounded_choice(order, [r.loads_for(now, req, client) for r in reps], load_factor)

    return choose


def pool_affinity(choices: int, client: bool = True) -> Policy:
    """models/pool.py's affinity routing, its own code: the least loaded of the prefix's
    first `choices` rendezvous replicas (power of d choices)."""

    def choose(req: SimRequest, reps: list[Replica], now: float, prof: Profile) -> int:
        order = rendezvous_order(req.digest, [r.key for r in reps])
        return affinity_choice(order, [r.loads_for(now, req, client) for r in reps], choices)

    return choose


def oracle(req: SimRequest, reps: list[Replica], now: float, prof: Profile) -> int:
    """Knows every cache and queue: the replica with the earliest first token."""

    def ttft(r: Replica) -> tuple[float, int]:
        cached = r.cache.cached(req)
        return max(now, r.free_at) + (req.n_tokens - cached) / prof.prefill_tok_s, -cached

    return min(range(len(reps)), key=lambda i: ttft(reps[i]))


def simulate(
    requests: Sequence[SimRequest],
    n_replicas: int,
    policy: Policy,
    profile: Profile,
    *,
    name: str,
    cache: type[BlockCache] | type[SequenceCache] = BlockCache,
    keys: Sequence[str] | None = None,
) -> Outcome:
    """Replays `requests` in arrival order; `keys` are the replicas' rendezvous keys (the
    real pool's `root|model` when checking against it)."""
    keys = keys or [f"http://replica-{i}:8000|" for i in range(n_replicas)]
    reps = [Replica(key=keys[i], cache=cache(profile.cache_tokens)) for i in range(n_replicas)]
    chosen: list[int] = []
    ttft, queue = [], []
    prompt = cached_total = 0
    for req in requests:
        now = req.t
        i = policy(req, reps, now, profile)
        chosen.append(i)
        r = reps[i]
        r.load(now)
        cached = max(0, r.cache.cached(req))
        r.cache.admit(req)
        start = max(now, r.free_at)
        prefill = profile.overhead_s + (req.n_tokens - cached) / profile.prefill_tok_s
        decode = req.output_tokens / profile.decode_tok_s
        finish = start + prefill + decode
        r.free_at = start + prefill if profile.batched_decode else finish
        r.busy += r.free_at - start
        heapq.heappush(r.finishing, finish)
        heapq.heappush(r.by_user.setdefault(req.user, []), finish)
        ttft.append(start - now + prefill)
        queue.append(start - now)
        prompt += req.n_tokens
        cached_total += cached
    span = (max(r.free_at for r in reps) - requests[0].t) if requests else 0.0
    return Outcome(
        name,
        n_replicas,
        len(requests),
        prompt,
        cached_total,
        ttft,
        queue,
        [r.busy for r in reps],
        span,
        chosen,
    )
