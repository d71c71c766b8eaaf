"""Apply exact-match rates on the dev sets: deterministic, model, combined.

    python bench/apply_exact.py [--verbose] [--sets devset,chat,chat-held-out]

Sets: `devset` (`tests/apply_devset.py`, clean sketches), `chat` and `chat-held-out`
(`tests/apply_chat_devset.py`: markdown answers, re-indented markers, abbreviated lines,
whitespace drift; the held-out part is never tuned on). Each set prints exact, refused
(no verified result: deferred to the model or refused) and wrong (a verified result that
differs from the expected file, the one failure that must never happen).

A case counts as exact when the final text equals the expected text byte for byte (for
the "matches nowhere" cases: when nothing is produced). The deterministic path is
`plan_apply`; where it defers, `model_rewrite(region)` (sync or async, returning the
region's new text) rewrites each region, which `splice` puts back and `verify` checks.
Without a model the deferred cases count as misses for "combined", and the figures say
how many were deferred. The issue's bar: combined >= 98%.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from apply_chat_devset import big_cases, chat_cases  # noqa: E402
from apply_devset import Case, cases  # noqa: E402
from harness import verdict  # noqa: E402

from lowentropy.server.apply import (  # noqa: E402
    ApplyPlan,
    Region,
    plan_apply,
    splice,
    verify,
    verify_rewrite,
)

ModelRewrite = Callable[[Region], "str | Awaitable[str]"]
BAR = 0.98
SETS: dict[str, Callable[[], list[Case]]] = {
    "devset": cases,
    "chat": lambda: chat_cases("dev"),
    "chat-held-out": lambda: chat_cases("held_out"),
    "chat-big": lambda: big_cases("dev"),
    "chat-held-out-big": lambda: big_cases("held_out"),
}


def model_verified(
    case: Case, plan: ApplyPlan, rewrites: list[tuple[Region, str]], result: str
) -> bool:
    """The server's checks of a model's result: each region's rewrite, then the whole file."""
    if not all(verify_rewrite(r.original, r.update, text).ok for r, text in rewrites):
        return False
    sketch = plan.sketch or case.sketch
    return verify(case.original, result, sketch, language=case.language, regions=plan.regions).ok


async def _rewrite(model_rewrite: ModelRewrite, region: Region) -> str:
    out = model_rewrite(region)
    if inspect.isawaitable(out):
        return str(await out)
    return str(out)


async def _run(cases_: Sequence[Case], model_rewrite: ModelRewrite | None) -> dict[str, Any]:
    det = model = deferred = model_exact = wrong_det = wrong_model = 0
    misses: list[str] = []
    seconds: list[float] = []
    for case in cases_:
        start = time.perf_counter()
        plan = plan_apply(
            case.original,
            case.sketch,
            language=case.language,
            selection=case.selection,
            path=case.path,
        )
        seconds.append(time.perf_counter() - start)
        if plan.result is not None:
            if plan.result == case.expected:
                det += 1
            else:
                wrong_det += 1
                misses.append(f"{case.name}: deterministic result differs")
            continue
        if case.expected is None:
            det += 1  # correctly refused
            continue
        deferred += 1
        if model_rewrite is None or not plan.regions:
            misses.append(f"{case.name}: deferred ({plan.reason})")
            continue
        model += 1
        rewrites = [(r, await _rewrite(model_rewrite, r)) for r in plan.regions]
        result = splice(case.original, rewrites)
        ok = model_verified(case, plan, rewrites, result)
        if ok and result == case.expected:
            model_exact += 1
        else:
            wrong_model += ok
            misses.append(f"{case.name}: model result {'differs' if ok else 'did not verify'}")
    total = len(cases_)
    return {
        "cases": total,
        "deterministic_exact": det,
        "deterministic_wrong": wrong_det,
        "model_wrong": wrong_model,
        "deferred": deferred,
        "model_tried": model,
        "model_exact": model_exact,
        "deterministic_rate": det / total if total else 0.0,
        "model_rate": model_exact / model if model else float("nan"),
        "combined_rate": (det + model_exact) / total if total else 0.0,
        "misses": misses,
        "plan_seconds": seconds,
    }


def exact_match_rates(
    cases_: Sequence[Case], model_rewrite: ModelRewrite | None = None
) -> dict[str, Any]:
    """Exact-match figures over `cases_`; `model_rewrite` handles the regions the
    deterministic path defers (sync or async callable: Region -> new region text)."""
    return asyncio.run(_run(cases_, model_rewrite))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="list every miss")
    parser.add_argument(
        "--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS)
    )
    args = parser.parse_args()
    ok = True
    for name in args.sets.split(","):
        figures = exact_match_rates(SETS[name]())
        seconds = sorted(figures["plan_seconds"])
        total = figures["cases"]
        refused = figures["deferred"]
        print(
            f"{name}: {total} cases, {figures['deterministic_exact']} exact "
            f"({figures['deterministic_rate']:.1%}), {refused} refused or deferred, "
            f"{figures['deterministic_wrong']} wrong; plan_apply p50 "
            f"{seconds[len(seconds) // 2] * 1000:.1f} ms, max {seconds[-1] * 1000:.1f} ms"
        )
        for miss in figures["misses"] if args.verbose else figures["misses"][:10]:
            print("  ", miss)
        ok = verdict(f"{name}: no wrong edit", figures["deterministic_wrong"] == 0, "") and ok
        if name == "devset":
            ok = (
                verdict(
                    "devset: deterministic exact match (no model)",
                    figures["combined_rate"] >= BAR,
                    f"{figures['deterministic_rate']:.1%} (bar for combined: {BAR:.0%})",
                )
                and ok
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
