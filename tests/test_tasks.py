"""server/tasks.py: superseding per document and keeping background tasks."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from lowentropy.server.tasks import Supersede, Superseded, TaskKeeper


async def test_a_newer_request_supersedes_the_older_one_for_its_key_only() -> None:
    requests = Supersede("completion")
    started = asyncio.Event()

    async def request(key: str, wait: bool) -> str:
        with requests.latest(key):
            if wait:
                started.set()
                await asyncio.sleep(10)
            return key

    older = asyncio.create_task(request("a", True))
    other = asyncio.create_task(request("b", True))
    await started.wait()
    await asyncio.sleep(0)
    assert requests.running("a") and requests.running("b")
    assert await request("a", False) == "a"
    with pytest.raises(Superseded) as raised:
        await older
    assert raised.value.code == int(types.LSPErrorCodes.ServerCancelled)
    assert raised.value.message == "superseded by a newer completion request for this document"
    assert not requests.running("a")
    other.cancel()  # a plain cancellation stays one
    with pytest.raises(asyncio.CancelledError):
        await other
    assert not requests.running("b")


async def test_the_keeper_holds_reports_failures_and_cancels_the_rest() -> None:
    failures: list[BaseException] = []
    keeper = TaskKeeper("test", on_failure=failures.append)

    async def fail() -> None:
        raise ValueError("boom")

    failing = keeper.keep(asyncio.create_task(fail()))
    sleeping = keeper.keep(asyncio.create_task(asyncio.sleep(10)))
    assert failing in keeper and len(keeper) == 2
    await asyncio.wait([failing])
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert [str(e) for e in failures] == ["boom"] and failing not in keeper
    await keeper.aclose()
    assert sleeping.cancelled() and len(keeper) == 0
    assert failures == failures[:1]  # a cancellation is no failure
