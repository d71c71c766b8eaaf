"""Query rewriting: a coder model turns a question into the identifiers it is likely about.

Questions and commit messages describe a change in prose ("Fix timestamps in
the JSON renderer"); the code spells it `JSONRenderer`, `add_timestamp`. The
chat model (a small coder model is enough) is asked, greedily, for the names a
change would touch, one per line; the names become a second full-text query
fused with the others (see `Searcher`). A rewrite costs a generation (about a
second or two on a CPU), so it is cached by question, and only `search` and
chat's retrieval use it: never the keystroke path.

retrieval/ knows no server: the generator comes from a factory that the caller
hands in (`Searcher(rewriter=...)`).

Not switched on in the server: with the packaged Qwen2.5-Coder-0.5B it helps
full text alone but not the hybrid ranking search uses (`bench/search_quality.py
--rewrite`, files/symbols R@5; dev 32 commits: full text 0.667/0.350 ->
0.760/0.387, hybrid 0.917/0.538 -> 0.906/0.539; held aside 28: full text
0.667/0.345 -> 0.613/0.351, hybrid 0.798/0.526 -> 0.798/0.510), at 0.9 s p50 and
2.1 s p95 a question on 2 cores. Also tried on dev, no better: the names as a
third fused ranking (0.906/0.512, at half weight 0.870/0.551), the names raised
like code names in the question (0.906/0.543), a one-shot prompt (0.859/0.573),
the names appended to the vector query (vector 0.630/0.330 -> 0.589/0.293).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from lowentropy.models.types import ChatMessage, ChatRequest, Generator

__all__ = ["QueryRewriter", "parse_terms"]

log = logging.getLogger(__name__)

SYSTEM = "You are a code search assistant for a Python codebase. Answer with names only."
PROMPT = (
    "Question or change description:\n{question}\n\n"
    "List the function, method and class names in the code that this is about or that "
    "this change would touch, as they would be spelled in the code (snake_case or "
    "CamelCase), one per line, most likely first. No explanations."
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# Words a model writes around names that say nothing about the code.
_NOISE = frozenset(
    {"none", "the", "and", "for", "python", "class", "def", "self", "return", "import", "from"}
    | {"bool", "int", "str", "true", "false", "fix", "add"}
)
QUESTION_CHARS = 1500  # a long commit message's first lines carry its subject


def parse_terms(answer: str, limit: int) -> list[str]:
    """Names from a model's answer: one or more per line, bullets and backticks dropped."""
    terms: list[str] = []
    seen: set[str] = set()
    for line in answer.splitlines():
        for name in _NAME.findall(line):
            if name.lower() in _NOISE or len(name) < 3 or name in seen:
                continue
            seen.add(name)
            terms.append(name)
    return terms[:limit]


def question_request(system: str, prompt: str, question: str, max_tokens: int) -> ChatRequest:
    """A greedy chat request about a search question (rewrite and rerank ask the model
    this way); the system text is the stable prefix the KV cache keeps."""
    return ChatRequest(
        messages=(
            ChatMessage(role="system", content=system),
            ChatMessage(role="user", content=prompt.format(question=question.strip())),
        ),
        max_tokens=max_tokens,
        temperature=0.0,
        stable_prefix=system,
    )


class QueryRewriter:
    """Likely identifiers for a question, from a generator, cached by question (LRU).

    `generator` is called once per rewrite to get the backend (a server's role
    backend may be reloaded between searches). A failed rewrite logs and gives no
    terms, so search goes on without them; it is not cached, so a later search retries.
    """

    def __init__(
        self,
        generator: Callable[[], Awaitable[Generator]],
        *,
        max_tokens: int = 64,
        max_terms: int = 12,
        cache_size: int = 256,
    ) -> None:
        self._generator = generator
        self.max_tokens = max_tokens
        self.max_terms = max_terms
        self.cache_size = cache_size
        self.generations = 0  # model calls made (cache misses), for tests and benches
        self._cache: OrderedDict[str, asyncio.Future[list[str]]] = OrderedDict()

    def request(self, question: str) -> ChatRequest:
        return question_request(SYSTEM, PROMPT, question.strip()[:QUESTION_CHARS], self.max_tokens)

    async def terms(self, question: str) -> list[str]:
        """The question's likely identifiers; concurrent calls for one question share a rewrite."""
        key = question.strip()
        future = self._cache.get(key)
        if future is not None:
            self._cache.move_to_end(key)
            return list(await asyncio.shield(future))
        future = asyncio.get_running_loop().create_future()
        self._cache[key] = future
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        try:
            terms = await self._rewrite(key)
        except BaseException as exc:
            self._cache.pop(key, None)
            future.set_result([])  # waiters go on without terms
            if not isinstance(exc, Exception):
                raise  # cancelled: propagate
            log.warning("query rewrite failed, searching without it: %s", exc)
            return []
        future.set_result(terms)
        return list(terms)

    async def _rewrite(self, question: str) -> list[str]:
        generator = await self._generator()
        self.generations += 1
        async with contextlib.aclosing(generator.stream_chat(self.request(question))) as stream:
            pieces = [piece async for piece in stream]
        return parse_terms("".join(pieces), self.max_terms)
