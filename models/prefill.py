"""Prefill with KV-cache reuse: make llama.cpp's cache hold a prompt, evaluating only what it
cannot reuse (the shared prefix, cached chunks shifted into place, or a snapshot of an
earlier prompt; `kv_cache.py` plans and moves). Runs on the model's worker thread.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from lowentropy.models.engine_jobs import EngineStats, GenerationCancelled, GenerationStats
from lowentropy.models.kv_cache import (
    SnapshotStore,
    apply_moves,
    can_shift,
    plan_reuse,
    restore_snapshot,
    save_snapshot,
)

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ["PREFILL_CHUNK", "WARM_CHUNK", "Prefill"]

# KV reuse beyond the shared prefix (models/kv_cache.py): cached runs of at least this many
# tokens are shifted into place; a snapshot is kept when a prompt would discard at least
# SNAPSHOT_MIN_TOKENS cached tokens (and a quarter of the cache), and restored when it
# saves SNAPSHOT_MIN_GAIN tokens of prefill; all snapshots together stay within the budget.
CACHE_REUSE_MIN = 64
SNAPSHOT_MIN_TOKENS = 256
SNAPSHOT_MIN_GAIN = 32
SNAPSHOT_BUDGET_BYTES = 192 << 20

# Prompt tokens per llama_decode call: a cancelled job stops at the end of its
# chunk, so a request waits for at most one chunk of a superseded request
# (128: ~0.8 s of Qwen2.5-Coder-0.5B on one Zen 5 core) or of a warming (64:
# ~0.45 s). Measured there: 256 → 157 tok/s, 128 → 153, 64 → 144.
PREFILL_CHUNK = 128
WARM_CHUNK = 64


class Prefill:
    """The KV cache of one loaded model, and the snapshots kept of it."""

    def __init__(self, llm: Llama, stats: EngineStats) -> None:
        self.stats = stats
        # Recurrent/hybrid models cannot drop part of their state: no prefix reuse.
        self._partial_kv = not (
            getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False)
        )
        import llama_cpp

        self._lib = llama_cpp
        self._shift_chunk = (
            CACHE_REUSE_MIN if self._partial_kv and can_shift(llama_cpp, llm.ctx) else 0
        )
        self._snapshots = SnapshotStore(SNAPSHOT_BUDGET_BYTES)

    def clear(self) -> None:
        """Forget every snapshot."""
        self._snapshots.clear()

    def prefill(
        self,
        llm: Llama,
        tokens: list[int],
        cancel: threading.Event,
        gen: GenerationStats | None = None,
        chunk_size: int = PREFILL_CHUNK,
    ) -> None:
        """Make the KV cache hold exactly `tokens`, evaluating only what it cannot reuse:
        the shared prefix, chunks shifted into place, or a snapshot of an earlier prompt."""
        if gen is not None:
            gen.prompt_tokens = len(tokens)
        if not self._partial_kv:
            llm.reset()  # type: ignore[no-untyped-call]
            keep = 0
        else:
            cached = int(llm.n_tokens)
            if cached == len(tokens) and not getattr(llm, "_requires_eval", True):
                if llm.input_ids[:cached].tolist() == tokens:
                    self.stats.prompt_tokens_reused += cached
                    if gen is not None:
                        gen.prompt_tokens_reused = cached
                    return
            keep = self._reuse(llm, tokens)
        llm.n_tokens = keep  # eval() drops the KV cache past n_tokens first
        self.stats.prompt_tokens_reused += keep
        if gen is not None:
            gen.prompt_tokens_reused = keep
        rest = tokens[keep:]
        for i in range(0, len(rest), chunk_size):
            # The first chunk always runs, so the logits match the cached tokens.
            if i and cancel.is_set():
                raise GenerationCancelled
            chunk = rest[i : i + chunk_size]
            llm.eval(chunk)
            self.stats.prompt_tokens_evaluated += len(chunk)

    def _reuse(self, llm: Llama, tokens: list[int]) -> int:
        """Arrange the KV cache so it holds the longest reusable head of `tokens`; its length
        (never all of `tokens`: the last one is evaluated for its logits)."""
        lib = self._lib
        current = llm.input_ids[: int(llm.n_tokens)].tolist()
        plan = plan_reuse(current, tokens, self._shift_chunk)
        snapshot, shared = self._snapshots.best(tokens)
        lost = len(current) - plan.reused
        if snapshot is not None and shared >= plan.reused + SNAPSHOT_MIN_GAIN:
            self._keep_snapshot(llm, current, lost)
            self._snapshots.touch(snapshot)
            self.stats.snapshot_restores += 1
            if restore_snapshot(lib, llm.ctx, snapshot):
                restored = list(snapshot.tokens)
                llm.input_ids[: len(restored)] = restored
                llm.n_tokens = len(restored)
                current = restored
            else:
                llm.n_tokens = 0
                current = []
            plan = plan_reuse(current, tokens, self._shift_chunk)
        else:
            self._keep_snapshot(llm, current, lost)
        apply_moves(lib, llm.ctx, plan.moves)
        valid = plan.valid_until
        if plan.moves:
            self.stats.prompt_tokens_shifted += valid - plan.prefix
            llm.input_ids[plan.prefix : valid] = tokens[plan.prefix : valid]
        return min(valid, len(tokens) - 1)

    def _keep_snapshot(self, llm: Llama, current: list[int], lost: int) -> None:
        """Copy the cache out before a prompt discards a good part of it, so going back
        (to that document, that chat) restores it instead of evaluating it again."""
        if lost < SNAPSHOT_MIN_TOKENS or 4 * lost < len(current):
            return
        if self._snapshots.covers(current):
            return
        snapshot = save_snapshot(self._lib, llm.ctx, current)
        if snapshot is not None:
            self._snapshots.add(snapshot)
            self.stats.snapshots_saved += 1
