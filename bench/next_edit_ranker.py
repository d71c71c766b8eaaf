"""Next-edit location without the server: candidate recall and the ranker, fitted on dev only.

    python bench/next_edit_ranker.py [--cv] [--fit] [--per-repo 200]

For each history case (bench/next_edit_cases.py) the candidate generator runs
on edit 1 (as the server runs it: propagation's places included) and each
candidate line is labelled right when it is within 3 lines of edit 2's first
changed line. Prints, per split: generator recall (any candidate right; the
nearest-5; the ranker's top 1 and top 5), and the ranker's top-1 location
rate and suggestion rate on knowable and unknowable cases at its threshold.

The ranker is 100 gradient-boosted trees of depth 2, 20 candidates or more a
leaf (scikit-learn, here only: the server walks the exported trees) over each
candidate's features, fitted on the lines at least MIN_GAP from edit 1; the gate
a logistic model of the best candidate's features and its lead, with the
threshold that keeps dev's unknowable suggestion rate at or under 25%.
`--cv`: 6-fold cross-validation on dev, folds by commit, repeated over 8
shuffles of the commits (dev alone: the honest figure for comparing rankers).
`--fit` fits on all of dev and writes server/next_edit/ranker_model.py.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from next_edit_cases import MIN_GAP, Case, build  # noqa: E402

from lowentropy.server.next_edit import candidates, ranker  # noqa: E402
from lowentropy.server.next_edit.propagate import plan  # noqa: E402
from lowentropy.server.next_edit.ranker_model import Model, Tree  # noqa: E402

NEAR = 3
MODEL_FILE = Path(__file__).resolve().parent.parent / "server/next_edit/ranker_model.py"
TREES, DEPTH, RATE, LEAF = 100, 2, 0.05, 20
UNKNOWABLE_SHOWN = 0.25  # the gate's threshold keeps dev's unknowable cases shown at this rate

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
    """Logistic weights (L2, classes balanced) for the gate."""
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


def fit_trees(x: np.ndarray, y: np.ndarray) -> Model:
    """Boosted trees on (candidate features, right or not), exported as plain tuples."""
    from sklearn.ensemble import GradientBoostingClassifier  # bench only

    m = GradientBoostingClassifier(
        max_depth=DEPTH,
        n_estimators=TREES,
        learning_rate=RATE,
        subsample=0.8,
        min_samples_leaf=LEAF,
        random_state=0,
    ).fit(x, y)
    trees: list[Tree] = []
    for est in m.estimators_[:, 0]:
        t = est.tree_
        trees.append((
            tuple(int(f) for f in t.feature), tuple(round(float(v), 6) for v in t.threshold),
            tuple(int(v) for v in t.children_left), tuple(int(v) for v in t.children_right),
            tuple(round(float(v), 6) for v in t.value[:, 0, 0]),
        ))  # fmt: skip
    base = float(m._raw_predict_init(x[:1])[0, 0])
    model: Model = (round(base, 6), RATE, tuple(trees))
    ours = np.array([ranker.score(list(r), model) for r in x[:500]])
    assert np.allclose(ours, m.decision_function(x[:500]), atol=1e-3), "export differs"
    return model


def fit_all(
    dev: list[Case], gen: dict[int, list[candidates.Candidate]]
) -> tuple[Model, dict[str, float], float]:
    """Ranker trees, gate weights and the gate's threshold, from `dev` alone."""
    xs, ys = [], []
    for c in dev:
        cands = gen[id(c)]
        y = [float(right(x, c)) for x in cands]
        if not c.unknowable and sum(y) > 0:  # cases with a right candidate teach the order
            # Lines nearer than MIN_GAP to edit 1 are never edit 2 here by construction
            # (the miner keeps hunks apart): left out, not taught to be wrong.
            far = [i for i, x in enumerate(cands) if abs(x.distance) >= MIN_GAP]
            vs = ranker.vectors(cands)
            xs += [vs[i] for i in far]
            ys += [y[i] for i in far]
    model = fit_trees(np.array(xs), np.array(ys))
    rows = []  # the gate: is the top candidate right?
    for c in dev:
        ranked = ranker.rank(gen[id(c)], model)
        if ranked:
            rows.append(
                (ranker.gate_features(ranked), int(not c.unknowable and right(ranked[0][1], c)))
            )
    g = fit(rows)
    gate = {name: round(float(v), 3) for name, v in zip(ranker.GATE_FEATURES, g, strict=True)}
    dev_unk = [c for c in dev if c.unknowable]
    scores = sorted(
        (
            ranker.logistic(ranker.gate_features(ranked), gate)
            for c in dev_unk
            if (ranked := ranker.rank(gen[id(c)], model))
        ),
        reverse=True,
    )
    k = int(len(dev_unk) * UNKNOWABLE_SHOWN)  # at most this many unknowable cases shown
    threshold = round(float(scores[k]) + 1e-3, 3) if len(scores) > k else 0.0
    return model, gate, threshold


def evaluate(
    cases: list[Case], gen: dict[int, list[candidates.Candidate]], model: Model,
    gate: dict[str, float], threshold: float,
) -> dict[str, float]:  # fmt: skip
    know = [c for c in cases if not c.unknowable]
    unk = [c for c in cases if c.unknowable]
    any_hit = near5 = top1 = top5 = loc = prop_first = prop_cases = hybrid = 0
    for c in know:
        cands = gen[id(c)]
        ranked = [x for _, x, _ in ranker.rank(cands, model)]
        any_hit += any(right(x, c) for x in cands)
        near5 += any(right(x, c) for x in cands[:5])
        top5 += any(right(x, c) for x in ranked[:5])
        top1 += bool(ranked) and right(ranked[0], c)
        b = ranker.best(cands, model, gate, threshold)
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
    shown = {id(c): ranker.best(gen[id(c)], model, gate, threshold) is not None for c in unk}
    shown_unk = sum(shown.values())
    hybrid_unk = sum(shown[id(c)] or bool(PROPAGATED[id(c)]) for c in unk)
    shown_know = sum(ranker.best(gen[id(c)], model, gate, threshold) is not None for c in know)
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


def cross_validate(dev: list[Case], gen: dict[int, list[candidates.Candidate]], folds: int = 6,
                   shuffles: int = 8) -> None:  # fmt: skip
    """Folds by commit (one commit's cases never on both sides), each fold fitted on the
    others; figures pooled over the folds, then averaged over the shuffles."""
    commits = sorted({c.commit for c in dev})
    rows = []
    for seed in range(shuffles):
        order = commits[:]
        random.Random(seed).shuffle(order)
        fold_of = {commit: i % folds for i, commit in enumerate(order)}
        know = unk = loc = top1 = shown = 0
        for k in range(folds):
            train = [c for c in dev if fold_of[c.commit] != k]
            test = [c for c in dev if fold_of[c.commit] == k]
            r = evaluate(test, gen, *fit_all(train, gen))
            know += r["knowable"]
            unk += r["unknowable"]
            loc += round(r["location"] * r["knowable"])
            top1 += round(r["top1"] * r["knowable"])
            shown += round(r["shown_unknowable"] * r["unknowable"])
        rows.append((loc / know, top1 / know, shown / unk))
        print(f"cv shuffle {seed}: location {loc / know:.3f} top1 {top1 / know:.3f} "
              f"shown_unknowable {shown / unk:.3f}", flush=True)  # fmt: skip
    m = np.array(rows).mean(0)
    print(f"cv {folds}-fold x {shuffles}: location {m[0]:.3f} (min {min(r[0] for r in rows):.3f}, "
          f"max {max(r[0] for r in rows):.3f}) top1 {m[1]:.3f} shown_unknowable {m[2]:.3f}")  # fmt: skip


def write_model(model: Model, gate: dict[str, float], threshold: float) -> None:
    """server/next_edit/ranker_model.py: the fitted numbers as Python literals (data)."""
    base, rate, trees = model
    gate_lines = "".join(f'    "{k}": {v!r},\n' for k, v in gate.items())
    tree_lines = "".join(f"    {t!r},\n" for t in trees)
    MODEL_FILE.write_text(
        '"""The next-edit ranker\'s trees and gate: data written by `python bench/next_edit_ranker.py\n'
        '--fit` from the dev history cases (never the held-aside part). Do not edit by hand."""\n\n'
        "Tree = tuple[\n    tuple[int, ...], tuple[float, ...], tuple[int, ...], tuple[int, ...], "
        "tuple[float, ...]\n]  # feature, threshold, left, right, value per node (-1: a leaf)\n"
        "Model = tuple[float, float, tuple[Tree, ...]]  # base log-odds, learning rate, trees\n\n"
        f"GATE: dict[str, float] = {{\n{gate_lines}}}\nMIN_SCORE = {threshold!r}\n"
        f"# fmt: off\nMODEL: Model = ({base!r}, {rate!r}, (\n{tree_lines}))\n# fmt: on\n",
        encoding="utf-8",
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", action="store_true", help="fit on dev, write ranker_model.py")
    ap.add_argument("--cv", action="store_true", help="6-fold cross-validation on dev")
    ap.add_argument("--dev-only", action="store_true", help="print no held-aside figures")
    ap.add_argument("--per-repo", type=int, default=200)
    args = ap.parse_args()
    cases = build(args.per_repo)
    gen: dict[int, list[candidates.Candidate]] = {}
    ms: list[float] = []
    for c in cases:
        gen[id(c)], t = generate(c)
        ms.append(t)
    dev = [c for c in cases if c.split == "dev"]
    if args.cv:
        cross_validate(dev, gen)
    model, gate, threshold = ranker.ranker_model.MODEL, ranker.ranker_model.GATE, ranker.MIN_SCORE
    if args.fit:
        model, gate, threshold = fit_all(dev, gen)
        write_model(model, gate, threshold)
        print(f"wrote {MODEL_FILE} (threshold {threshold})")
    print(f"generator+propagation time per case: p50 {np.percentile(ms, 50):.1f} ms, "
          f"p95 {np.percentile(ms, 95):.1f} ms")  # fmt: skip
    for split in ("dev",) if args.dev_only else ("dev", "heldout"):
        part = [c for c in cases if c.split == split]
        r = evaluate(part, gen, model, gate, threshold)
        print(f"{split}: " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in r.items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
