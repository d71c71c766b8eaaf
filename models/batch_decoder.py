"""Batched llama_decode with logits at chosen positions: the verify step of speculative drafting."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lowentropy.models.errors import BackendError

if TYPE_CHECKING:
    from llama_cpp import Llama


# Verify batches may run on every core ("wide") or on the configured threads ("narrow").
WIDE_BACKOFF_MIN = 8  # verify batches before the slower thread count is tried again
WIDE_BACKOFF_MAX = 256
# The slower side is re-tried only on a batch this small: losing that bet on a 65-token
# batch costs ~250 ms (measured: 65 tokens 300 ms on 2 idle cores, 546 ms on 1).
EXPLORE_MAX_TOKENS = 17


class BatchDecoder:
    """llama_decode on our own batch with logits at chosen positions (greedy argmax).

    `Llama.eval` either keeps the last position's logits only or, with
    `logits_all`, copies every position into an n_ctx x n_vocab buffer
    (4096 x 49152 floats = 805 MB for SmolLM2); a verify batch needs logits
    at its own few positions only, which llama.cpp hands out per output row.
    """

    def __init__(self, llm: Llama, capacity: int, verify_threads: int) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self._ctx = llm.ctx
        self._n_vocab = llm.n_vocab()
        self._capacity = capacity
        self._threads = (llm.n_threads, llm.n_threads_batch)
        self._verify_threads = verify_threads
        self._batch: Any = llama_cpp.llama_batch_init(capacity, 0, 1)
        # Seconds per token, exponential moving averages: single steps, and verify
        # batches on the configured threads ("narrow") and on every core ("wide").
        self.step_s: float | None = None
        self._narrow_s: float | None = None
        self._wide_s: float | None = None
        self._batches = 0
        self._explore_at = 0  # from this batch on, try the side that measured slower once
        self._exploring = False  # the current batch is such a try
        self._backoff = WIDE_BACKOFF_MIN

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None

    def last_argmax(self) -> int:
        """The greedy token after the last evaluated position (e.g. the prompt's)."""
        import numpy as np

        row = self._lib.llama_get_logits_ith(self._ctx, -1)
        return int(np.ctypeslib.as_array(row, shape=(self._n_vocab,)).argmax())

    def decode(self, tokens: Sequence[int], n_past: int) -> list[int]:
        """Evaluate `tokens` at positions n_past..; the greedy token after each of them."""
        import numpy as np

        n = len(tokens)
        if not 0 < n <= self._capacity:
            raise BackendError(f"decode batch of {n} tokens (capacity {self._capacity})")
        batch = self._batch
        batch.n_tokens = n
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = n_past + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True
        wide = n > 1 and self._use_wide(n)
        if wide:
            self._lib.llama_set_n_threads(self._ctx, self._threads[0], self._verify_threads)
        started = time.perf_counter()
        try:
            rc = self._lib.llama_decode(self._ctx, batch)
        finally:
            if wide:
                self._lib.llama_set_n_threads(self._ctx, *self._threads)
        if rc != 0:
            raise BackendError(f"llama_decode returned {rc}")
        self._record(n, wide, (time.perf_counter() - started) / n)
        logits = self._lib.llama_get_logits(self._ctx)
        rows = np.ctypeslib.as_array(logits, shape=(n, self._n_vocab))
        return [int(t) for t in rows.argmax(axis=1)]

    def _use_wide(self, n: int) -> bool:
        """Verify on every core when that has measured faster than the configured threads.

        Batched matmuls scale with cores (~2x on 2 idle cores), but when another
        process wants a core, ggml's spinning threads make a batch several times
        slower (measured: 16 tokens 85 ms on 1 thread, 350 ms on 2). So both are
        measured (narrow first, then wide), the faster is used, and the other is
        tried again after exponentially more batches each time it loses, on a small
        batch (at most EXPLORE_MAX_TOKENS), where a lost bet is cheap.
        """
        self._exploring = False
        if self._verify_threads <= self._threads[1] or self._narrow_s is None:
            return False
        if self._wide_s is None:
            return True
        self._exploring = self._batches >= self._explore_at and n <= EXPLORE_MAX_TOKENS
        return (self._wide_s < self._narrow_s) != self._exploring

    def _record(self, n: int, wide: bool, per_token_s: float) -> None:
        def ema(old: float | None) -> float:
            return per_token_s if old is None else old + 0.3 * (per_token_s - old)

        if n == 1:
            self.step_s = ema(self.step_s)
            return
        explored = self._exploring  # as `_use_wide` decided it
        self._batches += 1
        was_wide_better = (
            self._wide_s is not None
            and self._narrow_s is not None
            and self._wide_s < self._narrow_s
        )
        if wide:
            self._wide_s = ema(self._wide_s)
        else:
            self._narrow_s = ema(self._narrow_s)
        if not explored or self._wide_s is None or self._narrow_s is None:
            return
        # An exploration batch: did the other side win after all?
        if (self._wide_s < self._narrow_s) != was_wide_better:
            self._backoff = WIDE_BACKOFF_MIN
        else:
            self._backoff = min(2 * self._backoff, WIDE_BACKOFF_MAX)
        self._explore_at = self._batches + self._backoff

    def keep(self, n_tokens: int) -> None:
        """Drop the KV cache past `n_tokens` (rejected draft positions)."""
        mem = self._lib.llama_get_memory(self._ctx)
        self._lib.llama_memory_seq_rm(mem, -1, n_tokens, -1)
