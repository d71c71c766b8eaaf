"""Rank next-edit candidate lines, and say when the best is too weak to show.

A logistic score over a few features of each candidate's evidence: which
kinds found it, how far it is from the edit, whether it is in the same
definition, how rare the shared identifier is. The weights were fitted on
the dev part of the history cases (`bench/next_edit_ranker.py --fit`, which
prints them) and are data here; the held-aside part was never used to fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .candidates import KINDS, Candidate

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
)

# Fitted by `python bench/next_edit_ranker.py --fit` on the dev cases (see its output).
WEIGHTS: dict[str, float] = {
    "bias": -0.0,
    "kind_removed": 1.046,
    "kind_added": -0.591,
    "kind_context": -0.085,
    "kind_shape": -0.765,
    "kind_problem": 0.898,
    "kind_import": -0.158,
    "kind_propagation": -0.077,
    "kind_determined": -0.077,
    "log_distance": -0.174,
    "below": -0.2,
    "same_scope": 0.111,
    "rarity": 0.76,
    "rarity_removed": 1.133,
    "rarity_added": 0.846,
    "rarity_context": 1.141,
    "evidence": 1.04,
    "kinds": 0.191,
    "nearest_rank": -0.361,
    "definition": 0.113,
    "prose": -0.233,
}
# The gate: the probability that the best-ranked candidate is right (a logistic model
# of its features, fitted on dev cases, unknowable ones included). Below MIN_SCORE
# nothing is shown (silence): chosen on dev so that few unknowable cases get a suggestion.
GATE: dict[str, float] = {
    "bias": -1.783,
    "kind_removed": 1.047,
    "kind_added": -0.341,
    "kind_context": -0.805,
    "kind_shape": -0.304,
    "kind_problem": 0.677,
    "kind_import": 0.02,
    "kind_propagation": -0.063,
    "kind_determined": -0.063,
    "log_distance": -0.25,
    "below": 0.325,
    "same_scope": 0.003,
    "rarity": -0.026,
    "rarity_removed": 0.6,
    "rarity_added": 0.248,
    "rarity_context": 0.63,
    "evidence": 0.67,
    "kinds": 0.167,
    "nearest_rank": 0.565,
    "definition": 0.238,
    "prose": -0.879,
}
MIN_SCORE = 0.373


def features(c: Candidate, rank: int) -> list[float]:
    """The feature vector of `c`, the `rank`-th nearest candidate (0-based)."""
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
    ]


def score(x: Sequence[float], weights: dict[str, float] | None = None) -> float:
    w = WEIGHTS if weights is None else weights
    z = sum(w.get(name, 0.0) * v for name, v in zip(FEATURES, x, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def rank(
    cands: Sequence[Candidate], weights: dict[str, float] | None = None
) -> list[tuple[float, Candidate, list[float]]]:
    """Candidates (given nearest first) with their scores and features, best first."""
    scored = []
    for i, c in enumerate(cands):
        x = features(c, i)
        scored.append((score(x, weights), c, x))
    return sorted(scored, key=lambda sc: (-sc[0], abs(sc[1].distance)))


def best(
    cands: Sequence[Candidate],
    weights: dict[str, float] | None = None,
    gate: dict[str, float] | None = None,
    min_score: float = MIN_SCORE,
) -> tuple[float, Candidate] | None:
    """The best candidate and the gate's confidence in it, or None (silence)."""
    ranked = rank(cands, weights)  # ~0.1 ms per candidate: ranking twice is cheap
    if not ranked:
        return None
    confidence = score(ranked[0][2], GATE if gate is None else gate)
    if confidence < min_score:
        return None
    return confidence, ranked[0][1]
