"""The coder model's rerank (how likely it names each hit): mixing, fallbacks, the real model."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import attrs
import pytest
import pytest_asyncio

from lowentropy.models.embedded import EmbeddedEngine
from lowentropy.models.types import ChatRequest
from lowentropy.retrieval.model_rerank import ModelReranker, mix, name
from lowentropy.retrieval.types import SearchHit, Span


def hit(path: str, symbol: str, text: str) -> SearchHit:
    lines = text.count("\n")
    return SearchHit(
        path=f"/w/{path}",
        rel_path=path,
        span=Span(start_line=0, start_col=0, end_line=lines, end_col=0),
        score=0.0,
        text=text,
        symbol=symbol,
        kind="function",
        language="python",
    )


# A handmade corpus: the relevant chunk (the CSV exporter's quoting) comes last in
# the fused order, behind chunks that share words with the question but not its subject.
CORPUS = [
    hit("docs/changelog.py", "", "# Changelog\n# 1.2: faster start up\n# 1.1: new logo\n"),
    hit("app/colors.py", "blend", "def blend(a, b):\n    return (a + b) / 2\n"),
    hit(
        "app/login.py",
        "check_password",
        "def check_password(user, pw):\n    return pw == user.pw\n",
    ),
    hit("app/math_utils.py", "clamp", "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n"),
    hit(
        "app/export_csv.py",
        "write_csv_row",
        "def write_csv_row(out, cells):\n    out.write(','.join(cells) + '\\n')\n",
    ),
]
QUESTION = "Quote the cells that contain commas when the exporter writes CSV rows"


def test_mix_moves_named_hits_up_and_keeps_the_rest_in_fused_order() -> None:
    assert mix(4, [], 1.0) == [0, 1, 2, 3]
    assert mix(4, [3], 1.0) == [3, 0, 1, 2]
    assert mix(4, [3], 0.0) == [0, 1, 2, 3]  # weight 0: the fused order


def test_a_hit_is_named_by_its_symbol_else_its_file() -> None:
    assert name(CORPUS[4]) == "write_csv_row"
    assert name(CORPUS[0]) == "changelog"


def test_bad_settings_are_refused() -> None:
    async def nothing() -> EmbeddedEngine:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="top=0"):
        ModelReranker(nothing, top=0)


class NoScores:
    """A generator that can only stream text (as an HTTP endpoint)."""

    def stream_chat(self, req: object) -> object:
        raise AssertionError("not used")


class Broken:
    async def choice_logprobs(self, req: ChatRequest, choices: object) -> list[float]:
        raise RuntimeError("backend gone")


@pytest.mark.parametrize("backend", [NoScores(), Broken()])
async def test_without_scores_the_fused_order_stays(backend: object) -> None:
    async def generator() -> object:
        return backend

    reranker = ModelReranker(generator)  # type: ignore[arg-type]
    ranked = await reranker.rerank(QUESTION, CORPUS)
    assert [h.rel_path for h in ranked] == [h.rel_path for h in CORPUS]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine() -> AsyncIterator[EmbeddedEngine]:
    eng = EmbeddedEngine.shared("qwen2.5-coder-0.5b")  # the packaged default (tests use SmolLM2)
    yield eng
    await eng.aclose()


@pytest.mark.asyncio(loop_scope="module")
async def test_the_packaged_model_moves_the_relevant_chunk_up(engine: EmbeddedEngine) -> None:
    async def generator() -> EmbeddedEngine:
        return engine

    reranker = ModelReranker(generator, top=len(CORPUS))
    extra = [hit("app/other.py", "", "x = 1\n")]  # past `top`: kept after the head
    order = await reranker.order(QUESTION, CORPUS)
    assert order[0] == 4, order  # the CSV writer is the likeliest name
    ranked = await reranker.rerank(QUESTION, CORPUS + extra)
    paths = [h.rel_path for h in ranked]
    assert paths.index("app/export_csv.py") < 4, paths  # moved up from last of the head
    assert paths[-1] == "app/other.py"
    assert sorted(paths) == sorted(h.rel_path for h in CORPUS + extra)
    # The second pass over the same question and names was answered from the cache.
    assert reranker.scored == len(CORPUS)


@pytest.mark.asyncio(loop_scope="module")
async def test_scoring_leaves_the_engine_answering_as_before(engine: EmbeddedEngine) -> None:
    async def generator() -> EmbeddedEngine:
        return engine

    reranker = ModelReranker(generator)
    request = attrs.evolve(reranker.request(QUESTION), max_tokens=8)

    async def answer() -> str:
        async with contextlib.aclosing(engine.stream_chat(request)) as stream:
            return "".join([piece async for piece in stream])

    before = await answer()
    # Scoring names evaluates their tokens past the same prompt, then rolls back.
    assert await engine.choice_logprobs(
        request, ["write_csv_row", "clamp"]
    ) == await engine.choice_logprobs(request, ["write_csv_row", "clamp"])
    assert await answer() == before
