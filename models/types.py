"""Requests and the backend interface that every generator implements.

The server renders a prompt, builds a `CompletionRequest` or `ChatRequest` and
iterates the backend's `Stream`, closing it when done (`contextlib.aclosing`).
Closing a stream early or cancelling the consuming task cancels the generation:
an HTTP backend closes its stream, the embedded engine stops between tokens.
A `Generator` states what it can do in its `Capabilities`; callers read them
instead of probing for attributes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

import attrs

Role = Literal["tab", "nextEdit", "apply", "chat", "embed"]
ROLES: tuple[Role, ...] = ("tab", "nextEdit", "apply", "chat", "embed")


@attrs.frozen(kw_only=True)
class CompletionRequest:
    """A raw-prompt completion (`/v1/completions`): FIM templates are ours."""

    prompt: str
    max_tokens: int = 64
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    # The part of the prompt that stays the same across keystrokes; the pool
    # routes on its hash so a document keeps hitting one replica's KV cache.
    stable_prefix: str = ""
    # Draft text the backend may use for speculative decoding (apply).
    prediction: str | None = None


@attrs.frozen(kw_only=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@attrs.frozen(kw_only=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 512
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    stable_prefix: str = ""
    # Draft text the backend may use for speculative decoding (apply): the
    # expected answer, e.g. the original code that a rewrite mostly copies.
    prediction: str | None = None
    # The start of the answer, already written (prefill): the embedded engine
    # continues from it, which keeps small models in the expected format. HTTP
    # backends cannot prefill portably and ignore it; parse answers accordingly.
    assistant_prefix: str = ""


@runtime_checkable
class Tokenizer(Protocol):
    """Synchronous token counting, cheap enough for the prompt renderer."""

    @property
    def exact(self) -> bool:
        """False when counts are a character estimate (the last resort)."""
        ...

    def count(self, text: str) -> int: ...


@attrs.define
class GenerationStats:
    """Counters for one generation: a `Stream`'s `stats`, final once the stream ends.

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


@runtime_checkable
class Stream(Protocol):
    """The text pieces of one generation: an async iterator that must be closed.

    Close it when done, `async with contextlib.aclosing(stream)`: breaking out of
    the loop then stops the generation at once. `stats` counts the generation's
    tokens, final once iteration has ended (exhausted, broken off or closed); None
    where the backend does not count them (HTTP endpoints).
    """

    @property
    def stats(self) -> GenerationStats | None: ...

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def __anext__(self) -> str: ...

    async def aclose(self) -> None: ...


S = TypeVar("S", bound=GenerationStats | None)


class TextStream(Generic[S]):
    """A `Stream` over an async generator of pieces, with the stats its producer writes.

    Work starts at the first `__anext__`; a stream never iterated does nothing."""

    def __init__(self, pieces: AsyncGenerator[str, None], stats: S) -> None:
        self._pieces = pieces
        self.stats = stats

    def __aiter__(self) -> TextStream[S]:
        return self

    async def __anext__(self) -> str:
        return await self._pieces.__anext__()

    async def aclose(self) -> None:
        await self._pieces.aclose()


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a generator can do, stated by it (callers never probe for attributes)."""

    # `stream_chat` formats messages with the model's chat template. False: a base
    # model without one (Gemma 270M); callers write a raw prompt for `stream_completion`.
    chat_template: bool = True
    # A request's `prediction` is used as a speculative draft (HTTP: the endpoint
    # takes OpenAI's `prediction` field); elsewhere it is ignored.
    speculation: bool = False
    # An in-process model loaded once per process and shared by handles on it: it
    # outlives one server's backends, which leave it loaded when they close.
    embedded: bool = False


Scalar = int | float | str | bool


def flat_counters(stats: attrs.AttrsInstance) -> dict[str, Scalar]:
    """An attrs counters object as a flat dict: its scalar fields (None ones left out)."""
    return {k: v for k, v in attrs.asdict(stats).items() if isinstance(v, (int, float, str, bool))}


@runtime_checkable
class Generator(Protocol):
    """What every text backend offers: the embedded engine, one HTTP endpoint, a pool."""

    name: str

    @property
    def capabilities(self) -> Capabilities: ...

    def stream_completion(self, req: CompletionRequest) -> Stream: ...

    def stream_chat(self, req: ChatRequest) -> Stream: ...

    async def warm(self, prefix: str) -> None:
        """Put `prefix` into the backend's KV cache (HTTP: max_tokens=1)."""
        ...

    def tokenizer(self) -> Tokenizer: ...

    def counters(self) -> dict[str, Scalar]:
        """Live counters for `lowentropy/stats` ({} for a backend that keeps none)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...
