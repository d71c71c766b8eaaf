"""Speculative edits on the embedded engine (packaged SmolLM2-135M, greedy).

The region is the standard library's `textwrap.indent` (code nobody here
wrote) with a one-line sketch; one model load serves the module.
"""

from __future__ import annotations

import asyncio
import inspect
import textwrap
from collections.abc import AsyncIterator

import attrs
import pytest_asyncio

from lowentropy.models.drafting import (
    SPEC_MAX_STREAK,
    SPEC_MIN_DRAFT,
    SPEC_MIN_STREAK,
    Drafter,
    draft_length,
)
from lowentropy.models.embedded import EmbeddedEngine, EngineStream, GenerationStats
from lowentropy.models.types import ChatRequest
from lowentropy.prompts.apply import apply_chat_request

REGION = inspect.getsource(textwrap.indent)
SKETCH = REGION.replace("def prefixed_lines():", "def prefixed_lines():  # generator", 1)


@pytest_asyncio.fixture(scope="module")
async def engine() -> AsyncIterator[EmbeddedEngine]:
    eng = EmbeddedEngine.shared()
    yield eng
    await eng.aclose()


@attrs.frozen
class Out:
    text: str
    stats: GenerationStats


async def run(engine: EmbeddedEngine, req: ChatRequest) -> Out:
    stream = engine.stream_chat(req)
    assert isinstance(stream, EngineStream)
    text = "".join([piece async for piece in stream])
    return Out(text, stream.stats)


def request(max_tokens: int = 120, **kw: object) -> ChatRequest:
    req = apply_chat_request(REGION, SKETCH, max_tokens=max_tokens)
    return attrs.evolve(req, **kw)


@pytest_asyncio.fixture(scope="module")
async def plain(engine: EmbeddedEngine) -> Out:
    """The plain greedy answer: what speculation must reproduce."""
    out = await run(engine, request(prediction=None))
    assert out.stats.draft_tokens == 0
    assert out.stats.tokens == 120
    return out


# -- the drafter alone ------------------------------------------------------


def test_drafter_follows_and_realigns_after_an_insertion() -> None:
    pred = list(range(100, 140))
    d = Drafter(pred)
    assert d.propose(3) == [100, 101, 102]  # the output starts where the prediction does
    for t in pred[:10]:
        d.push(t)
    assert d.streak == 10
    assert d.propose(4) == [110, 111, 112, 113]
    for t in (7, 8, 9):  # an inserted line: not in the prediction
        d.push(t)
    assert d.streak == 0 and d.propose(4) == []
    d.push(110)
    d.push(111)  # a 2-gram of the prediction: aligned again
    assert d.propose(2) == [112, 113]


def test_drafter_prefers_the_match_after_the_last_agreed_position() -> None:
    pred = [1, 2, 3, 9, 9, 1, 2, 3, 4]
    d = Drafter(pred)
    for t in pred[:6]:
        d.push(t)
    d.push(5)  # diverge, then "1 2" occurs twice: the later one is ahead of us
    d.push(1)
    d.push(2)
    assert d.propose(2) == [3, 4]


def test_draft_length_waits_for_a_streak_and_follows_it() -> None:
    assert draft_length(SPEC_MIN_STREAK - 1, 100) == 0
    assert draft_length(SPEC_MIN_STREAK, 100) == SPEC_MIN_DRAFT
    assert draft_length(40, 100) == 40
    assert draft_length(500, 1000) == 64
    assert draft_length(40, SPEC_MIN_DRAFT - 1) == 0  # too little room to pay


# -- the engine -----------------------------------------------------------------


async def test_a_faithful_prediction_is_accepted_and_output_unchanged(
    engine: EmbeddedEngine, plain: Out
) -> None:
    before = engine.stats.accepted_draft_tokens
    spec = await run(engine, request(prediction=plain.text))
    s = spec.stats
    assert s.tokens == plain.stats.tokens
    assert s.accepted_draft_tokens > 50
    assert s.forward_passes < s.tokens // 2  # plain takes one per token
    assert plain.stats.forward_passes == plain.stats.tokens - 1
    assert spec.text == plain.text
    assert engine.stats.accepted_draft_tokens - before == s.accepted_draft_tokens


async def test_the_original_region_as_prediction_speeds_up_copying(
    engine: EmbeddedEngine, plain: Out
) -> None:
    """The real apply draft: the region itself (the answer copies most of it)."""
    spec = await run(engine, request())
    assert spec.stats.accepted_draft_tokens > 20
    assert spec.stats.forward_passes < spec.stats.tokens


async def test_a_garbage_prediction_gives_the_plain_output_and_drafts_back_off(
    engine: EmbeddedEngine, plain: Out
) -> None:
    garbage = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20
    spec = await run(engine, request(prediction=garbage))
    assert spec.text == plain.text
    assert spec.stats.draft_tokens <= 2 * SPEC_MIN_DRAFT
    assert spec.stats.forward_passes >= spec.stats.tokens - 1 - spec.stats.accepted_draft_tokens


async def test_max_tokens_is_honoured_while_drafting(engine: EmbeddedEngine, plain: Out) -> None:
    short_plain = await run(engine, request(max_tokens=37, prediction=None))
    spec = await run(engine, request(max_tokens=37, prediction=plain.text))
    assert spec.stats.tokens == short_plain.stats.tokens == 37
    assert spec.text == short_plain.text
    assert plain.text.startswith(spec.text)


async def test_stop_strings_are_honoured_while_drafting(engine: EmbeddedEngine, plain: Out) -> None:
    # A stop string well inside the answer, so drafts run past it.
    stop = next(w for w in ("for line", "yield", "return") if w in plain.text[40:])
    spec = await run(engine, request(prediction=plain.text, stop=(stop,)))
    assert spec.text == plain.text[: plain.text.index(stop)]
    assert spec.stats.accepted_draft_tokens > 0


async def test_cancelling_mid_generation_stops_it(engine: EmbeddedEngine, plain: Out) -> None:
    cancelled = engine.stats.generations_cancelled
    stream = engine.stream_chat(request(max_tokens=2000, prediction=plain.text * 10))
    pieces = 0
    async for _ in stream:
        pieces += 1
        if pieces == 5:
            break
    await stream.aclose()
    for _ in range(100):  # the worker notices between batches
        if engine.stats.generations_cancelled > cancelled:
            break
        await asyncio.sleep(0.05)
    assert engine.stats.generations_cancelled == cancelled + 1
    assert stream.stats.tokens < 400
    # The engine is free and consistent afterwards.
    again = await run(engine, request(max_tokens=37, prediction=None))
    assert plain.text.startswith(again.text)


async def test_sampling_ignores_the_prediction(engine: EmbeddedEngine, plain: Out) -> None:
    spec = await run(engine, request(max_tokens=20, temperature=0.7, prediction=plain.text))
    assert spec.stats.draft_tokens == 0
    assert spec.stats.tokens <= 20


def test_failed_drafts_raise_the_wait_and_a_whole_one_resets_it() -> None:
    d = Drafter(list(range(100, 140)))
    assert d.evidence == SPEC_MIN_STREAK  # from the start: drafting may begin at once
    assert draft_length(d.evidence, 100, d.threshold) == SPEC_MIN_DRAFT
    d.push(7)  # diverged: the prior is gone
    assert d.evidence == 0
    d.verified(8, 1)
    assert d.threshold == 2 * SPEC_MIN_STREAK
    d.verified(8, 2)
    assert d.threshold == 4 * SPEC_MIN_STREAK
    assert draft_length(2 * SPEC_MIN_STREAK, 100, d.threshold) == 0
    for _ in range(10):
        d.verified(8, 0)
    assert d.threshold == SPEC_MAX_STREAK  # bounded
    d.verified(8, 5)  # more than half: no change
    assert d.threshold == SPEC_MAX_STREAK
    d.verified(8, 8)
    assert d.threshold == SPEC_MIN_STREAK
