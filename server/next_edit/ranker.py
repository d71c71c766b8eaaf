"""Rank next-edit candidate lines, and say when the best is too weak to show.

The score is a small gradient-boosted ensemble (100 trees of depth 2,
`ranker_model.py`, data) over features of each candidate's evidence: which
kinds found it, how far it is from the edit, whether it is in the same
definition, how rare the shared identifier is, and where it stands among the
other candidates (the nearest on its side to carry a name, whether a nearer
candidate carries all of its evidence: edit 2 is the next place of a pattern,
not any place of it). The gate is a logistic model of the best candidate's
features and of how far its score stands above the rest. Both were fitted on
the dev part of the history cases (`bench/next_edit_ranker.py --fit`, which
prints `ranker_model.py`); the held-aside part was never used to fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from . import ranker_model
from .candidates import KINDS, Candidate
from .ranker_model import Tree

NAMED = ("removed", "added", "import", "context")  # evidence kinds that carry a name

FEATURES = (
    "bias",
    *(f"kind_{k}" for k in KINDS),
    "log_distance",
    "below",
    "same_scope",
    "rarity",
    "rarity_removed",
    "rarity_added",
    "rarity_context",
    "evidence",
    "kinds",
    "nearest_rank",
    "definition",
    "prose",
    "side_rank",
    "side_first",
    "covered",
    "uncovered",
)
GATE_FEATURES = (*FEATURES, "score", "margin", "share", "log_candidates")
MIN_SCORE = ranker_model.MIN_SCORE


def features(
    c: Candidate, rank: int, side_rank: int | None = None, covered: int = 0
) -> list[float]:
    """The feature vector of `c`, the `rank`-th nearest candidate (0-based). `side_rank`:
    its place among the candidates on its side of the edit that carry one of its names
    (0: the nearest; None: it carries none); `covered`: how many nearer candidates on its
    side carry all of its evidence (`placement`)."""
    kinds = c.kinds()

    def rarity(*of: str) -> float:
        counts = [e.count for e in c.evidence if e.count > 0 and e.name and (e.kind in of)]
        return max((1.0 / n for n in counts), default=0.0)

    head = c.text.lstrip()
    return [
        1.0,
        *(1.0 if k in kinds else 0.0 for k in KINDS),
        math.log1p(abs(c.distance)),
        1.0 if c.distance > 0 else 0.0,
        1.0 if c.same_scope else 0.0,
        rarity(*KINDS),
        rarity("removed"),
        rarity("added", "import"),
        rarity("context"),
        math.log1p(len(c.evidence)),
        float(len(kinds)),
        math.log1p(rank),
        1.0 if head.startswith(("def ", "async def ", "class ")) else 0.0,
        1.0 if head.startswith(("#", '"', "'")) else 0.0,
        math.log1p(side_rank) if side_rank is not None else 0.0,
        1.0 if side_rank == 0 else 0.0,
        math.log1p(covered),
        1.0 if covered == 0 else 0.0,
    ]


def placement(cands: Sequence[Candidate]) -> list[tuple[int | None, int]]:
    """Per candidate (given nearest first): (side rank, covered), as `features` takes them."""
    holders: dict[tuple[str, str, bool], list[int]] = {}  # (kind, name, below) -> candidates
    evidence = [frozenset((e.kind, e.name) for e in c.evidence) for c in cands]
    for i, c in enumerate(cands):
        for kind, name in evidence[i]:
            holders.setdefault((kind, name, c.distance > 0), []).append(i)
    side: list[int | None] = [None] * len(cands)
    for (kind, name, _), held in holders.items():
        if name and kind in NAMED:
            for n, i in enumerate(held):  # nearest first already
                side[i] = n if side[i] is None else min(side[i] or 0, n)
    out = []
    for i, c in enumerate(cands):
        below = c.distance > 0
        # Only candidates holding its rarest piece of evidence can hold all of it.
        rarest = min(evidence[i], key=lambda k: len(holders[(*k, below)]), default=None)
        nearer = holders[(*rarest, below)] if rarest is not None else []
        covered = sum(
            1
            for j in nearer
            if abs(cands[j].distance) < abs(c.distance) and evidence[i] <= evidence[j]
        )
        out.append((side[i], covered))
    return out


def _tree(t: Tree, x: Sequence[float]) -> float:
    feature, threshold, left, right, value = t
    node = 0
    while left[node] >= 0:
        node = left[node] if x[feature[node]] <= threshold[node] else right[node]
    return value[node]


def score(x: Sequence[float], model: ranker_model.Model | None = None) -> float:
    """The ranker's log-odds that the candidate with features `x` is the place."""
    base, rate, trees = ranker_model.MODEL if model is None else model
    return base + rate * sum(_tree(t, x) for t in trees)


@lru_cache(maxsize=4)
def _arrays(model: ranker_model.Model) -> tuple[np.ndarray, ...]:
    """All trees' nodes as (tree, node) arrays, padded to one width; a leaf is its own
    child, so every tree is walked the same number of steps (its depth)."""
    trees = model[2]
    width = max((len(t[0]) for t in trees), default=1)
    feature = np.zeros((len(trees), width), dtype=np.int64)
    threshold = np.zeros((len(trees), width))
    left = np.tile(np.arange(width), (len(trees), 1))
    right = left.copy()
    value = np.zeros((len(trees), width))
    for i, (f, t, lo, hi, v) in enumerate(trees):
        inner = np.array(lo) >= 0
        n = len(f)
        feature[i, :n] = np.where(inner, f, 0)
        threshold[i, :n] = t
        left[i, :n] = np.where(inner, lo, np.arange(n))
        right[i, :n] = np.where(inner, hi, np.arange(n))
        value[i, :n] = v
    return feature, threshold, left, right, value, np.array(_depth(trees))


def _depth(trees: Sequence[Tree]) -> int:
    def down(t: Tree, node: int) -> int:
        if t[2][node] < 0:
            return 0
        return 1 + max(down(t, t[2][node]), down(t, t[3][node]))

    return max((down(t, 0) for t in trees), default=0)


def scores(x: np.ndarray, model: ranker_model.Model | None = None) -> np.ndarray:
    """`score` of every row of `x`: all trees at once (~1 ms for a few hundred
    candidates; tree by tree in Python, tens of milliseconds)."""
    m = ranker_model.MODEL if model is None else model
    if not m[2]:
        return np.full(len(x), m[0])
    feature, threshold, left, right, value, depth = _arrays(m)
    trees = np.arange(feature.shape[0])[None, :]
    rows = np.arange(len(x))[:, None]
    node = np.zeros((len(x), feature.shape[0]), dtype=np.int64)
    for _ in range(int(depth)):
        goes_left = x[rows, feature[trees, node]] <= threshold[trees, node]
        node = np.where(goes_left, left[trees, node], right[trees, node])
    total: np.ndarray = m[0] + m[1] * value[trees, node].sum(axis=1)
    return total


def vectors(cands: Sequence[Candidate]) -> list[list[float]]:
    """The feature vectors of candidates given nearest first, in that order."""
    places = placement(cands)
    return [features(c, i, *places[i]) for i, c in enumerate(cands)]


def rank(
    cands: Sequence[Candidate], model: ranker_model.Model | None = None
) -> list[tuple[float, Candidate, list[float]]]:
    """Candidates (given nearest first) with their scores and features, best first."""
    xs = vectors(cands)
    if not xs:
        return []
    at = scores(np.array(xs), model)
    scored = [(float(s), c, x) for s, c, x in zip(at, cands, xs, strict=True)]
    return sorted(scored, key=lambda sc: (-sc[0], abs(sc[1].distance)))


def gate_features(ranked: Sequence[tuple[float, Candidate, list[float]]]) -> list[float]:
    """The gate's view of a ranking: the best candidate's features, its score, its lead
    over the second and its share of the softmax over all scores."""
    top = ranked[0][0]
    second = ranked[1][0] if len(ranked) > 1 else top - 5.0
    share = 1.0 / sum(math.exp(max(-60.0, s - top)) for s, _, _ in ranked)
    return [*ranked[0][2], top, top - second, share, math.log1p(len(ranked))]


def logistic(x: Sequence[float], weights: dict[str, float] | None = None) -> float:
    w = ranker_model.GATE if weights is None else weights
    z = sum(w.get(name, 0.0) * v for name, v in zip(GATE_FEATURES, x, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def best(
    cands: Sequence[Candidate],
    model: ranker_model.Model | None = None,
    gate: dict[str, float] | None = None,
    min_score: float = MIN_SCORE,
) -> tuple[float, Candidate] | None:
    """The best candidate and the gate's confidence in it, or None (silence)."""
    return choose(rank(cands, model), gate, min_score)


def choose(
    ranked: Sequence[tuple[float, Candidate, list[float]]],
    gate: dict[str, float] | None = None,
    min_score: float = MIN_SCORE,
) -> tuple[float, Candidate] | None:
    """`best` of a ranking made already."""
    if not ranked:
        return None
    confidence = logistic(gate_features(ranked), gate)
    if confidence < min_score:
        return None
    return confidence, ranked[0][1]
