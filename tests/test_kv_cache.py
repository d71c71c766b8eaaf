"""KV cache reuse beyond the shared prefix: shifted chunks and snapshots (models/kv_cache.py),
planned as pure functions and carried out by the embedded engine on SmolLM2-135M."""

from __future__ import annotations

import json.decoder
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from lowentropy.models.embedded import EmbeddedEngine
from lowentropy.models.kv_cache import Move, Snapshot, SnapshotStore, plan_reuse
from lowentropy.models.types import CompletionRequest

# -- planning (pure) --------------------------------------------------------------------------


def test_prefix_only_when_nothing_else_matches() -> None:
    plan = plan_reuse([1, 2, 3, 4], [1, 2, 9, 9], min_chunk=2)
    assert plan.prefix == 2 and plan.moves == () and plan.valid_until == 2


def test_a_deleted_stretch_shifts_what_follows_it_into_place() -> None:
    cached = [*range(10), *range(100, 110), *range(200, 220)]
    prompt = [*range(10), *range(200, 220), 7]  # the middle stretch was deleted
    plan = plan_reuse(cached, prompt, min_chunk=8)
    assert plan.prefix == 10
    assert plan.moves == (Move(src=20, dst=10, length=20),)
    assert plan.valid_until == 30 and plan.reused == 30
    # Below the minimum chunk the tokens are evaluated afresh.
    assert plan_reuse(cached, prompt, min_chunk=21).moves == ()
    assert plan_reuse(cached, prompt, min_chunk=0).moves == ()


def test_an_insertion_cannot_reuse_what_follows_it() -> None:
    """The cache must hold an unbroken head of the prompt: new tokens before a chunk
    would need positions below cells that already exist."""
    cached = [*range(10), *range(200, 220)]
    prompt = [*range(10), 55, 56, *range(200, 220)]
    assert plan_reuse(cached, prompt, min_chunk=4).valid_until == 10


def test_the_last_prompt_token_is_always_left_to_evaluate() -> None:
    cached = [*range(10), *range(100, 105), *range(200, 220)]
    prompt = [*range(10), *range(200, 220)]
    plan = plan_reuse(cached, prompt, min_chunk=4)
    assert plan.valid_until == len(prompt) - 1


def test_snapshot_store_keeps_the_best_match_within_its_budget() -> None:
    store = SnapshotStore(budget_bytes=250)

    def snap(tokens: list[int], size: int = 100) -> Snapshot:
        return Snapshot(tokens=tuple(tokens), data=None, size=size)

    a, b = snap([1, 2, 3]), snap([7, 8, 9])
    store.add(a)
    store.add(b)
    assert store.best([1, 2, 3, 4]) == (a, 3)
    assert store.best([7, 8]) == (b, 2)
    assert store.best([5]) == (None, 0)
    store.add(snap([1, 2, 3, 4, 5]))  # extends `a`: replaces it
    assert len(store) == 2 and store.covers([1, 2, 3, 4])
    store.touch(b)
    store.add(snap([4, 4, 4]))  # over budget: the least recently used goes
    assert not store.covers([1, 2, 3]) and store.covers([7, 8, 9])


# -- the engine (real llama.cpp) ---------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def engine() -> AsyncIterator[EmbeddedEngine]:
    eng = EmbeddedEngine.shared("smollm2-135m", n_ctx=2048)
    yield eng
    await eng.aclose()


def code(offset: int, tokens: int, engine: EmbeddedEngine) -> str:
    """Real code nobody here wrote (the stdlib's json decoder), ~`tokens` tokens from a line."""
    tok = engine.tokenizer()
    lines = Path(json.decoder.__file__).read_text().split("\n")[offset:]
    text = tok.detokenize(tok.tokenize("\n".join(lines))[:tokens]).rsplit("\n", 1)[0]
    # No blank line at the end: "\n\n" + indentation tokenizes unlike "\n" + indentation,
    # and a chunk is only reused from where the tokens agree again.
    return text.rstrip("\n") + "\n"


async def complete(engine: EmbeddedEngine, prompt: str, max_tokens: int = 12) -> tuple[str, int]:
    """The greedy completion and how many prompt tokens the engine had to evaluate."""
    before = engine.stats.prompt_tokens_evaluated
    stream = engine.stream_completion(
        CompletionRequest(prompt=prompt, max_tokens=max_tokens, temperature=0.0)
    )
    text = "".join([piece async for piece in stream])
    return text, engine.stats.prompt_tokens_evaluated - before


async def test_switching_back_restores_a_snapshot_instead_of_evaluating(
    engine: EmbeddedEngine,
) -> None:
    doc_a = code(0, 700, engine) + "def first("
    doc_b = code(150, 700, engine) + "def second("
    first, evaluated = await complete(engine, doc_a)
    assert evaluated > 600
    await complete(engine, doc_b)  # replaces the cache: `doc_a`'s is kept as a snapshot
    saved = engine.stats.snapshots_saved
    assert saved >= 1
    again, evaluated = await complete(engine, doc_a)
    assert engine.stats.snapshot_restores >= 1
    assert evaluated <= 2  # the snapshot held all of it but the last token
    assert again == first  # an exact copy of the state: the same greedy output


async def test_a_deletion_above_shifts_the_rest_instead_of_evaluating_it(
    engine: EmbeddedEngine,
) -> None:
    head = code(300, 120, engine)
    middle = code(200, 150, engine)
    tail = code(100, 400, engine)
    await complete(engine, head + middle + tail + "x = ")
    shifted = engine.stats.prompt_tokens_shifted
    text, evaluated = await complete(engine, head + tail + "x = ")
    assert engine.stats.prompt_tokens_shifted - shifted > 300
    assert evaluated < 40  # only what no cached chunk covered
    assert text  # decoding went on from the rearranged cache
