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

Where the parts live: this module is the asyncio face (shared loads, streams);
`llama_worker` the worker that owns the model, with `prefill` (KV-cache reuse),
`greedy` (greedy and speculative decoding), `chat_template` and `threads`; `drafting`
and `batch_decoder` speculative drafting and its verify batches; `stop_scanner` stop
strings; `engine_jobs` what the worker and the loop share.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lowentropy.models.errors import BackendError
from lowentropy.models.llama_tokenizer import LlamaTokenizer
from lowentropy.models.packaged import resolve_model_path
from lowentropy.models.types import (
    Capabilities,
    ChatRequest,
    CompletionRequest,
    Scalar,
    TextStream,
    flat_counters,
)

if TYPE_CHECKING:
    pass

from lowentropy.models.engine_jobs import EngineStats, GenerationStats, Job, Sampling
from lowentropy.models.llama_worker import FIM_TOKEN_CANDIDATES, EngineCore
from lowentropy.models.threads import default_threads, usable_cores

__all__ = [
    "FIM_TOKEN_CANDIDATES",
    "EmbeddedEngine",
    "EngineStats",
    "EngineStream",
    "GenerationStats",
    "default_threads",
    "usable_cores",
]

_registry: dict[tuple[str, int], EngineCore] = {}
_registry_lock = threading.Lock()


class EmbeddedEngine:
    """A `Generator` handle on a shared, in-process llama.cpp model."""

    def __init__(self, core: EngineCore) -> None:
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
                core = EngineCore.load(path, n_ctx=n_ctx, n_threads=n_threads)
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

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            chat_template=self._core.has_chat_template, speculation=True, embedded=True
        )

    def counters(self) -> dict[str, Scalar]:
        return flat_counters(self._core.stats)

    def fim_tokens(self) -> frozenset[str]:
        """Which of FIM_TOKEN_CANDIDATES the vocabulary has as special tokens."""
        return self._core.fim_tokens

    def tokenizer(self) -> LlamaTokenizer:
        return self._core.tokenizer

    def stream_completion(self, req: CompletionRequest) -> EngineStream:
        """Stream a completion; `req.prediction` with greedy decoding drafts speculatively."""
        sampling = Sampling(req.max_tokens, req.temperature, req.stop, req.prediction)
        core = self._core
        return self._stream(lambda job: core.complete(req.prompt, sampling, job))

    def stream_chat(self, req: ChatRequest) -> EngineStream:
        """Stream a chat answer; `req.prediction` with greedy decoding drafts speculatively."""
        sampling = Sampling(req.max_tokens, req.temperature, req.stop, req.prediction)
        core = self._core
        return self._stream(lambda job: core.chat(req, sampling, job))

    async def choice_logprobs(self, req: ChatRequest, choices: Sequence[str]) -> list[float]:
        """Log-probability of each choice as the start of the answer to the chat prompt
        (plus `req.assistant_prefix`), summed over its first 12 tokens: one prefill and a
        single-token pass per further token, no sampling (e.g. which of 20 names a
        question is about, or a yes/no judgement)."""
        core = self._core
        pieces = [
            p async for p in self._stream(lambda job: core.choice_logprobs(req, choices, job))
        ]
        values = json.loads("".join(pieces)) if pieces else []
        if len(values) != len(choices):
            raise BackendError("choice_logprobs: the request was cancelled")
        return [float(v) for v in values]

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

    def _stream(self, work: Callable[[Job], None]) -> EngineStream:
        job = Job(emit=lambda item: None)
        return EngineStream(self._pieces(work, job), job.stats)

    async def _pieces(self, work: Callable[[Job], None], job: Job) -> AsyncGenerator[str, None]:
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


class EngineStream(TextStream[GenerationStats]):
    """The text pieces of one generation, and its `GenerationStats` (a `Stream`).

    The worker thread writes `stats` as it goes; they are final once iteration has
    ended (exhausted, broken off or closed), which is when a caller reads them:

        async with contextlib.aclosing(engine.stream_chat(req)) as stream:
            async for piece in stream: ...
        stream.stats.tokens, stream.stats.draft_tokens, stream.stats.accepted_draft_tokens

    Work starts at the first `__anext__`; a stream never iterated submits nothing.
    """
