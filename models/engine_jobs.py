"""What the embedded engine's worker and the event loop share: a job, its sampling, its counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from lowentropy.models.types import GenerationStats

if TYPE_CHECKING:
    pass

__all__ = ["EngineStats", "GenerationCancelled", "GenerationStats", "Job", "Sampling"]


@attrs.define
class EngineStats:
    """Counters for one loaded model, written only by its worker thread."""

    generations_started: int = 0
    generations_completed: int = 0
    generations_cancelled: int = 0  # includes requests cancelled while still queued
    generations_failed: int = 0
    tokens_generated: int = 0
    prompt_tokens_evaluated: int = 0
    prompt_tokens_reused: int = 0  # served from the KV cache instead of evaluated
    warms: int = 0
    prompt_tokens_shifted: int = 0  # reused by moving cached chunks (included in reused)
    snapshots_saved: int = 0
    snapshot_restores: int = 0
    draft_tokens: int = 0  # speculative draft tokens proposed (from predictions)
    accepted_draft_tokens: int = 0
    forward_passes: int = 0  # decode steps after prefill (one per token when not drafting)
    last_ttft_s: float | None = None  # worker start of a request → its first token
    last_queue_wait_s: float | None = None  # submitted → the worker started it

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class GenerationCancelled(Exception):
    """Raised on the worker when the consumer went away; never leaves this module."""


@attrs.frozen
class Sampling:
    max_tokens: int
    temperature: float
    stop: tuple[str, ...]
    prediction: str | None = None


@attrs.define
class Job:
    """One request's link between the worker and the event loop."""

    emit: Callable[[str | BaseException | None], None]
    cancel: threading.Event = attrs.field(factory=threading.Event)
    submitted: float = attrs.field(factory=time.perf_counter)
    stats: GenerationStats = attrs.field(factory=GenerationStats)
