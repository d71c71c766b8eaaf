"""Rerank with the coder model: how likely it is to name each hit's symbol for the question.

When no cross-encoder is configured (`index.rerankModel`), the chat model (the
packaged Qwen2.5-Coder-0.5B) can still reorder the first `top` hits of hybrid
search. The cheapest design that works on two CPU cores scores names, not text:
the question is put once ("name the function, method or class this is about"),
and each distinct hit's symbol (its file's name for a chunk without one) is
scored as the answer, log P(name | question) from the logits (`choice_logprobs`:
one prefill, then one single-token pass per further token of each name, nothing
sampled), divided by its token count to the power `alpha`. The model's order is
mixed with the fused rank (`mix`: reciprocal ranks, the model's weighted by
`weight`), so a poor judgement cannot throw a good hit far down.

Tried first on a handmade case and dropped: a listwise prompt (20 numbered
snippets, "the numbers of the relevant ones") is answered with the first numbers
whatever the order; a yes/no judgement per snippet barely separates hits (and
its free answer is always "Yes").

Not switched on in the server: with the packaged Qwen2.5-Coder-0.5B it is within
a case of the hybrid ranking (`bench/search_quality.py --rerank`, files/symbols
R@5; dev 32 commits: hybrid 0.917/0.538 -> 0.932/0.546; held aside 28: hybrid
0.798/0.526 -> 0.827/0.528, while R@10 falls 0.893/0.632 -> 0.863/0.611), at
2.2 s p50 and 3.4 s p95 a question on 2 busy cores. Tuned on dev (`--rr-grid`):
the raw log P (alpha 0) pulls short names up and costs recall (weight 1:
0.870/0.454, weight 4: 0.797/0.304); alpha 0.75-1 with weight 0.25-0.5 is best.

Scores are cached by (question, name), and the rerank is meant for chat's
retrieval only: never the keystroke path. A generator without `choice_logprobs`
(an HTTP endpoint) or a failure leaves the fused order. retrieval/ knows no
server: the generator comes from a factory the caller hands in.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import PurePosixPath
from typing import Protocol, runtime_checkable

import attrs

from lowentropy.models.types import ChatRequest, Generator
from lowentropy.retrieval.query_rewrite import question_request
from lowentropy.retrieval.types import SearchHit

__all__ = ["ChoiceScorer", "ModelReranker", "mix", "name"]

log = logging.getLogger(__name__)

SYSTEM = "You are a code search assistant for a Python codebase. Answer with names only."
PROMPT = (
    "Question or change description:\n{question}\n\n"
    "Name the function, method or class in the code that this is about or that this "
    "change would touch, as it is spelled in the code."
)
QUESTION_CHARS = 600  # a long commit message's first lines carry its subject


@runtime_checkable
class ChoiceScorer(Protocol):
    """A generator that can score an answer's first token (the embedded engine can)."""

    async def choice_logprobs(self, req: ChatRequest, choices: Sequence[str]) -> list[float]: ...


def name(hit: SearchHit) -> str:
    """What the model is asked to name for a hit: its symbol, else its file's name."""
    return hit.symbol or PurePosixPath(hit.rel_path).stem


def mix(n: int, order: Sequence[int], weight: float, k: float = 10.0) -> list[int]:
    """Indices 0..n-1 (fused order) reordered by 1/(k+fused rank) + weight/(k+model rank)."""
    model_rank = {i: r for r, i in enumerate(order, start=1)}
    score = {
        i: 1.0 / (k + i + 1) + (weight / (k + model_rank[i]) if i in model_rank else 0.0)
        for i in range(n)
    }
    return sorted(range(n), key=lambda i: (-score[i], i))


class ModelReranker:
    """A `Reranker` from a generator: the first `top` hits reordered, the rest after them.

    `generator` is called once per rerank to get the backend (a server's role
    backend may be reloaded between searches). Scores are cached (LRU) by the
    question and the hit's text.
    """

    def __init__(
        self,
        generator: Callable[[], Awaitable[Generator]],
        *,
        top: int = 20,
        weight: float = 0.5,  # tuned on the dev split (bench/search_quality.py --rerank)
        alpha: float = 0.75,  # log P over tokens**alpha: a long name is not much less likely
        cache_size: int = 4096,
    ) -> None:
        if top < 1 or weight < 0 or alpha < 0:
            raise ValueError(f"ModelReranker: bad top={top}, weight={weight} or alpha={alpha}")
        self._generator = generator
        self.top = top
        self.weight = weight
        self.alpha = alpha
        self.cache_size = cache_size
        self.scored = 0  # names scored by the model (cache misses), for tests and benches
        # (question, name) -> (log P(name | question), its token count)
        self._cache: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def request(self, question: str) -> ChatRequest:
        return question_request(SYSTEM, PROMPT, question.strip()[:QUESTION_CHARS], 1)

    async def scores(
        self, question: str, hits: Sequence[SearchHit]
    ) -> list[tuple[float, int]] | None:
        """(log P(name), tokens) per hit; None when the generator cannot score or fails."""
        question = question.strip()
        if not hits or not question:
            return None
        try:
            generator = await self._generator()
            if not isinstance(generator, ChoiceScorer):
                log.info(
                    "model rerank: %s cannot score answers, keeping the fused order",
                    type(generator).__name__,
                )
                return None
            names = list(dict.fromkeys(name(h) for h in hits))
            missing = [n for n in names if (question, n) not in self._cache]
            if missing:
                values = await generator.choice_logprobs(self.request(question), missing)
                tokenizer = generator.tokenizer()
                self.scored += len(missing)
                for n, value in zip(missing, values, strict=True):
                    self._cache[(question, n)] = (value, max(1, min(12, tokenizer.count(n))))
            for n in names:
                self._cache.move_to_end((question, n))
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return [self._cache[(question, name(h))] for h in hits]
        except Exception as exc:  # search goes on in fused order
            log.warning("model rerank failed, keeping the fused order: %s", exc)
            return None

    async def order(
        self, question: str, hits: Sequence[SearchHit], alpha: float | None = None
    ) -> list[int]:
        """Indices of `hits` by the model's score, best first ([] when it cannot score)."""
        scores = await self.scores(question, hits)
        if scores is None:
            return []
        a = self.alpha if alpha is None else alpha
        value = [lp / tokens**a for lp, tokens in scores]
        return sorted(range(len(hits)), key=lambda i: (-value[i], i))

    async def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        head, tail = list(hits[: self.top]), list(hits[self.top :])
        ranked = mix(len(head), await self.order(query, head), self.weight)
        n = len(head)
        # Scores restate the new order (higher is better) for callers that show them.
        return [attrs.evolve(head[i], score=float(n - r)) for r, i in enumerate(ranked)] + tail
