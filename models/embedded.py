"""The embedded llama.cpp engine: the backend of every role that has no endpoints.

llama-cpp-python is not thread-safe, so one worker thread (a single-thread
executor) owns the model and runs requests in arrival order; the event loop
only receives text pieces (`call_soon_threadsafe` into an `asyncio.Queue`).
Cancelling the consuming task sets a `threading.Event` that the worker checks
between tokens (and between prefill chunks), so the next request starts at
once instead of after a whole generation.

One model load per process per (GGUF path, n_ctx): `EmbeddedEngine.shared()`
hands out reference-counted handles on that load, so roles can share it and
close their handles independently.

KV-cache reuse: llama.cpp keeps the tokens it has evaluated; a new prompt
only evaluates what follows the longest prefix it shares with them. `warm()`
evaluates a prefix ahead of time so the next completion only prefills the rest.

Speculative edits: a request with a `prediction` (apply: the original code)
and greedy decoding drafts the prediction's tokens from the point the output
has reached in it, verifies a draft in one forward pass (logits only at the
batch's positions, not `logits_all`'s n_ctx x n_vocab buffer), keeps the
agreeing prefix plus the model's own token at the first disagreement, and
drops the rest from the KV cache. Drafting is adaptive: it starts only once
the output has agreed with the prediction for a few tokens in a row (checked
for free while decoding plainly), the draft length follows the length of that
agreement, and any disagreement goes back to plain decoding. The output is
the greedy output; only batched and one-by-one evaluation may differ in a rare
argmax. `stream_completion`/`stream_chat` return an `EngineStream` whose
`stats` (a `GenerationStats`) count tokens, proposed and accepted draft tokens
and forward passes for that one generation.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import os
import threading
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lowentropy.models.errors import BackendConfigError, BackendError
from lowentropy.models.kv_cache import (
    SnapshotStore,
    apply_moves,
    can_shift,
    plan_reuse,
    restore_snapshot,
    save_snapshot,
)
from lowentropy.models.llama_build import ensure_runnable
from lowentropy.models.llama_tokenizer import LlamaTokenizer
from lowentropy.models.packaged import resolve_model_path
from lowentropy.models.types import ChatRequest, CompletionRequest

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

# Special tokens a FIM or repo-level template may use; `fim_tokens()` reports
# which of them the loaded vocabulary has, so the server can pick a template.
FIM_TOKEN_CANDIDATES: tuple[str, ...] = (
    "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>",  # Qwen2.5-Coder
    "<|repo_name|>", "<|file_sep|>",
    "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>",  # StarCoder(2)
    "<repo_name>", "<file_sep>", "<filename>",
    "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",  # DeepSeek-Coder
    "<PRE>", "<SUF>", "<MID>", "<EOT>",  # CodeLlama
    "[PREFIX]", "[SUFFIX]", "[MIDDLE]",  # Codestral
)  # fmt: skip

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

# Speculative edits. On CPU a verify batch costs far more than one token when
# short (measured on 2 cores: 9 tokens ~4x one decode step, 65 tokens ~25x),
# so drafting waits for a run of agreement and drafts at least SPEC_MIN_DRAFT.
SPEC_MIN_STREAK = 4  # tokens in a row that matched the prediction before drafting
SPEC_MAX_STREAK = 32  # what a run of failed drafts can raise that wait to
SPEC_MIN_DRAFT = 8
SPEC_MAX_DRAFT = 64
SPEC_NGRAMS = (4, 3, 2)  # n-gram sizes tried, longest first, when re-aligning
WIDE_BACKOFF_MIN = 8  # verify batches before the slower thread count is tried again
WIDE_BACKOFF_MAX = 256
# The slower side is re-tried only on a batch this small: losing that bet on a 65-token
# batch costs ~250 ms (measured: 65 tokens 300 ms on 2 idle cores, 546 ms on 1).
EXPLORE_MAX_TOKENS = 17


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


@attrs.define
class GenerationStats:
    """Counters for one generation: `EngineStream.stats`, final once the stream ends.

    `forward_passes` counts decode steps after the prompt: plain decoding takes
    one per token after the first, a verified draft one per batch.
    """

    tokens: int = 0
    draft_tokens: int = 0  # proposed from the prediction
    accepted_draft_tokens: int = 0
    forward_passes: int = 0
    prompt_tokens: int = 0
    prompt_tokens_reused: int = 0
    ttft_s: float | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class GenerationCancelled(Exception):
    """Raised on the worker when the consumer went away; never leaves this module."""


@attrs.frozen
class _Sampling:
    max_tokens: int
    temperature: float
    stop: tuple[str, ...]
    prediction: str | None = None


@attrs.define
class _Job:
    """One request's link between the worker and the event loop."""

    emit: Callable[[str | BaseException | None], None]
    cancel: threading.Event = attrs.field(factory=threading.Event)
    submitted: float = attrs.field(factory=time.perf_counter)
    stats: GenerationStats = attrs.field(factory=GenerationStats)


class StopScanner:
    """Cuts streamed text at the first stop string, holding back possible stop prefixes."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Text that is safe to emit now; after a stop, nothing more."""
        if self.stopped:
            return ""
        buf = self._held + text
        hits = [i for i in (buf.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buf[: min(hits)]
        hold = max((_overlap(buf, s) for s in self._stops), default=0)
        self._held = buf[len(buf) - hold :]
        return buf[: len(buf) - hold]

    def flush(self) -> str:
        out, self._held = self._held, ""
        return "" if self.stopped else out


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `stop`."""
    for k in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:k]):
            return k
    return 0


class Drafter:
    """Draft tokens from a prediction, following where the output has got to in it.

    While the output agrees with the prediction the draft continues from there;
    after a divergence (an edit, or the model drifting) the most recent output
    tokens are looked up as an n-gram in the prediction, nearest at or after the
    last agreed position, so the draft re-aligns once the output copies again.
    `streak` counts the latest output tokens in a row that the prediction had
    foretold: the evidence that drafting would now pay. `threshold` is how much
    evidence drafting waits for: SPEC_MIN_STREAK, doubled after each draft that
    lost more than half its tokens (the model is not copying here: a wasted verify
    batch costs several single steps), back to the minimum once a draft is
    accepted whole.
    """

    def __init__(self, prediction: Sequence[int]) -> None:
        self._pred = list(prediction)
        self._ends: dict[tuple[int, ...], list[int]] = {}  # n-gram -> positions after it
        for n in SPEC_NGRAMS:
            for end in range(n, len(self._pred) + 1):
                self._ends.setdefault(tuple(self._pred[end - n : end]), []).append(end)
        self._recent: list[int] = []
        self._next: int | None = 0  # the output starts where the prediction starts
        self._hint = 0
        self._diverged = False
        self.streak = 0
        self.threshold = SPEC_MIN_STREAK

    @property
    def evidence(self) -> int:
        """The streak, plus SPEC_MIN_STREAK while the output has followed the prediction
        from its start (a rewrite begins by copying: that alone is a streak's worth)."""
        return self.streak + (0 if self._diverged else SPEC_MIN_STREAK)

    def verified(self, drafted: int, accepted: int) -> None:
        """Record how a draft fared, to adapt `threshold`."""
        if drafted <= 0:
            return
        if accepted == drafted:
            self.threshold = SPEC_MIN_STREAK
        elif 2 * accepted < drafted:
            self.threshold = min(2 * self.threshold, SPEC_MAX_STREAK)

    def push(self, token: int) -> None:
        """Record one output token."""
        self._recent = [*self._recent[1 - max(SPEC_NGRAMS) :], token]
        nxt = self._next
        if nxt is not None and nxt < len(self._pred) and self._pred[nxt] == token:
            self._next = self._hint = nxt + 1
            self.streak += 1
        else:
            self.streak = 0
            self._diverged = True
            self._next = self._realign()

    def propose(self, count: int) -> list[int]:
        """Up to `count` tokens the prediction says come next (none when not aligned)."""
        if self._next is None or count <= 0:
            return []
        return self._pred[self._next : self._next + count]

    def _realign(self) -> int | None:
        for n in SPEC_NGRAMS:
            if len(self._recent) < n:
                continue
            ends = self._ends.get(tuple(self._recent[-n:]))
            if ends:
                i = bisect_left(ends, self._hint)
                return ends[i] if i < len(ends) else ends[-1]
        return None


def draft_length(streak: int, room: int, threshold: int = SPEC_MIN_STREAK) -> int:
    """Tokens to draft after `streak` agreeing tokens: none below `threshold`, then
    about as many as have agreed (the longer the model has copied, the likelier it
    keeps copying), within [SPEC_MIN_DRAFT, SPEC_MAX_DRAFT] and the room left."""
    if streak < threshold:
        return 0
    want = min(SPEC_MAX_DRAFT, max(SPEC_MIN_DRAFT, streak), room)
    return want if want >= SPEC_MIN_DRAFT else 0


class _BatchDecoder:
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


class _Core:
    """One loaded model and the worker thread that owns it."""

    def __init__(self, llm: Llama, path: Path, n_ctx: int) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.stats = EngineStats()
        self.tokenizer = LlamaTokenizer(llm)
        self.refs = 0
        self._llm: Llama | None = llm
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"llama-{path.stem}")
        self._active: set[threading.Event] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._decoder: _BatchDecoder | None = None  # created on the worker at first use
        self._chat_formatter = _chat_formatter(llm, self.tokenizer)
        self._fim_tokens = self.tokenizer.special_tokens_present(FIM_TOKEN_CANDIDATES)
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

    @classmethod
    def load(cls, path: Path, *, n_ctx: int, n_threads: int | None) -> _Core:
        # A build this CPU cannot run (native flags from another CPU, ggml's AMX path) is a
        # clear error here, not a SIGILL or SIGSEGV that takes the server down.
        ensure_runnable()
        from llama_cpp import Llama

        threads = n_threads or default_threads()
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except ValueError as exc:  # llama_cpp: "Failed to load model from file"
            raise BackendConfigError(f"cannot load model {path}: {exc}") from exc
        # Free it before interpreter teardown (closing twice is harmless): llama-cpp-python's
        # __del__ fails noisily once its C bindings are gone.
        atexit.register(llm.close)
        return cls(llm, path, n_ctx)

    @property
    def fim_tokens(self) -> frozenset[str]:
        return self._fim_tokens

    @property
    def has_chat_template(self) -> bool:
        return self._chat_formatter is not None

    # -- event-loop side -------------------------------------------------

    def submit(self, work: Callable[[_Job], None], job: _Job) -> None:
        with self._lock:
            if self._closing:
                raise BackendError(f"embedded engine for {self.path.name} is closed")
            self._active.add(job.cancel)
            self._executor.submit(self._run, work, job)

    async def aclose(self) -> None:
        with self._lock:
            for cancel in self._active:
                cancel.set()
            if self._closing:
                return
            self._closing = True
            done = self._executor.submit(self._release)
        await asyncio.wrap_future(done)
        self._executor.shutdown(wait=False)

    # -- worker side ---------------------------------------------------------

    def _release(self) -> None:
        # Drop the model instead of closing it: a tokenizer handed out earlier
        # may still read its vocabulary; the last reference frees it.
        with self._lock:
            self._llm = None
            self._snapshots.clear()
            if self._decoder is not None:
                self._decoder.close()
                self._decoder = None

    def _run(self, work: Callable[[_Job], None], job: _Job) -> None:
        try:
            work(job)
        except GenerationCancelled:
            pass
        except BackendError as exc:
            job.emit(exc)
        except Exception as exc:  # llama.cpp decode failures and the like
            job.emit(BackendError(f"llama.cpp failed: {type(exc).__name__}: {exc}"))
        finally:
            job.emit(None)
            with self._lock:
                self._active.discard(job.cancel)

    def complete(self, prompt: str, sampling: _Sampling, job: _Job) -> None:
        self._generate_text(lambda: self._tokens(prompt, add_bos=True), sampling, job)

    def chat(self, req: ChatRequest, sampling: _Sampling, job: _Job) -> None:
        formatter = self._chat_formatter
        if formatter is None:
            raise BackendConfigError(
                f"{self.path.name} has no chat template: use a chat model or an endpoint"
            )

        def render() -> list[int]:
            messages: Any = [{"role": m.role, "content": m.content} for m in req.messages]
            try:
                result = formatter(messages=messages)
            except Exception as exc:  # templates raise on e.g. non-alternating roles
                raise BackendError(f"the chat template rejected the messages: {exc}") from exc
            prompt = result.prompt + req.assistant_prefix
            return self._tokens(prompt, add_bos=not result.added_special)

        self._generate_text(render, sampling, job)

    def warm(self, prefix: str, job: _Job) -> None:
        if job.cancel.is_set():
            return
        # Best effort: whatever fits leaves room for at least one new token.
        tokens = self._tokens(prefix, add_bos=True)[: self.n_ctx - 1]
        if tokens:
            with contextlib.suppress(GenerationCancelled):
                self._prefill(tokens, job.cancel, chunk_size=WARM_CHUNK)
        self.stats.warms += 1

    def clear_cache(self, job: _Job) -> None:
        self._snapshots.clear()
        llm = self._llm
        if llm is not None:
            llm.reset()  # type: ignore[no-untyped-call]
            llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]

    def _tokens(self, text: str, *, add_bos: bool) -> list[int]:
        tokens = self.tokenizer.tokenize(text, add_bos=add_bos)
        if not tokens:
            # Nothing to condition on: start from BOS like llama.cpp's server.
            bos = self._model().token_bos()
            tokens = [bos] if bos >= 0 else []
        return tokens

    def _model(self) -> Llama:
        llm = self._llm
        if llm is None:
            raise GenerationCancelled
        return llm

    def _generate_text(
        self, make_tokens: Callable[[], list[int]], sampling: _Sampling, job: _Job
    ) -> None:
        stats = self.stats
        gen = job.stats
        if job.cancel.is_set():  # cancelled while queued: never started
            stats.generations_cancelled += 1
            self._fail_if_closing()
            return
        start = time.perf_counter()
        stats.last_queue_wait_s = start - job.submitted
        stats.generations_started += 1
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = StopScanner(sampling.stop)
        try:
            tokens = make_tokens()
            room = self.n_ctx - len(tokens)
            if not tokens or room <= 0:
                raise BackendError(
                    f"prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx}"
                )
            limit = min(sampling.max_tokens, room) if sampling.max_tokens > 0 else room
            drafter = None
            if sampling.prediction and sampling.temperature <= 0:
                drafter = Drafter(self.tokenizer.tokenize(sampling.prediction))
            # With a drafter, a verify pass yields up to 65 tokens at once: their text goes
            # out as one piece right before the next pass (`flush`), not as 65 wake-ups of
            # the event loop, whose thread would then compete with the batch for a core.
            pending: list[str] = []

            def flush() -> None:
                if pending:
                    job.emit("".join(pending))
                    pending.clear()

            stream = self._generate_tokens(
                tokens, sampling.temperature, job.cancel, limit, drafter, gen,
                flush if drafter is not None else None,
            )  # fmt: skip
            with contextlib.closing(stream):
                for token in stream:
                    if gen.tokens == 0:
                        gen.ttft_s = stats.last_ttft_s = time.perf_counter() - start
                    gen.tokens += 1
                    stats.tokens_generated += 1
                    text = scanner.feed(decoder.decode(self.tokenizer.piece(token)))
                    if text:
                        if drafter is None:
                            job.emit(text)
                        else:
                            pending.append(text)
                    if scanner.stopped or gen.tokens >= limit:
                        break
            flush()
            tail = scanner.feed(decoder.decode(b"", final=True)) + scanner.flush()
            if tail:
                job.emit(tail)
        except GenerationCancelled:
            stats.generations_cancelled += 1
            self._fail_if_closing()
            return
        except Exception:
            stats.generations_failed += 1
            raise
        finally:
            gen.seconds = time.perf_counter() - start
        stats.generations_completed += 1

    def _fail_if_closing(self) -> None:
        # Cut short by aclose(), not by the consumer: the consumer must not
        # mistake the truncated text for a whole answer.
        if self._closing:
            raise BackendError(f"embedded engine for {self.path.name} was closed")

    def _generate_tokens(
        self,
        tokens: list[int],
        temperature: float,
        cancel: threading.Event,
        limit: int,
        drafter: Drafter | None,
        gen: GenerationStats,
        flush: Callable[[], None] | None = None,
    ) -> Generator[int, None, None]:
        """Prefill (reusing the cached prefix), then yield sampled tokens until end of generation.

        The single token loop of the engine: greedy decoding runs on our own
        batches (speculatively when a drafter is given), sampling through
        llama-cpp-python's sampler. Yields at most `limit` tokens. Raises
        GenerationCancelled between tokens once `cancel` is set.
        """
        llm = self._model()
        self._prefill(tokens, cancel, gen)
        if temperature <= 0:
            yield from self._greedy_tokens(llm, cancel, limit, drafter, gen, flush)
            return
        params: dict[str, Any] = {"temp": temperature, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
        # The whole prompt is cached now, so generate() samples without evaluating.
        with contextlib.closing(llm.generate(tokens, reset=True, **params)) as sampled:
            for i, token in enumerate(sampled):
                if cancel.is_set():
                    raise GenerationCancelled
                if self.tokenizer.is_eog(token):
                    return
                if i:  # generate() evaluated the previous token to sample this one
                    gen.forward_passes += 1
                    self.stats.forward_passes += 1
                yield token

    def _greedy_tokens(
        self,
        llm: Llama,
        cancel: threading.Event,
        limit: int,
        drafter: Drafter | None,
        gen: GenerationStats,
        flush: Callable[[], None] | None = None,
    ) -> Generator[int, None, None]:
        """Greedy decoding after a prefill; with a drafter, verify drafts in batches.
        `flush` is called before each forward pass, so what was yielded so far goes out.

        Invariant at every yield: the KV cache and `llm.input_ids[:llm.n_tokens]`
        hold exactly the prompt and the tokens yielded before the current one,
        so a consumer may stop at any token and the next prompt reuses the cache.
        """
        stats = self.stats
        dec = self._decoder
        if dec is None:
            dec = self._decoder = _BatchDecoder(llm, 1 + SPEC_MAX_DRAFT, usable_cores())
        # Our decodes leave logits that need not belong to the last cached token.
        llm._requires_eval = True
        n_past = int(llm.n_tokens)
        pending = dec.last_argmax()
        produced = 0
        while True:
            if cancel.is_set():
                raise GenerationCancelled
            if self.tokenizer.is_eog(pending):
                return
            yield pending
            produced += 1
            if drafter is not None:
                drafter.push(pending)
            # Room: tokens still allowed after `pending`, and the context's end.
            room = min(limit - produced, self.n_ctx - n_past - 1)
            if room <= 0:
                return
            draft: list[int] = []
            if drafter is not None:
                draft = drafter.propose(draft_length(drafter.evidence, room, drafter.threshold))
            if cancel.is_set():
                raise GenerationCancelled
            batch = [pending, *draft]
            if flush is not None:
                flush()
            out = dec.decode(batch, n_past)
            llm.input_ids[n_past : n_past + len(batch)] = batch
            accepted = 0
            while accepted < len(draft) and out[accepted] == draft[accepted]:
                accepted += 1
            n_past += 1 + accepted
            llm.n_tokens = n_past
            if accepted < len(draft):
                dec.keep(n_past)
            if drafter is not None:
                drafter.verified(len(draft), accepted)
            gen.forward_passes += 1
            stats.forward_passes += 1
            gen.draft_tokens += len(draft)
            stats.draft_tokens += len(draft)
            gen.accepted_draft_tokens += accepted
            stats.accepted_draft_tokens += accepted
            for token in draft[:accepted]:
                if cancel.is_set():
                    raise GenerationCancelled
                if self.tokenizer.is_eog(token):  # a prediction may spell a special token
                    return
                yield token
                produced += 1
                assert drafter is not None
                drafter.push(token)
            pending = out[accepted]

    def _prefill(
        self,
        tokens: list[int],
        cancel: threading.Event,
        gen: GenerationStats | None = None,
        chunk_size: int = PREFILL_CHUNK,
    ) -> None:
        """Make the KV cache hold exactly `tokens`, evaluating only what it cannot reuse:
        the shared prefix, chunks shifted into place, or a snapshot of an earlier prompt."""
        if cancel.is_set():
            raise GenerationCancelled
        llm = self._model()
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


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads() -> int:
    """Threads for a model when the role sets none: half the cores, like llama-cpp-python.
    ggml's threads spin on barriers, so taking every core makes decoding collapse (~100x
    measured on 2 cores) as soon as the server's own work or anything else wants a core."""
    return max(1, usable_cores() // 2)


def _chat_formatter(llm: Llama, tokenizer: LlamaTokenizer) -> Jinja2ChatFormatter | None:
    """The model's own chat template (GGUF metadata), or None when it has none."""
    import jinja2
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None

    def text(token: int) -> str:
        return tokenizer.detokenize([token], special=True) if token >= 0 else ""

    try:
        return Jinja2ChatFormatter(
            template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos())
        )
    except jinja2.TemplateError:  # a broken template: treat the model as having none
        return None


_registry: dict[tuple[str, int], _Core] = {}
_registry_lock = threading.Lock()


class EmbeddedEngine:
    """A `Generator` handle on a shared, in-process llama.cpp model."""

    def __init__(self, core: _Core) -> None:
        self._core = core
        self._closed = False
        self.name = core.path.stem

    @classmethod
    def shared(
        cls, model_path: str | None = None, *, n_ctx: int = 4096, n_threads: int | None = None
    ) -> EmbeddedEngine:
        """A handle on the process's load of this model (loaded now if needed, ~0.1 s mmap).

        `model_path`: None for the packaged default (see `packaged.default_model_path`),
        a packaged model's name, or a GGUF path. `n_threads` only applies to the first load.
        """
        path = resolve_model_path(model_path)
        key = (str(path), n_ctx)
        with _registry_lock:
            core = _registry.get(key)
            if core is None:
                core = _Core.load(path, n_ctx=n_ctx, n_threads=n_threads)
                _registry[key] = core
            core.refs += 1
        return cls(core)

    @property
    def model_path(self) -> Path:
        return self._core.path

    @property
    def n_ctx(self) -> int:
        return self._core.n_ctx

    @property
    def stats(self) -> EngineStats:
        """Live counters of the shared model (all handles on it together)."""
        return self._core.stats

    @property
    def has_chat_template(self) -> bool:
        return self._core.has_chat_template

    def fim_tokens(self) -> frozenset[str]:
        """Which of FIM_TOKEN_CANDIDATES the vocabulary has as special tokens."""
        return self._core.fim_tokens

    def tokenizer(self) -> LlamaTokenizer:
        return self._core.tokenizer

    def stream_completion(self, req: CompletionRequest) -> EngineStream:
        """Stream a completion; `req.prediction` with greedy decoding drafts speculatively."""
        sampling = _Sampling(req.max_tokens, req.temperature, req.stop, req.prediction)
        core = self._core
        return self._stream(lambda job: core.complete(req.prompt, sampling, job))

    def stream_chat(self, req: ChatRequest) -> EngineStream:
        """Stream a chat answer; `req.prediction` with greedy decoding drafts speculatively."""
        sampling = _Sampling(req.max_tokens, req.temperature, req.stop, req.prediction)
        core = self._core
        return self._stream(lambda job: core.chat(req, sampling, job))

    async def warm(self, prefix: str) -> None:
        core = self._core
        async for _ in self._stream(lambda job: core.warm(prefix, job)):
            pass

    async def clear_cache(self) -> None:
        """Forget every cached prompt (the KV cache and its snapshots): the next request
        runs cold, as after a fresh load (benches measuring cold starts, tests)."""
        core = self._core
        async for _ in self._stream(core.clear_cache):
            pass

    async def aclose(self) -> None:
        """Release this handle; the model goes when its last handle does."""
        if self._closed:
            return
        self._closed = True
        core = self._core
        with _registry_lock:
            core.refs -= 1
            last = core.refs == 0
            if last:
                _registry.pop((str(core.path), core.n_ctx), None)
        if last:
            await core.aclose()

    def _stream(self, work: Callable[[_Job], None]) -> EngineStream:
        job = _Job(emit=lambda item: None)
        return EngineStream(self._pieces(work, job), job.stats)

    async def _pieces(self, work: Callable[[_Job], None], job: _Job) -> AsyncIterator[str]:
        if self._closed:
            raise BackendError(f"embedded engine {self.name} is closed")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()

        def emit(item: str | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening
                job.cancel.set()

        job.emit = emit
        self._core.submit(work, job)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Cancelled, closed early or done: the worker stops between tokens.
            job.cancel.set()


class EngineStream:
    """The text pieces of one generation, and its `GenerationStats`.

    An async iterator (and closeable, like the async generator it wraps). The
    worker thread writes `stats` as it goes; they are final once iteration has
    ended (exhausted, broken off or closed), which is when a caller reads them:

        stream = engine.stream_chat(req)
        async for piece in stream: ...
        stream.stats.tokens, stream.stats.draft_tokens, stream.stats.accepted_draft_tokens

    Work starts at the first `__anext__`; a stream never iterated submits nothing.
    """

    def __init__(self, pieces: AsyncIterator[str], stats: GenerationStats) -> None:
        self._pieces = pieces
        self.stats = stats

    def __aiter__(self) -> EngineStream:
        return self

    async def __anext__(self) -> str:
        return await self._pieces.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._pieces, "aclose", None)
        if aclose is not None:
            await aclose()
