"""Speculative drafting from a prediction (apply: the original code), for the embedded engine.

The engine verifies a draft in one forward pass (see `batch_decoder`); this module
decides what to draft and when drafting pays.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Speculative edits. On CPU a verify batch costs far more than one token when
# short (measured on 2 cores: 9 tokens ~4x one decode step, 65 tokens ~25x),
# so drafting waits for a run of agreement and drafts at least SPEC_MIN_DRAFT.
SPEC_MIN_STREAK = 4  # tokens in a row that matched the prediction before drafting
SPEC_MAX_STREAK = 32  # what a run of failed drafts can raise that wait to
SPEC_MIN_DRAFT = 8
SPEC_MAX_DRAFT = 64
SPEC_NGRAMS = (4, 3, 2)  # n-gram sizes tried, longest first, when re-aligning


class Drafter:
    """Draft tokens from a prediction, following where the output has got to in it.

    While the output agrees with the prediction the draft continues from there;
    after a divergence (an edit, or the model drifting) the most recent output
    tokens are looked up as an n-gram in the prediction, nearest at or after the
    last agreed position, so the draft re-aligns once the output copies again.
    `streak` counts the latest output tokens in a row that the prediction had
    foretold: the evidence that drafting would now pay. `threshold` is how much
    evidence drafting waits for: SPEC_MIN_STREAK, doubled after each draft that
    lost more than half its tokens (the model is not copying here: a wasted verify
    batch costs several single steps), back to the minimum once a draft is
    accepted whole.
    """

    def __init__(self, prediction: Sequence[int]) -> None:
        self._pred = list(prediction)
        self._ends: dict[tuple[int, ...], list[int]] = {}  # n-gram -> positions after it
        for n in SPEC_NGRAMS:
            for end in range(n, len(self._pred) + 1):
                self._ends.setdefault(tuple(self._pred[end - n : end]), []).append(end)
        self._recent: list[int] = []
        self._next: int | None = 0  # the output starts where the prediction starts
        self._hint = 0
        self._diverged = False
        self.streak = 0
        self.threshold = SPEC_MIN_STREAK

    @property
    def evidence(self) -> int:
        """The streak, plus SPEC_MIN_STREAK while the output has followed the prediction
        from its start (a rewrite begins by copying: that alone is a streak's worth)."""
        return self.streak + (0 if self._diverged else SPEC_MIN_STREAK)

    def verified(self, drafted: int, accepted: int) -> None:
        """Record how a draft fared, to adapt `threshold`."""
        if drafted <= 0:
            return
        if accepted == drafted:
            self.threshold = SPEC_MIN_STREAK
        elif 2 * accepted < drafted:
            self.threshold = min(2 * self.threshold, SPEC_MAX_STREAK)

    def push(self, token: int) -> None:
        """Record one output token."""
        self._recent = [*self._recent[1 - max(SPEC_NGRAMS) :], token]
        nxt = self._next
        if nxt is not None and nxt < len(self._pred) and self._pred[nxt] == token:
            self._next = self._hint = nxt + 1
            self.streak += 1
        else:
            self.streak = 0
            self._diverged = True
            self._next = self._realign()

    def propose(self, count: int) -> list[int]:
        """Up to `count` tokens the prediction says come next (none when not aligned)."""
        if self._next is None or count <= 0:
            return []
        return self._pred[self._next : self._next + count]

    def _realign(self) -> int | None:
        for n in SPEC_NGRAMS:
            if len(self._recent) < n:
                continue
            ends = self._ends.get(tuple(self._recent[-n:]))
            if ends:
                i = bisect_left(ends, self._hint)
                return ends[i] if i < len(ends) else ends[-1]
        return None


def draft_length(streak: int, room: int, threshold: int = SPEC_MIN_STREAK) -> int:
    """Tokens to draft after `streak` agreeing tokens: none below `threshold`, then
    about as many as have agreed (the longer the model has copied, the likelier it
    keeps copying), within [SPEC_MIN_DRAFT, SPEC_MAX_DRAFT] and the room left."""
    if streak < threshold:
        return 0
    want = min(SPEC_MAX_DRAFT, max(SPEC_MIN_DRAFT, streak), room)
    return want if want >= SPEC_MIN_DRAFT else 0
