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
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lowentropy.models.errors import BackendConfigError, BackendError
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

# Prompt tokens per llama_decode call: small enough that a cancelled request
# stops within ~0.5 s of prefill on 2 cores, large enough to batch well.
PREFILL_CHUNK = 256


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
    last_ttft_s: float | None = None  # worker start of a request → its first token
    last_queue_wait_s: float | None = None  # submitted → the worker started it

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class GenerationCancelled(Exception):
    """Raised on the worker when the consumer went away; never leaves this module."""


@attrs.frozen
class _Sampling:
    max_tokens: int
    temperature: float
    stop: tuple[str, ...]


@attrs.define
class _Job:
    """One request's link between the worker and the event loop."""

    emit: Callable[[str | BaseException | None], None]
    cancel: threading.Event = attrs.field(factory=threading.Event)
    submitted: float = attrs.field(factory=time.perf_counter)


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


def _common_prefix(cached: Sequence[int] | Any, tokens: Sequence[int]) -> int:
    n = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        n += 1
    return n


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
        self._chat_formatter = _chat_formatter(llm, self.tokenizer)
        self._fim_tokens = self.tokenizer.special_tokens_present(FIM_TOKEN_CANDIDATES)
        # Recurrent/hybrid models cannot drop part of their state: no prefix reuse.
        self._partial_kv = not (
            getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False)
        )

    @classmethod
    def load(cls, path: Path, *, n_ctx: int, n_threads: int | None) -> _Core:
        from llama_cpp import Llama

        # Half the cores, like llama-cpp-python: ggml's threads spin on barriers,
        # so taking every core makes decoding collapse (~100x measured on 2 cores)
        # as soon as the server's own work or anything else wants a core.
        threads = n_threads or max(1, _usable_cores() // 2)
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
            return self._tokens(result.prompt, add_bos=not result.added_special)

        self._generate_text(render, sampling, job)

    def warm(self, prefix: str, job: _Job) -> None:
        if job.cancel.is_set():
            return
        # Best effort: whatever fits leaves room for at least one new token.
        tokens = self._tokens(prefix, add_bos=True)[: self.n_ctx - 1]
        if tokens:
            with contextlib.suppress(GenerationCancelled):
                self._prefill(tokens, job.cancel)
        self.stats.warms += 1

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
        if job.cancel.is_set():  # cancelled while queued: never started
            stats.generations_cancelled += 1
            self._fail_if_closing()
            return
        start = time.perf_counter()
        stats.last_queue_wait_s = start - job.submitted
        stats.generations_started += 1
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = StopScanner(sampling.stop)
        produced = 0
        try:
            tokens = make_tokens()
            room = self.n_ctx - len(tokens)
            if not tokens or room <= 0:
                raise BackendError(
                    f"prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx}"
                )
            limit = min(sampling.max_tokens, room) if sampling.max_tokens > 0 else room
            with contextlib.closing(
                self._generate_tokens(tokens, sampling.temperature, job.cancel)
            ) as stream:
                for token in stream:
                    if produced == 0:
                        stats.last_ttft_s = time.perf_counter() - start
                    produced += 1
                    stats.tokens_generated += 1
                    text = scanner.feed(decoder.decode(self.tokenizer.piece(token)))
                    if text:
                        job.emit(text)
                    if scanner.stopped or produced >= limit:
                        break
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
        stats.generations_completed += 1

    def _fail_if_closing(self) -> None:
        # Cut short by aclose(), not by the consumer: the consumer must not
        # mistake the truncated text for a whole answer.
        if self._closing:
            raise BackendError(f"embedded engine for {self.path.name} was closed")

    def _generate_tokens(
        self, tokens: list[int], temperature: float, cancel: threading.Event
    ) -> Generator[int, None, None]:
        """Prefill (reusing the cached prefix), then yield sampled tokens until end of generation.

        The single token loop of the engine; speculative decoding (evaluating
        draft tokens in one batch and keeping the agreed prefix) belongs here.
        Raises GenerationCancelled between tokens once `cancel` is set.
        """
        llm = self._model()
        self._prefill(tokens, cancel)
        if temperature <= 0:
            params: dict[str, Any] = {"temp": 0.0, "top_k": 1}
        else:
            params = {"temp": temperature, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
        # The whole prompt is cached now, so generate() samples without evaluating.
        with contextlib.closing(llm.generate(tokens, reset=True, **params)) as sampled:
            for token in sampled:
                if cancel.is_set():
                    raise GenerationCancelled
                if self.tokenizer.is_eog(token):
                    return
                yield token

    def _prefill(self, tokens: list[int], cancel: threading.Event) -> None:
        """Make the KV cache hold exactly `tokens`, evaluating only past the shared prefix."""
        if cancel.is_set():
            raise GenerationCancelled
        llm = self._model()
        cached = int(llm.n_tokens)
        if self._partial_kv:
            common = _common_prefix(llm.input_ids[: min(cached, len(tokens))].tolist(), tokens)
        else:
            llm.reset()  # type: ignore[no-untyped-call]
            common = 0
        if common == len(tokens) == cached and not getattr(llm, "_requires_eval", True):
            self.stats.prompt_tokens_reused += common
            return
        # Re-evaluate at least the last token: its logits seed the first sample.
        keep = min(common, len(tokens) - 1)
        llm.n_tokens = keep  # eval() drops the KV cache past n_tokens first
        self.stats.prompt_tokens_reused += keep
        rest = tokens[keep:]
        for i in range(0, len(rest), PREFILL_CHUNK):
            # The first chunk always runs, so the logits match the cached tokens.
            if i and cancel.is_set():
                raise GenerationCancelled
            chunk = rest[i : i + PREFILL_CHUNK]
            llm.eval(chunk)
            self.stats.prompt_tokens_evaluated += len(chunk)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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

        `model_path`: None for the packaged SmolLM2, a packaged model's name,
        or a GGUF path. `n_threads` only applies to the first load.
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

    async def stream_completion(self, req: CompletionRequest) -> AsyncIterator[str]:
        sampling = _Sampling(req.max_tokens, req.temperature, req.stop)
        core = self._core
        async for piece in self._stream(lambda job: core.complete(req.prompt, sampling, job)):
            yield piece

    async def stream_chat(self, req: ChatRequest) -> AsyncIterator[str]:
        sampling = _Sampling(req.max_tokens, req.temperature, req.stop)
        core = self._core
        async for piece in self._stream(lambda job: core.chat(req, sampling, job)):
            yield piece

    async def warm(self, prefix: str) -> None:
        core = self._core
        async for _ in self._stream(lambda job: core.warm(prefix, job)):
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

    async def _stream(self, work: Callable[[_Job], None]) -> AsyncIterator[str]:
        if self._closed:
            raise BackendError(f"embedded engine {self.name} is closed")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        job = _Job(emit=lambda item: None)

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
