"""Every prompt leaves with its secrets masked, whichever feature built it.

Tab, next edit, apply and chat each gather context their own way (the current
buffer, other files' recent edits, retrieved chunks, files the user named); a
token typed into any of them must not reach a backend, an HTTP one least of all.
`RedactingGenerator` wraps a role's generator and runs `mask_secrets` over each
prompt, warm prefix, prediction and message just before it is sent: one place,
so no context path can forget it. Masking keeps lengths, so a prompt's shape
(and a Tab prompt's KV-cache prefix) is the same for every keystroke.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs

from lowentropy.models.types import (
    Capabilities,
    ChatRequest,
    CompletionRequest,
    Generator,
    Scalar,
    Stream,
    Tokenizer,
)
from lowentropy.retrieval.secrets import mask_secrets

__all__ = ["RedactingGenerator", "RedactingTokenizer", "mask", "unwrap_generator"]


@functools.lru_cache(maxsize=16384)
def _mask_line(line: str) -> str:
    return mask_secrets(line)


def mask(text: str) -> str:
    """`mask_secrets`, a line at a time through a cache: a keystroke's prompt differs from
    the last in a line or two, so only those are scanned. Every pattern but a private-key
    block lies within one line; a text with a key block is scanned whole."""
    if "PRIVATE KEY" in text:
        return mask_secrets(text)
    return "".join(_mask_line(line) for line in text.splitlines(keepends=True))


def _mask(text: str | None) -> Any:
    return None if text is None else mask(text)


class RedactingGenerator:
    """A generator whose every request has its secrets masked first."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def stream_completion(self, req: CompletionRequest) -> Stream:
        return self.inner.stream_completion(
            attrs.evolve(
                req,
                prompt=mask(req.prompt),
                stable_prefix=mask(req.stable_prefix),
                prediction=_mask(req.prediction),
            )
        )

    def stream_chat(self, req: ChatRequest) -> Stream:
        messages = tuple(attrs.evolve(m, content=mask(m.content)) for m in req.messages)
        return self.inner.stream_chat(
            attrs.evolve(
                req,
                messages=messages,
                stable_prefix=mask(req.stable_prefix),
                prediction=_mask(req.prediction),
                assistant_prefix=mask(req.assistant_prefix),
            )
        )

    async def warm(self, prefix: str) -> None:
        await self.inner.warm(mask(prefix))

    def tokenizer(self) -> Tokenizer:
        return self.inner.tokenizer()

    def counters(self) -> dict[str, Scalar]:
        return self.inner.counters()

    async def aclose(self) -> None:
        await self.inner.aclose()


def unwrap_generator(generator: Generator) -> Generator:
    """The generator inside a `RedactingGenerator` (or the generator itself)."""
    return generator.inner if isinstance(generator, RedactingGenerator) else generator


class RedactingTokenizer:
    """Counts tokens of the masked text: a remote `/tokenize` never sees a secret either."""

    def __init__(self, inner: Tokenizer) -> None:
        self.inner = inner

    @property
    def exact(self) -> bool:
        return self.inner.exact

    def count(self, text: str) -> int:
        return self.inner.count(mask(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
