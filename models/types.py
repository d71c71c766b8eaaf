"""Requests and the backend interface that every generator implements.

The server renders a prompt, builds a `CompletionRequest` or `ChatRequest` and
iterates the backend's stream. Cancelling the consuming task cancels the
generation: an HTTP backend closes its stream, the embedded engine stops
between tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Literal, Protocol, runtime_checkable

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


@runtime_checkable
class Generator(Protocol):
    """What every text backend offers: the embedded engine, one HTTP endpoint, a pool."""

    name: str

    def stream_completion(self, req: CompletionRequest) -> AsyncIterator[str]: ...

    def stream_chat(self, req: ChatRequest) -> AsyncIterator[str]: ...

    async def warm(self, prefix: str) -> None:
        """Put `prefix` into the backend's KV cache (HTTP: max_tokens=1)."""
        ...

    def tokenizer(self) -> Tokenizer: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...
