"""DriftGuard never stops a right rewrite: every exact deterministic merge's regions, streamed.

    python bench/apply_guard.py [--seeds 15,16]

`DriftGuard` (server/apply/guard.py) cuts a model's rewrite at the first line that dooms
it. A false stop turns a rewrite that would have been exact into a refusal. The right
rewrite of a region is known wherever the deterministic path was exact: its merged text.
Each one is fed to a guard in 7-character pieces, as a stream arrives; any stop is
listed. Sets: the dev sets (`devset`, `chat`) and the chat dev part regenerated with other
seeds (dev files only, never the held-out ones).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import apply_chat_devset  # noqa: E402
from apply_devset import Case, cases  # noqa: E402
from harness import verdict  # noqa: E402

from lowentropy.server.apply import DriftGuard, plan_apply  # noqa: E402


def false_stops(cases_: list[Case]) -> tuple[int, list[str]]:
    regions = 0
    stops = []
    for case in cases_:
        plan = plan_apply(
            case.original,
            case.sketch,
            language=case.language,
            selection=case.selection,
            path=case.path,
        )
        if plan.result is None or plan.result != case.expected:
            continue
        for region in plan.regions:
            regions += 1
            guard = DriftGuard(region.original, region.update)
            text = region.merged or ""
            if any(guard.feed(text[k : k + 7]) for k in range(0, len(text), 7)):
                stops.append(f"{case.name}: {guard.reason}")
    return regions, stops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="15,16", help="extra seeds of the chat dev part")
    args = parser.parse_args()
    sets = {"devset": cases(), "chat": apply_chat_devset.chat_cases("dev")}
    for seed in filter(None, args.seeds.split(",")):
        apply_chat_devset.SEED = int(seed)
        sets[f"chat seed {seed}"] = apply_chat_devset.chat_cases("dev")
    total, every = 0, []
    for name, cases_ in sets.items():
        regions, stops = false_stops(cases_)
        total += regions
        every += stops
        print(f"{name}: {regions} regions of exact merges streamed, {len(stops)} stopped")
        for stop in stops:
            print("  ", stop[:220])
    return 0 if verdict("DriftGuard: no false stop", not every, f"{len(every)} of {total}") else 1


if __name__ == "__main__":
    sys.exit(main())
