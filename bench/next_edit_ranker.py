"""Next-edit location without the server: candidate recall and the ranker, fitted on dev only.

    python bench/next_edit_ranker.py [--fit] [--per-repo 200]

For each history case (bench/next_edit_cases.py) the candidate generator runs
on edit 1 (as the server runs it: propagation's places included) and each
candidate line is labelled right when it is within 3 lines of edit 2's first
changed line. Prints, per split: generator recall (any candidate right; the
nearest-5; the ranker's top 1 and top 5), and the ranker's top-1 location
rate and suggestion rate on knowable and unknowable cases at its threshold.
`--fit` fits the logistic weights on the dev cases (numpy, L2) and prints
them as the `WEIGHTS` literal for server/next_edit/ranker.py, with the
threshold that keeps dev's unknowable suggestion rate at or under 25%.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from next_edit_cases import Case, build  # noqa: E402

from lowentropy.server.next_edit import candidates, ranker  # noqa: E402
from lowentropy.server.next_edit.propagate import plan  # noqa: E402

NEAR = 3


PROPAGATED: dict[int, list[int]] = {}  # id(case) -> lines of propagation's determined edits


def generate(case: Case) -> tuple[list[candidates.Candidate], float]:
    t0 = time.perf_counter()
    found = plan("file:///x.py", case.text, case.after, "python")
    offsets = [c.start for c in found.local]
    PROPAGATED[id(case)] = [
        case.after.count("\n", 0, c.start) for c in found.local if c.new is not None
    ]
    determined = [c.start for c in found.local if c.new is not None]
    cands = candidates.find(case.text, case.after, propagated=offsets, determined=determined)
    return cands, (time.perf_counter() - t0) * 1000


def right(c: candidates.Candidate, case: Case) -> bool:
    return abs(c.line - case.expected_line) <= NEAR


def fit(rows: list[tuple[list[float], int]], l2: float = 1.0, steps: int = 3000) -> np.ndarray:
    x = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=float)
    w = np.zeros(x.shape[1])
    pos = max(1.0, y.sum())
    weight = np.where(y > 0, (len(y) - pos) / pos, 1.0)  # balance the classes
    weight = weight / weight.mean()
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ ((p - y) * weight) / len(y) + l2 * w / len(y)
        w -= 0.5 * grad
    return w


def fit_listwise(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = 1.0,
                 steps: int = 1500) -> np.ndarray:  # fmt: skip
    """Weights that put a right candidate first: softmax over each case's candidates."""
    w = np.zeros(groups[0][0].shape[1])
    for _ in range(steps):
        grad = np.zeros_like(w)
        for x, y in groups:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            grad += x.T @ (p - y / y.sum())
        w -= 0.5 * (grad / len(groups) + l2 * w / len(groups))
    return w


def fit_all(
    dev: list[Case], gen: dict[int, list[candidates.Candidate]]
) -> tuple[dict[str, float], dict[str, float], float]:
    """Ranker weights, gate weights and the gate's threshold, from `dev` alone."""
    groups = []
    for c in dev:
        cands = gen[id(c)]
        y = np.array([float(right(x, c)) for x in cands])
        if not c.unknowable and y.sum() > 0:
            groups.append((np.array([ranker.features(x, i) for i, x in enumerate(cands)]), y))
    w = fit_listwise(groups)
    weights = {name: round(float(v), 3) for name, v in zip(ranker.FEATURES, w, strict=True)}
    rows = []  # the gate: is the top candidate right?
    for c in dev:
        ranked = ranker.rank(gen[id(c)], weights)
        if ranked:
            rows.append((ranked[0][2], int(not c.unknowable and right(ranked[0][1], c))))
    g = fit(rows)
    gate = {name: round(float(v), 3) for name, v in zip(ranker.FEATURES, g, strict=True)}
    dev_unk = [c for c in dev if c.unknowable]
    scores = sorted(
        (
            ranker.score(ranked[0][2], gate)
            for c in dev_unk
            if (ranked := ranker.rank(gen[id(c)], weights))
        ),
        reverse=True,
    )
    k = int(len(dev_unk) * 0.25)  # at most this many unknowable cases shown
    threshold = round(float(scores[k]) + 1e-3, 3) if len(scores) > k else 0.0
    return weights, gate, threshold


def evaluate(
    cases: list[Case], gen: dict[int, list[candidates.Candidate]], weights: dict[str, float],
    gate: dict[str, float], threshold: float,
) -> dict[str, float]:  # fmt: skip
    know = [c for c in cases if not c.unknowable]
    unk = [c for c in cases if c.unknowable]
    any_hit = near5 = top1 = top5 = loc = prop_first = prop_cases = hybrid = 0
    for c in know:
        cands = gen[id(c)]
        ranked = [x for _, x, _ in ranker.rank(cands, weights)]
        any_hit += any(right(x, c) for x in cands)
        near5 += any(right(x, c) for x in cands[:5])
        top5 += any(right(x, c) for x in ranked[:5])
        top1 += bool(ranked) and right(ranked[0], c)
        b = ranker.best(cands, weights, gate, threshold)
        loc += b is not None and right(b[1], c)
        cursor = c.after.count("\n", 0, c.edit[0] + len(c.edit[2]))
        prop = PROPAGATED[id(c)]
        after_cursor = [x for x in prop if x >= cursor] or prop
        if after_cursor:
            prop_first += abs(after_cursor[0] - c.expected_line) <= NEAR
            prop_cases += 1
        else:
            prop_first += b is not None and right(b[1], c)
        if b is not None:
            hybrid += right(b[1], c)
        elif after_cursor:
            hybrid += abs(after_cursor[0] - c.expected_line) <= NEAR
    shown_unk = sum(ranker.best(gen[id(c)], weights, gate, threshold) is not None for c in unk)
    hybrid_unk = sum(
        ranker.best(gen[id(c)], weights, gate, threshold) is not None or bool(PROPAGATED[id(c)])
        for c in unk
    )
    shown_know = sum(ranker.best(gen[id(c)], weights, gate, threshold) is not None for c in know)
    n = max(1, len(know))
    return {
        "knowable": len(know), "unknowable": len(unk), "recall_any": any_hit / n,
        "recall_nearest5": near5 / n, "recall_top5": top5 / n, "top1": top1 / n,
        "location": loc / n, "shown_knowable": shown_know / n,
        "location_all": loc / max(1, len(cases)),
        "location_propagation_first": prop_first / n, "with_propagated_edit": prop_cases / n,
        "shown_unknowable": shown_unk / max(1, len(unk)),
        "location_hybrid": hybrid / n, "shown_unknowable_hybrid": hybrid_unk / max(1, len(unk)),
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--cv", action="store_true", help="2-fold cross-validation on dev")
    ap.add_argument("--per-repo", type=int, default=200)
    args = ap.parse_args()
    cases = build(args.per_repo)
    gen: dict[int, list[candidates.Candidate]] = {}
    ms: list[float] = []
    for c in cases:
        gen[id(c)], t = generate(c)
        ms.append(t)
    weights, gate = dict(ranker.WEIGHTS), dict(ranker.GATE)
    threshold = ranker.MIN_SCORE
    if args.cv:  # dev alone, 2 folds by commit: an honest figure for comparing feature sets
        dev = [c for c in cases if c.split == "dev"]
        folds = [[c for c in dev if int(c.commit[:2], 16) % 2 == k] for k in (0, 1)]
        for k in (0, 1):
            w, g, t = fit_all(folds[1 - k], gen)
            r = evaluate(folds[k], gen, w, g, t)
            print(f"cv fold {k}: location {r['location']:.3f} top1 {r['top1']:.3f} "
                  f"shown_unknowable {r['shown_unknowable']:.3f}")  # fmt: skip
    if args.fit:
        weights, gate, threshold = fit_all([c for c in cases if c.split == "dev"], gen)
        print("WEIGHTS: dict[str, float] =", weights)
        print("GATE: dict[str, float] =", gate)
        print("MIN_SCORE =", threshold)
    print(f"generator+propagation time per case: p50 {np.percentile(ms, 50):.1f} ms, "
          f"p95 {np.percentile(ms, 95):.1f} ms")  # fmt: skip
    for split in ("dev", "heldout"):
        part = [c for c in cases if c.split == split]
        r = evaluate(part, gen, weights, gate, threshold)
        print(f"{split}: " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in r.items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
