"""The one worker thread that owns a llama.cpp model: prefill with KV-cache reuse, greedy and
speculative decoding, warming, and the chat template.

llama-cpp-python is not thread-safe, so one worker thread (a single-thread executor) runs
requests in arrival order; `EmbeddedEngine` (models/embedded.py) is its asyncio face.
Its parts: `prefill.py` (KV-cache reuse and snapshots), `greedy.py` (greedy and
speculative decoding on our own batches), `chat_template.py` (the model's chat template),
`threads.py` (how many threads a model gets).
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lowentropy.models.chat_template import chat_formatter
from lowentropy.models.drafting import Drafter
from lowentropy.models.engine_jobs import (
    EngineStats,
    GenerationCancelled,
    GenerationStats,
    Job,
    Sampling,
)
from lowentropy.models.errors import BackendConfigError, BackendError
from lowentropy.models.greedy import Greedy
from lowentropy.models.llama_build import ensure_runnable
from lowentropy.models.llama_tokenizer import LlamaTokenizer
from lowentropy.models.prefill import PREFILL_CHUNK, WARM_CHUNK, Prefill
from lowentropy.models.stop_scanner import StopScanner
from lowentropy.models.threads import default_threads
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

CHOICE_TOKENS = 12  # tokens of a choice that choice_logprobs scores


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
        self._greedy = Greedy(self.tokenizer, self.stats, n_ctx)
        self._chat_formatter = chat_formatter(llm, self.tokenizer)
        self._fim_tokens = self.tokenizer.special_tokens_present(FIM_TOKEN_CANDIDATES)
        self._kv = Prefill(llm, self.stats)

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
            self._kv.clear()
            self._greedy.close()

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
        self._kv.clear()
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
            yield from self._greedy.tokens(llm, cancel, limit, drafter, gen, flush)
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

    def _prefill(
        self,
        tokens: list[int],
        cancel: threading.Event,
        gen: GenerationStats | None = None,
        chunk_size: int = PREFILL_CHUNK,
    ) -> None:
        """Make the KV cache hold exactly `tokens`, reusing what it can (`prefill.py`)."""
        if cancel.is_set():
            raise GenerationCancelled
        self._kv.prefill(self._model(), tokens, cancel, gen, chunk_size)
