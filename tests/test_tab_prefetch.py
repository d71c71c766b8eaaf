"""Prefetch and cache warming, with the embedded engine (greedy).

Data: tests/data/tab/fib.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import Docs, first_text, inline_params, lsp_client, stats
from lsprotocol import types

FIB = (Path(__file__).parent / "data" / "tab" / "fib.py").read_text(encoding="utf-8")
LINE, COL = 4, len("    return ")


async def _until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_accepting_a_suggestion_is_answered_from_the_prefetch(tmp_path: Path) -> None:
    """fib.py: accept the suggestion (insert it); the next request needs no new model call."""
    options = {
        "lowentropy": {"completion": {"warmDelayMs": -1, "prefetch": True, "budgetMs": 120_000}}
    }
    async with lsp_client(tmp_path, options) as client:
        docs = Docs(client, tmp_path)
        uri = docs.open(FIB)
        suggestion = first_text(await docs.inline(uri, LINE, COL))
        assert suggestion

        async def prefetched() -> bool:
            return bool((await stats(client)).tab.prefetches >= 1) and not await _pending(client)

        await _until(prefetched)
        calls = (await stats(client)).tab.backendCalls
        docs.insert(uri, LINE, COL, suggestion)  # the editor accepts the ghost text
        lines = (FIB[: FIB.index("return ") + 7] + suggestion).split("\n")
        end_line, end_col = LINE + len(suggestion.split("\n")) - 1, len(lines[-1])
        after = await docs.inline(uri, end_line, end_col)
        result = (await stats(client)).tab
        assert result.backendCalls == calls, "the accepting request called the model again"
        assert result.prefetchHits == 1
        assert isinstance(first_text(after), str)


async def _pending(client: object) -> bool:
    """True while a prefetch is still generating (its backend call is counted when it starts)."""
    result = (await stats(client)).tab  # type: ignore[arg-type]
    return bool(result.prefetches > result.prefetchesDone)


async def test_open_warms_the_cache_and_the_next_prompt_reuses_it(tmp_path: Path) -> None:
    """fib.py: didOpen warms the engine; the first completion then reuses the warmed tokens."""
    options = {
        "lowentropy": {"completion": {"warmDelayMs": 50, "prefetch": False, "budgetMs": 120_000}}
    }
    async with lsp_client(tmp_path, options) as client:
        docs = Docs(client, tmp_path)

        async def loaded() -> bool:
            return bool((await stats(client)).backends)

        await _until(loaded)
        uri = docs.open(FIB)

        async def warmed() -> bool:
            return bool((await stats(client)).tab.warmings >= 1)

        await _until(warmed)
        before = (await stats(client)).backends[0].detail.prompt_tokens_reused
        assert first_text(await docs.inline(uri, LINE, COL))
        after = (await stats(client)).backends[0].detail.prompt_tokens_reused
        assert after > before, "the completion did not reuse the warmed prefix"


async def test_a_suggestion_over_budget_answers_empty_then_serves_what_it_finished(
    tmp_path: Path,
) -> None:
    """fib.py with a 1 ms budget: the request answers empty at once, the generation runs on,
    and asking again at the same place serves its suggestion with no new model call."""
    options = {"lowentropy": {"completion": {"warmDelayMs": -1, "prefetch": False, "budgetMs": 1}}}
    async with lsp_client(tmp_path, options) as client:
        docs = Docs(client, tmp_path)
        uri = docs.open(FIB)
        assert first_text(await docs.inline(uri, LINE, COL)) == ""
        assert (await stats(client)).tab.overBudget == 1

        async def finished() -> bool:
            return bool((await stats(client)).tab.lateCached == 1)

        await _until(finished)
        calls = (await stats(client)).tab.backendCalls
        again = first_text(await docs.inline(uri, LINE, COL))
        assert again.strip(), "the late suggestion should be served"
        assert (await stats(client)).tab.backendCalls == calls


async def test_an_invoked_request_waits_for_its_answer_beyond_the_budget(tmp_path: Path) -> None:
    """fib.py with a 1 ms budget: completion the user asked for explicitly (trigger kind
    Invoked, as `lowentropy complete` and a keybinding send) still gets its suggestion."""
    options = {"lowentropy": {"completion": {"warmDelayMs": -1, "prefetch": False, "budgetMs": 1}}}
    async with lsp_client(tmp_path, options) as client:
        docs = Docs(client, tmp_path)
        uri = docs.open(FIB)
        params = inline_params(uri, LINE, COL)
        params.context = types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked
        )
        result = await client.text_document_inline_completion_async(params)
        assert isinstance(result, types.InlineCompletionList)
        assert first_text(result).strip()
        assert (await stats(client)).tab.overBudget == 0
