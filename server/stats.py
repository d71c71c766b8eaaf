"""Counters and timings that `lowentropy/stats` returns and the benches read."""

from __future__ import annotations

import statistics
from collections import deque

import attrs


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@attrs.define
class TabStats:
    requests: int = 0
    shown: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    typed_through: int = 0
    prefetch_hits: int = 0
    prefetches: int = 0
    prefetches_done: int = 0
    backend_calls: int = 0
    completed: int = 0
    cancelled: int = 0
    superseded: int = 0
    errors: int = 0
    warmings: int = 0
    empty: int = 0
    over_budget: int = 0  # answered empty at completion.budgetMs, generation left running
    late_cached: int = 0  # of those, finished later and kept for typing through
    # Per answered request: time in the server excluding time waiting on the backend.
    overhead_ms: deque[float] = attrs.field(factory=lambda: deque(maxlen=2000))
    total_ms: deque[float] = attrs.field(factory=lambda: deque(maxlen=2000))
    cached_ms: deque[float] = attrs.field(factory=lambda: deque(maxlen=2000))

    def snapshot(self) -> dict[str, object]:
        over = list(self.overhead_ms)
        cached = list(self.cached_ms)
        return {
            "requests": self.requests,
            "shown": self.shown,
            "accepted": self.accepted,
            "partiallyAccepted": self.partially_accepted,
            "typedThrough": self.typed_through,
            "prefetchHits": self.prefetch_hits,
            "prefetches": self.prefetches,
            "prefetchesDone": self.prefetches_done,
            "backendCalls": self.backend_calls,
            "completed": self.completed,
            "cancelled": self.cancelled,
            "superseded": self.superseded,
            "errors": self.errors,
            "warmings": self.warmings,
            "empty": self.empty,
            "overBudget": self.over_budget,
            "lateCached": self.late_cached,
            "overheadMsP50": percentile(over, 0.5),
            "overheadMsP99": percentile(over, 0.99),
            "overheadSamples": len(over),
            "cachedMsP50": percentile(cached, 0.5),
            "cachedMsP99": percentile(cached, 0.99),
            "totalMsMean": statistics.fmean(self.total_ms) if self.total_ms else 0.0,
        }
