"""What placing a sketch yields (`Placement`: pairs of sketch and original lines, per block
spans, the doubts) and the sketch cut at its markers into the blocks that get placed."""

from __future__ import annotations

import attrs

from .sketch import Sketch
from .text import Reindent

__all__ = ["BlankEdge", "Block", "Pair", "Placement", "blocks_of"]


@attrs.frozen
class Pair:
    """Sketch lines [s0, s1) stand for original lines [o0, o1). `exact`: one line, the same
    line modulo indentation; otherwise a replacement (o0 == o1 is a zero-width anchor)."""

    s0: int
    s1: int
    o0: int
    o1: int
    exact: bool


@attrs.frozen
class Block:
    """Consecutive literal lines of the sketch between markers."""

    lines: tuple[int, ...]
    marker_before: bool
    marker_after: bool


@attrs.frozen
class BlankEdge:
    """Blank sketch lines at a block's edge, next to a marker, facing code. Either they mean
    nothing (a blank before the marker) or they are context that deletes the code up to the
    original's next blank line. `reason`: the doubt as reported; `blanks`: the sketch lines;
    `pairs`: them paired with the original's blank lines (the deletion reading); `deleted`:
    original lines [a, b) that reading deletes; `block`: the block's index."""

    reason: str
    blanks: tuple[int, ...]
    pairs: tuple[Pair, ...]
    deleted: tuple[int, int]
    block: int


@attrs.frozen
class Placement:
    blocks: tuple[Block, ...]
    spans: tuple[tuple[int, int] | None, ...]  # per block: original lines it touches
    pairs: tuple[Pair, ...]
    ignored: frozenset[int]  # sketch lines not to emit (blank blocks between markers)
    reindent: Reindent
    ambiguous: tuple[str, ...]
    unplaced: tuple[int, ...]  # block indices
    uncertain: tuple[str, ...]
    candidates: tuple[tuple[int, int], ...]  # spans of every tied placement, when ambiguous
    blank_edges: tuple[BlankEdge, ...] = ()  # doubts (also in `uncertain`) a caller may settle

    @property
    def certain(self) -> bool:
        return not (self.ambiguous or self.unplaced or self.uncertain)


def blocks_of(sketch: Sketch) -> tuple[list[Block], set[int]]:
    """The sketch's blocks, and the blank sketch lines between markers (not to emit)."""
    blocks: list[Block] = []
    ignored: set[int] = set()
    current: list[int] = []
    marker_before = False
    for i, line in enumerate(sketch.lines):
        if line.marker:
            if current:
                blocks.append(Block(tuple(current), marker_before, True))
            current = []
            marker_before = True
        else:
            current.append(i)
    if current:
        blocks.append(Block(tuple(current), marker_before, False))
    kept = []
    for block in blocks:
        if all(not sketch.lines[i].text.strip() for i in block.lines):
            ignored.update(block.lines)  # blank lines between markers say nothing
        else:
            kept.append(block)
    return kept, ignored
