"""The one worker thread that owns a llama.cpp model: prefill with KV-cache reuse, greedy and
speculative decoding, warming, and the chat template.

llama-cpp-python is not thread-safe, so one worker thread (a single-thread executor) runs
requests in arrival order; `EmbeddedEngine` (models/embedded.py) is its asyncio face.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lowentropy.models.batch_decoder import BatchDecoder
from lowentropy.models.drafting import SPEC_MAX_DRAFT, Drafter, draft_length
from lowentropy.models.engine_jobs import (
    EngineStats,
    GenerationCancelled,
    GenerationStats,
    Job,
    Sampling,
)
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
from lowentropy.models.stop_scanner import StopScanner
from lowentropy.models.types import ChatRequest

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
CHOICE_TOKENS = 12  # tokens of a choice that choice_logprobs scores
WARM_CHUNK = 64


class EngineCore:
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
        self._decoder: BatchDecoder | None = None  # created on the worker at first use
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
    def load(cls, path: Path, *, n_ctx: int, n_threads: int | None) -> EngineCore:
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

    def submit(self, work: Callable[[Job], None], job: Job) -> None:
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

    def _run(self, work: Callable[[Job], None], job: Job) -> None:
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

    def complete(self, prompt: str, sampling: Sampling, job: Job) -> None:
        self._generate_text(lambda: self._tokens(prompt, add_bos=True), sampling, job)

    def chat(self, req: ChatRequest, sampling: Sampling, job: Job) -> None:
        self._chat_formatter_or_fail()
        self._generate_text(lambda: self._chat_tokens(req), sampling, job)

    def choice_logprobs(self, req: ChatRequest, choices: Sequence[str], job: Job) -> None:
        """Emit, as one JSON text piece, the log-probability of each choice as the start of
        the answer (the sum over its first `CHOICE_TOKENS` tokens): one prefill of the
        prompt (reusing the cached prefix), then one single-token pass per further token."""
        self._chat_formatter_or_fail()
        if job.cancel.is_set():
            return
        tokens = self._chat_tokens(req)
        ids = [self.tokenizer.tokenize(c)[:CHOICE_TOKENS] for c in choices]
        if not all(ids):
            raise BackendError("choice_logprobs: every choice needs at least one token")
        if len(tokens) + CHOICE_TOKENS >= self.n_ctx:
            raise BackendError(
                f"prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx}"
            )
        import numpy as np  # llama_cpp's own dependency, loaded with the model

        def logprobs(llm: Llama) -> Any:
            # Without logits_all, llama.cpp keeps one row: the last evaluated token's.
            raw = llm._ctx.get_logits()  # type: ignore[no-untyped-call]
            row = np.ctypeslib.as_array(raw, shape=(llm.n_vocab(),))
            row = row.astype(np.float64)
            top = float(row.max())
            return row - (top + math.log(float(np.exp(row - top).sum())))

        self._prefill(tokens, job.cancel, job.stats)  # evaluates the prompt's last token
        llm = self._model()
        base = int(llm.n_tokens)
        first = logprobs(llm)
        out: list[float] = []
        try:
            for choice in ids:
                total = float(first[choice[0]])
                for j in range(1, len(choice)):
                    if job.cancel.is_set():
                        raise GenerationCancelled
                    llm.n_tokens = base + j - 1  # eval() drops the KV cache past n_tokens
                    llm.eval([choice[j - 1]])
                    total += float(logprobs(llm)[choice[j]])
                out.append(total)
        finally:
            llm.n_tokens = base
            llm._requires_eval = True  # the logits now belong to a choice's token
        job.emit(json.dumps(out))

    def _chat_formatter_or_fail(self) -> Jinja2ChatFormatter:
        formatter = self._chat_formatter
        if formatter is None:
            raise BackendConfigError(
                f"{self.path.name} has no chat template: use a chat model or an endpoint"
            )
        return formatter

    def _chat_tokens(self, req: ChatRequest) -> list[int]:
        formatter = self._chat_formatter_or_fail()
        messages: Any = [{"role": m.role, "content": m.content} for m in req.messages]
        try:
            result = formatter(messages=messages)
        except Exception as exc:  # templates raise on e.g. non-alternating roles
            raise BackendError(f"the chat template rejected the messages: {exc}") from exc
        prompt = result.prompt + req.assistant_prefix
        return self._tokens(prompt, add_bos=not result.added_special)

    def warm(self, prefix: str, job: Job) -> None:
        if job.cancel.is_set():
            return
        # Best effort: whatever fits leaves room for at least one new token.
        tokens = self._tokens(prefix, add_bos=True)[: self.n_ctx - 1]
        if tokens:
            with contextlib.suppress(GenerationCancelled):
                self._prefill(tokens, job.cancel, chunk_size=WARM_CHUNK)
        self.stats.warms += 1

    def clear_cache(self, job: Job) -> None:
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
        self, make_tokens: Callable[[], list[int]], sampling: Sampling, job: Job
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
            dec = self._decoder = BatchDecoder(llm, 1 + SPEC_MAX_DRAFT, usable_cores())
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
