"""Build the new text from a placement, and put rewritten regions back (`splice`).

Walking the sketch in order: an original stretch between two anchors is kept
when a marker stands between them and deleted when not (the sketch shows those
lines contiguous); new sketch lines go where they stand relative to the
anchors, re-indented to the original's style; lines the sketch did not touch
keep their bytes, line endings included.
"""

from __future__ import annotations

import attrs

from .locate import Placement
from .sketch import Sketch
from .text import Lines, indent_width, split_lines

__all__ = ["Merged", "Region", "merge", "splice"]


@attrs.frozen
class Region:
    """Original lines [start_line, end_line) (0-based, end exclusive) that an edit rewrites.

    `original` is their text, `update` the part of the sketch that belongs to them (markers
    kept, re-indented to the original), `merged` their new text when the deterministic path
    knows it (None when the apply model must write it).
    """

    start_line: int
    end_line: int
    original: str
    update: str
    merged: str | None = None


@attrs.frozen
class Merged:
    text: tuple[str, ...]  # lines without endings
    eols: tuple[str, ...]
    source: tuple[int | None, ...]  # the original line each output line is, unchanged

    def join(self, start: int = 0, end: int | None = None) -> str:
        stop = len(self.text) if end is None else end
        return "".join(self.text[i] + self.eols[i] for i in range(start, stop))


def merge(lines: Lines, sketch: Sketch, placement: Placement) -> Merged:
    """The original with the sketch merged in, as placed by `placement` (which must be certain)."""
    out: list[str] = []
    eols: list[str] = []
    source: list[int | None] = []
    reindent = placement.reindent
    unit = reindent.style.unit

    def keep(start: int, end: int) -> None:
        for j in range(start, end):
            emit(lines.text[j], lines.eols[j], j)

    def emit(text: str, eol: str, src: int | None) -> None:
        if eols and eols[-1] == "":
            eols[-1] = lines.eol  # the old last line gets an ending once something follows
        out.append(text)
        eols.append(eol)
        source.append(src)

    def new(i: int) -> None:
        emit(reindent.line(sketch.lines[i].text), lines.eol, None)

    pairs = sorted(placement.pairs, key=lambda p: (p.s0, p.s1 - p.s0, p.o0))
    pending: list[int] = []
    cursor = 0  # next original line not yet kept or dropped
    elided = True  # the edges of a sketch always keep what lies beyond them
    covered: set[int] = set()
    p = 0
    for i in range(len(sketch.lines) + 1):
        while p < len(pairs) and pairs[p].s0 == i:
            pair = pairs[p]
            if pair.o0 < cursor:
                raise ValueError(f"overlapping placement at original line {pair.o0 + 1}")
            if elided:
                keep(cursor, pair.o0)
            for k in pending:
                new(k)
            pending = []
            if pair.exact:
                j, text = pair.o0, sketch.lines[pair.s0].text
                width = reindent.width(text)
                original_width = indent_width(lines.text[j], unit)
                if width == original_width or original_width < reindent.shift:
                    emit(lines.text[j], lines.eols[j], j)
                else:  # the sketch moved this line in or out (its own whitespace kept)
                    emit(reindent.draw(width) + lines.text[j].lstrip(" \t"), lines.eols[j], None)
            else:
                for k in range(pair.s0, pair.s1):
                    new(k)
            covered.update(range(pair.s0, pair.s1))
            cursor = max(cursor, pair.o1)
            elided = False
            p += 1
        if i == len(sketch.lines):
            break
        if i in covered or i in placement.ignored:
            continue
        if sketch.lines[i].marker:
            for k in pending:
                new(k)
            pending = []
            elided = True
        else:
            pending.append(i)
    for k in pending:
        new(k)
    keep(cursor, len(lines.text))
    if eols:
        eols[-1] = lines.eol if lines.final_newline or not lines.text else ""
    return Merged(text=tuple(out), eols=tuple(eols), source=tuple(source))


def region_text(merged: Merged, start: int, end: int, total: int) -> str:
    """The new text standing where original lines [start, end) stood (outside lines unchanged)."""
    where = {src: k for k, src in enumerate(merged.source) if src is not None}
    before = where[start - 1] if start > 0 else -1
    after = where[end] if end < total else len(merged.text)
    return merged.join(before + 1, after)


def splice(original: str, rewrites: list[tuple[Region, str]]) -> str:
    """`original` with each region's lines replaced by its rewritten text.

    The text is re-drawn with the original's line ending; it ends with a line ending
    unless the region ran to the end of a file that has none. Regions must not overlap.
    """
    lines = split_lines(original)
    starts = [0]
    for k in range(len(lines.text)):
        starts.append(starts[-1] + len(lines.text[k]) + len(lines.eols[k]))
    pieces: list[str] = []
    cursor = 0
    for region, text in sorted(rewrites, key=lambda r: r[0].start_line):
        if region.start_line < cursor:
            raise ValueError(f"regions overlap at line {region.start_line + 1}")
        pieces.append(lines.join(cursor, region.start_line))
        new = split_lines(text)
        at_end = region.end_line >= len(lines.text)
        for k, line in enumerate(new.text):
            last = k == len(new.text) - 1
            eol = "" if last and at_end and not lines.final_newline else lines.eol
            pieces.append(line + eol)
        cursor = region.end_line
    pieces.append(lines.join(cursor))
    if not lines.final_newline and lines.text and cursor >= len(lines.text):
        joined = "".join(pieces)
        return joined[: -len(lines.eol)] if joined.endswith(lines.eol) else joined
    return "".join(pieces)
