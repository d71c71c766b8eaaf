"""A miss comes back fast: the apply model path runs within the request's budget unless the
client asks to wait (server/apply/budget.py, rewrite.py). Through the real server (the
packaged SmolLM2 for mechanics); the budget is 1 ms here, so what happens does not depend
on this machine's speed."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio
from conftest import QUIET_TAB, Docs, lsp_client

from lowentropy.server.apply.__main__ import _edits, _plain
from lowentropy.server.apply.budget import ModelSpeed
from lowentropy.server.settings import SettingsError, resolve

SOURCE = (
    "class Store:\n    def get(self, key, default=None):\n"
    "        return self.data.get(key, default)\n\n    def size(self):\n        return 1\n"
)
# Its body at the header's depth: the merge does not compile, so the model must rewrite.
SKETCH = "def get(self, key, default=None):\nreturn default\n"


def test_an_estimate_needs_a_measured_prefill_and_grows_with_the_region() -> None:
    speed = ModelSpeed()
    assert speed.estimate(1000, 500) is None
    speed.record(prompt_tokens=400, prefill_s=2.0, tokens=8, decode_s=1.0)  # too few tokens
    assert speed.prefill_tps == 200 and speed.decode_tps is None
    prefill_only = speed.estimate(1000, 500)
    assert prefill_only is not None and prefill_only == pytest.approx(1500 / 3.5 / 200)
    speed.record(prompt_tokens=400, prefill_s=2.0, tokens=100, decode_s=5.0)
    small, large = speed.estimate(350, 350), speed.estimate(3500, 3500)
    assert small is not None and large is not None and large == pytest.approx(10 * small)
    speed.record_unfinished_prefill(prompt_tokens=100, seconds=10.0)  # slower than measured
    assert speed.prefill_tps == 10


def test_the_budget_must_be_positive() -> None:
    assert resolve({"applyBudgetMs": 800}).apply_budget_ms == 800
    assert resolve({}).apply_budget_ms == 1500
    with pytest.raises(SettingsError, match="applyBudgetMs"):
        resolve({"applyBudgetMs": 0})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hurried(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("apply_budget")
    async with lsp_client(root, {**QUIET_TAB, "applyBudgetMs": 1}) as client:
        yield client, Docs(client, root)


async def _apply(client: Any, uri: str, wait: bool) -> Any:
    params = {"textDocument": {"uri": uri, "version": 1}, "sketch": SKETCH, "wait": wait}
    return _plain(await client.protocol.send_request_async("lowentropy/apply", params))


async def test_a_rewrite_past_the_budget_is_refused_unless_the_client_waits(hurried: Any) -> None:
    client, docs = hurried
    uri = docs.open(SOURCE, "store.py")
    # The speed is not known yet: the model starts and is stopped at the deadline.
    stopped = await _apply(client, uri, wait=False)
    assert not stopped["verified"] and stopped["stats"]["path"] == "model"
    assert re.search(
        r"did not finish rewriting lines \d+-\d+ within this request's budget", stopped["reason"]
    )
    assert '"wait": true' in stopped["reason"] and _edits(stopped) == []
    # Asked to wait, the model writes the region out (verified or not) and its speed is known.
    waited = await _apply(client, uri, wait=True)
    assert waited["stats"]["tokens"] > 0
    assert "budget" not in (waited["reason"] or "")
    # Known to take longer than the budget: refused before the model runs at all.
    refused = await _apply(client, uri, wait=False)
    assert not refused["verified"] and refused["stats"]["tokens"] == 0
    assert "needs longer than this request's budget to rewrite lines" in refused["reason"]
    assert "tokens/s" in refused["reason"] and "placing the sketch:" in refused["reason"]
