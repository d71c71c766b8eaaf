"""Place a sketch in the original: which sketch lines are which original lines.

The sketch is cut at its markers into blocks. Each block is placed in order,
after the previous one, by chaining its distinctive lines (exact matches of the
stripped line, or a definition header by name when the signature changed) into
the best monotone chain: matched lines score, gaps that a block's contiguity
does not explain cost. Tied chains are all carried forward, for any block:
later blocks, or the lines around the tied places (how many of the block's
lines each explains), usually decide; a tie that remains is `ambiguous`. Only a
block placed by short lines alone (`}` at its depth) takes the nearest place.
Inside a chain, gaps are aligned with difflib; at a block's edges, matching
continues line by line, then a changed line replaces its neighbour when both
start the same way (same assignment target, keyword, call or definition name),
or when it is the original line with one name renamed and the rest of the
block confirms the pairing line for line (otherwise it is `uncertain`).

A block whose lines sit deeper than some earlier sketch line must fall inside
the original block of that line (a body stays in its function); when it fits
nowhere there it may go beyond, at a small cost. A definition given whole
(header, body, no marker inside; in a braced language, its own closing line)
replaces the original definition whole, so lines the sketch dropped from its
end are deleted (comments after its last statement are not its code, and stay). A
marker at the header's depth after part of a body stands for the rest of the body when
the part shown stops inside a statement; after a complete statement it may also stand
for what follows the definition, and the placement is `uncertain`. Blank lines at a block's edge next to a marker, facing code,
are reported with their deletion reading (`blank_edges`) for the caller to
settle. New code lines ending in an elision comment (`pass  # unchanged`) are
`uncertain`: placeholders as often as code.

Whatever cannot be placed for certain is reported (`ambiguous`, `unplaced`,
`uncertain`): the caller then hands those regions to the apply model.

The parts: `placement.py` (the result types, the sketch's blocks), `line_keys.py` (trivial
lines, heads, renames), `locate_tables.py` (the lookups and line comparisons),
`locate_anchors.py` (seeds and chains), `locate_edges.py` (a chain to pairs, the block's
edges), `locate_defs.py` (definitions given whole, a new last definition, placeholders);
here, the search over blocks that carries tied placements forward.
"""

from __future__ import annotations

import attrs

from .line_keys import trivial
from .locate_anchors import BEAM, MAX_TIED, TIE, Anchors
from .locate_defs import WholeDefs
from .locate_edges import Edges
from .placement import BlankEdge, Block, Pair, Placement, blocks_of
from .sketch import Sketch
from .syntax import Definition

__all__ = ["BlankEdge", "Block", "Pair", "Placement", "place"]

_ESCAPE = 0.1  # a block found outside the definition its indentation puts it in


def _first_difference(a: list[int], b: list[int]) -> int:
    common = min(len(a), len(b))
    return next((n for n in range(common) if a[n] != b[n]), common)


@attrs.define
class _State:
    score: float
    evidence: int  # sketch lines the placed blocks explain (ties between equal chains)
    lo: int
    pairs: list[Pair]
    spans: list[tuple[int, int] | None]
    unplaced: list[int]
    uncertain: list[str]
    choices: list[int]  # first line of each placed block, to tell tied states apart
    blank_edges: list[BlankEdge] = attrs.Factory(list)


class _Locator(Anchors, Edges, WholeDefs):
    """The search: each block grown from every state kept, tied states carried forward."""

    def run(self) -> Placement:
        blocks, ignored = blocks_of(self.sketch)
        states = [_State(0.0, 0, self.bounds[0], [], [], [], [], [])]
        for b, block in enumerate(blocks):
            grown: list[_State] = []
            for state in states:
                grown.extend(self._grow(state, b, block))
            grown.sort(key=lambda s: (-s.score, -s.evidence))
            top = grown[0] if grown else None
            level = sum(1 for s in grown if top is not None and self._tied(s, top))
            states = grown[: max(BEAM, min(level, MAX_TIED))]
        best = states[0]
        tied = [s for s in states if self._tied(s, best) and s.choices != best.choices]
        ambiguous: list[str] = []
        candidates: list[tuple[int, int]] = []
        if tied:
            # Name the places of the first block whose placement the tied states disagree on.
            k = min(_first_difference(s.choices, best.choices) for s in tied)
            lines = sorted({s.choices[k] + 1 for s in [best, *tied] if len(s.choices) > k})
            ambiguous.append("the sketch fits equally well at lines " + ", ".join(map(str, lines)))
            for s in [best, *tied]:
                candidates.extend(span for span in s.spans if span is not None)
        pairs = sorted(best.pairs, key=lambda p: (p.s0, p.o0))
        tails, notes = self._def_tails(pairs)
        pairs = sorted(pairs + tails, key=lambda p: (p.s0, p.s1 - p.s0, p.o0))
        spans = list(best.spans)
        for tail in tails:
            for b, span in enumerate(spans):
                if (
                    span is not None
                    and span[0] <= tail.o0
                    and blocks[b].lines[-1] < tail.s0 <= blocks[b].lines[-1] + 1
                ):
                    spans[b] = (span[0], max(span[1], tail.o1))
        unplaced = list(best.unplaced)
        self._append_new(blocks, spans, unplaced, pairs)
        notes.extend(self._placeholders(pairs))
        return Placement(
            blocks=tuple(blocks),
            spans=tuple(spans),
            pairs=tuple(pairs),
            ignored=frozenset(ignored),
            reindent=self.reindent,
            ambiguous=tuple(ambiguous),
            unplaced=tuple(unplaced),
            uncertain=tuple(best.uncertain + notes),
            candidates=tuple(candidates),
            blank_edges=tuple(best.blank_edges),
        )

    @staticmethod
    def _tied(a: _State, b: _State) -> bool:
        return abs(a.score - b.score) <= TIE and a.evidence == b.evidence

    def _grow(self, state: _State, b: int, block: Block) -> list[_State]:
        lo, hi = state.lo, self.bounds[1]
        owner = self._owner(block)
        if owner is not None:
            anchor = next((p for p in state.pairs if p.s0 <= owner < p.s1), None)
            if anchor is not None:
                lo = max(lo, anchor.o1)
                hi = min(hi, self._extent(anchor.o0))
        anchored = bool(state.choices)
        found = self._candidates(block, lo, hi, anchored)
        penalty = 0.0
        if not found and hi < self.bounds[1]:
            # The sketch's indentation can mislead across a marker (a method after a function's
            # elided tail): look beyond the owner's end rather than give up, but prefer a
            # placement where the block does sit in its owner.
            hi = self.bounds[1]
            found = self._candidates(block, lo, hi, anchored)
            penalty = _ESCAPE
        if not found:
            return [
                attrs.evolve(
                    state,
                    spans=[*state.spans, None],
                    unplaced=[*state.unplaced, b],
                    pairs=list(state.pairs),
                )
            ]
        top = found[0][0]
        # Equal chains are all followed (later blocks, or the lines around them, may decide);
        # taking the nearest of equals would be a guess, except for a block placed by short
        # lines alone (`}`, `pass` at their depth) after an anchored one: the nearest closes it.
        tied = [c for c in found if c[0] >= top - TIE]
        if state.choices and all(trivial(self.skeys[i]) for c in tied for i, _, _ in c[1]):
            tied = tied[:1]
        out = []
        for score, chain in tied:
            pairs, uncertain, edges = self._expand(block, chain, lo, hi, b)
            span = (min(p.o0 for p in pairs), max(p.o1 for p in pairs))
            out.append(
                _State(
                    score=state.score + score - penalty,
                    evidence=state.evidence + sum(p.s1 - p.s0 for p in pairs),
                    lo=span[1],
                    pairs=[*state.pairs, *pairs],
                    spans=[*state.spans, span],
                    unplaced=list(state.unplaced),
                    uncertain=state.uncertain + uncertain,
                    blank_edges=state.blank_edges + edges,
                    choices=[*state.choices, chain[0][1]],
                )
            )
        return out


def place(
    original: tuple[str, ...],
    sketch: Sketch,
    defs: list[Definition],
    *,
    language: str | None,
    bounds: tuple[int, int] | None = None,
) -> Placement:
    """Place every block of `sketch` in `original` (lines without endings) within `bounds`."""
    return _Locator(original, sketch, defs, language, bounds or (0, len(original))).run()
