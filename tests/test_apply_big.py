"""Apply on files of 2,000+ lines: the model sees only bounded regions; no context error reaches
the user; placement does as well as on the file alone.

Data: `apply_chat_devset.big_cases` (chat-style sketches of standard-library functions, each
file at least 2,000 lines, real code appended) and the standard library's tarfile.py.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path
from typing import Any

import pytest_asyncio
from apply_chat_devset import big_cases, chat_cases
from conftest import QUIET_TAB, Docs, lsp_client

from lowentropy.server.apply import plan_apply
from lowentropy.server.apply.plan import MODEL_REGION_CHARS

STDLIB = Path(sysconfig.get_paths()["stdlib"])
CASES = 48  # a slice of the dev part: both sets plan in ~20 s


def test_a_big_file_places_as_the_small_one_and_bounds_every_model_region() -> None:
    small, big = chat_cases("dev")[:CASES], big_cases("dev")[:CASES]
    assert all(c.original.count("\n") >= 2000 for c in big)
    deferred = 0
    for a, b in zip(small, big, strict=True):
        plan_a = plan_apply(a.original, a.sketch, language="python", path=a.path)
        plan_b = plan_apply(b.original, b.sketch, language="python", path=b.path)
        assert (plan_a.result == a.expected) == (plan_b.result == b.expected), b.name
        assert plan_b.result in (None, b.expected), b.name
        for region in plan_b.regions if plan_b.result is None else ():
            deferred += 1
            assert 2 * len(region.original) + len(region.update) <= 2.5 * MODEL_REGION_CHARS
    assert deferred  # some go to the model, and none of them with the whole file


def test_new_lines_after_a_header_go_to_that_definition_not_to_the_end_of_the_file() -> None:
    """A block that fits nowhere after a placed header was given everything from the header
    to the end of the file (pstats: 391 lines; in a 3,000-line file, 121,000 characters)."""
    source = (STDLIB / "tarfile.py").read_text(encoding="utf-8")
    sketch = (
        "    # ...\n    def getnames(self):\n# ...\n\n"
        "        names = [m.name for m in self.getmembers() if m.name]\n        # ...\n"
    )
    plan = plan_apply(source, sketch, language="python")
    assert plan.result is None and len(plan.regions) >= 1
    header = source.split("\n").index("    def getnames(self):")
    for region in plan.regions:
        assert region.start_line <= header + 1 and region.end_line - region.start_line < 40


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def small_context(tmp_path_factory: Any) -> Any:
    """The real server with an apply model whose context holds ~100 lines: fault injection
    for a context error (the planner bounds regions for 4,096 tokens)."""
    root = tmp_path_factory.mktemp("apply_big")
    options = {**QUIET_TAB, "apply": {"nCtx": 320}}
    async with lsp_client(root, options) as client:
        yield client, Docs(client, root)


async def test_a_region_the_context_cannot_hold_is_refused_with_a_reason(
    small_context: Any,
) -> None:
    client, docs = small_context
    source = (STDLIB / "tarfile.py").read_text(encoding="utf-8")
    uri = docs.open(source, "tarfile.py")
    sketch = (  # gettarinfo: ~1,000 tokens, more than this context holds
        "    def gettarinfo(self, name=None, arcname=None, fileobj=None):\n# ...\n\n"
        "        self._check_names(name, arcname)\n        # ...\n"
    )
    params = {"textDocument": {"uri": uri, "version": 1}, "sketch": sketch, "wait": True}
    result = await client.protocol.send_request_async("lowentropy/apply", params)
    result = result._asdict() if hasattr(result, "_asdict") else result
    assert not result["verified"]
    assert "do not fit the apply model's context" in result["reason"], result["reason"]
    assert "select the code to change" in result["reason"]
