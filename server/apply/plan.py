"""`plan_apply`: the deterministic result when placement is certain, else the regions for the model.

Steps: a markdown answer → its code block(s) for this file (`markdown.py`; several
are tried together, then one by one) → parse the sketch → (no markers and a selection:
the sketch replaces the selection) → place its blocks → settle blank lines at a block's
edge (context for a deletion when reading them as nothing would leave their definition
untouched) → if every block is placed for certain, merge and verify (the whole file,
then each region as a model's rewrite would be: whatever a region loses, its part of the
sketch shows removed); the plan then carries the result and the touched regions with
their new text. A sketch that fits several places equally well, or a merge whose
deletion the file contradicts (`verify_place.py`), is refused at once: no rewrite there
could be proven. Otherwise each block's region, widened to its enclosing definition,
goes to the apply model with the part of the sketch that belongs to it.
"""

from __future__ import annotations

import difflib

import attrs

from .abbrev import expand_docstrings
from .locate import Placement, place
from .markdown import CodeBlock, blocks_for, parse_answer
from .merge import Merged, Region, merge, region_text, splice
from .sketch import Sketch, parse_sketch
from .syntax import Definition, definitions
from .text import Lines, Reindent, indent_style, indent_width, split_lines
from .verify import Verification, verify, verify_rewrite
from .verify_place import deletion_fits_elsewhere

__all__ = ["ApplyPlan", "plan_apply"]

# The most original text one model rewrite sees (with its part of the sketch): the region is
# read once and written once, so with the embedded model's 4,096-token context about 1,400
# tokens of code (~5,000 characters) is what fits. A file's size never matters: only the
# regions the sketch touches, widened to their definitions while they fit, else by a margin.
MODEL_REGION_CHARS = 5000
MARGIN_LINES = 6


@attrs.frozen
class ApplyPlan:
    """`result`: the new text when the deterministic path placed everything (None otherwise);
    `regions`: the touched regions (with `merged` text on the deterministic path, for the
    model to rewrite otherwise); `reason`: why the model is needed or nothing can be done;
    `sketch`: the code block placed when the sketch was a chat answer (verify against it)."""

    result: str | None
    regions: tuple[Region, ...]
    reason: str | None = None
    sketch: str | None = None  # the code placed, when the sketch was a markdown answer

    @property
    def deterministic(self) -> bool:
        return self.result is not None


def _widen(span: tuple[int, int], defs: list[Definition]) -> tuple[int, int]:
    """Out to the innermost definitions holding the span's first and last lines."""
    a, b = span
    last = max(a, b - 1)
    holding_a = [d for d in defs if d.start <= a < d.end]
    holding_b = [d for d in defs if d.start <= last < d.end]
    if holding_a:
        a = min(a, min(holding_a, key=lambda d: d.end - d.start).start)
    if holding_b:
        b = max(b, min(holding_b, key=lambda d: d.end - d.start).end)
    return a, b


def _update(sketch: Sketch, placement: Placement, members: list[int]) -> str:
    """The sketch lines of the given blocks, with the markers around and between them."""
    blocks = placement.blocks
    first, last = blocks[members[0]].lines[0], blocks[members[-1]].lines[-1]
    if first > 0 and sketch.lines[first - 1].marker:
        first -= 1
    if last + 1 < len(sketch.lines) and sketch.lines[last + 1].marker:
        last += 1
    return "\n".join(placement.reindent.line(sketch.lines[i].text) for i in range(first, last + 1))


def _regions(
    lines: Lines,
    sketch: Sketch,
    placement: Placement,
    spans: list[tuple[tuple[int, int], list[int]]],
    merged: Merged | None,
) -> tuple[Region, ...]:
    """One region per union of overlapping spans; each span names the blocks it is for."""
    groups: list[tuple[int, int, list[int]]] = []
    for (a, b), members in sorted(spans):
        if groups and a <= groups[-1][1]:
            last = groups[-1]
            groups[-1] = (last[0], max(last[1], b), last[2] + members)
        else:
            groups.append((a, b, list(members)))
    regions = []
    for a, b, members in groups:
        text = None if merged is None else region_text(merged, a, b, len(lines.text))
        regions.append(
            Region(
                start_line=a,
                end_line=b,
                original=lines.join(a, b),
                update=_update(sketch, placement, sorted(set(members))),
                merged=text,
            )
        )
    return tuple(regions)


def _inner(line: int, defs: list[Definition]) -> Definition | None:
    holding = [d for d in defs if d.start <= line < d.end]
    return min(holding, key=lambda d: d.end - d.start, default=None)


def _fit(span: tuple[int, int], lines: Lines, defs: list[Definition]) -> tuple[int, int]:
    """The span widened to its definitions when that fits the model's budget, else by a margin
    of lines (what fits of it); a span that alone exceeds the budget stays as it is (the
    caller refuses it)."""
    wide = _widen(span, defs)
    if _chars(lines, wide) <= MODEL_REGION_CHARS:
        return wide
    a, b = span
    for margin in range(MARGIN_LINES, 0, -1):
        near = (max(wide[0], a - margin), min(wide[1], b + margin))
        if _chars(lines, near) <= MODEL_REGION_CHARS:
            return near
    return span


def _chars(lines: Lines, span: tuple[int, int]) -> int:
    return sum(len(t) + 1 for t in lines.text[span[0] : span[1]])


def _model_spans(
    placement: Placement, defs: list[Definition], bounds: tuple[int, int], lines: Lines
) -> list[tuple[tuple[int, int], list[int]]]:
    spans = []
    placed = placement.spans
    for k, span in enumerate(placed):
        if span is None:  # somewhere between its placed neighbours, inside their definition
            before = [s[1] for s in placed[:k] if s is not None]
            after = [s[0] for s in placed[k + 1 :] if s is not None]
            lo, hi = max(before, default=bounds[0]), min(after, default=bounds[1])
            if before and not after and (d := _inner(max(lo - 1, 0), defs)) is not None:
                hi = min(hi, d.end)
            if after and not before and (d := _inner(hi, defs)) is not None:
                lo = max(lo, d.start)
            span = (min(lo, hi), max(lo, hi))
        spans.append((_fit(span, lines, defs), [k]))
    return spans


def _too_large(regions: tuple[Region, ...]) -> str | None:
    for region in regions:
        # read and written once, plus its part of the sketch (2.5x: the 4,096 tokens, at
        # ~3.5 characters a token, less the instructions)
        if 2 * len(region.original) + len(region.update) > 2.5 * MODEL_REGION_CHARS:
            return (
                f"the change spans lines {region.start_line + 1}-{region.end_line} "
                f"({len(region.original)} characters), more than the apply model rewrites at "
                "once; select the code to change or send the changed part in smaller snippets"
            )
    return None


def _replace_selection(
    original: str,
    raw: str,
    lines: Lines,
    sketch: Sketch,
    selection: tuple[int, int],
    language: str | None,
) -> ApplyPlan:
    start, end = max(0, selection[0]), min(len(lines.text), max(selection))
    body = [lines.text[j] for j in range(start, end) if lines.text[j].strip()]
    literal = [line.text for line in sketch.lines if line.text.strip()]
    style = indent_style(lines.text)
    shift = 0
    if body and literal:
        least = min(indent_width(t, style.unit) for t in literal)
        shift = indent_width(body[0], style.unit) - least
    reindent = Reindent(style=style, sketch_tab=style.unit, scale=1.0, shift=shift)
    text = "\n".join(reindent.line(line.text) for line in sketch.lines) + "\n"
    region = Region(
        start_line=start,
        end_line=end,
        original=lines.join(start, end),
        update=text,
        merged=None,
    )
    result = splice(original, [(region, text)])
    region = attrs.evolve(region, merged=_region_new_text(result, lines, start, end))
    check = verify(original, result, raw, language=language, regions=[region])
    if not check.ok:
        return ApplyPlan(
            result=None, regions=(attrs.evolve(region, merged=None),), reason=check.reason
        )
    return ApplyPlan(result=result, regions=(region,))


def _untouched(merged: Merged, scope: tuple[int, int]) -> bool:
    """Whether original lines [a, b) come through the merge unchanged, nothing new inside or
    right around them."""
    a, b = scope
    where = {src: k for k, src in enumerate(merged.source) if src is not None}
    if b <= a or any(j not in where for j in range(a, b)):
        return False
    first, last = where[a], where[b - 1]
    if last - first != b - 1 - a:
        return False
    return (first == 0 or merged.source[first - 1] is not None) and (
        last + 1 == len(merged.source) or merged.source[last + 1] is not None
    )


def _settle_blank_edges(
    lines: Lines, sketch: Sketch, placement: Placement, defs: list[Definition]
) -> Placement:
    """Blank sketch lines next to a marker, facing code, are either nothing or context that
    deletes the code up to the original's blank line. When reading them as nothing leaves the
    definition around that code untouched, the sketch would change nothing there, yet it shows
    that spot: the deletion it is."""
    if placement.ambiguous or placement.unplaced or not placement.blank_edges:
        return placement
    blanks = {k for edge in placement.blank_edges for k in edge.blanks}
    quiet = attrs.evolve(placement, ignored=placement.ignored | blanks)
    try:
        merged = merge(lines, sketch, quiet)
    except ValueError:
        return placement
    settled = []
    for edge in placement.blank_edges:
        a, b = edge.deleted
        holding = [d for d in defs if d.start <= a and b <= d.end]
        inner = min(holding, key=lambda d: d.end - d.start, default=None)
        scope = (inner.start, inner.end) if inner else (0, len(lines.text))
        if _untouched(merged, scope):
            settled.append(edge)
    if not settled:
        return placement
    uncertain = list(placement.uncertain)
    spans = list(placement.spans)
    pairs = list(placement.pairs)
    for edge in settled:
        uncertain.remove(edge.reason)
        pairs.extend(edge.pairs)
        span = spans[edge.block]
        if span is not None:
            los = [p.o0 for p in edge.pairs] + [edge.deleted[0]]
            his = [p.o1 for p in edge.pairs] + [edge.deleted[1]]
            spans[edge.block] = (min(span[0], *los), max(span[1], *his))
    return attrs.evolve(
        placement,
        pairs=tuple(sorted(pairs, key=lambda p: (p.s0, p.s1 - p.s0, p.o0))),
        spans=tuple(spans),
        uncertain=tuple(uncertain),
        blank_edges=tuple(e for e in placement.blank_edges if e not in settled),
    )


def _regions_keep_elisions(regions: tuple[Region, ...]) -> Verification:
    """The check a model's rewrite must pass, on the merge too: whatever a region loses, its
    part of the sketch shows removed (a marker's lines are kept, never dropped)."""
    for region in regions:
        check = verify_rewrite(region.original, region.update, region.merged or "")
        if not check.ok:
            return check
    return Verification(ok=True)


def _no_twin_deleted(lines: Lines, result: str) -> Verification:
    """A line deleted right beside its identical twin, which stays: the sketch's copy of that
    line fits either, and reading it as the other one deletes nothing. Which one the sketch
    meant is not certain, so the deterministic path does not decide it."""
    old = [t.strip() for t in lines.text]
    new = [t.strip() for t in split_lines(result).text]
    if [t for t in old if t] == [t for t in new if t]:
        # Only blank lines moved: whitespace drift is no edit, so what the sketch changes
        # was not found (a deletion read as spacing).
        return Verification(ok=False, reason="the merge changes only blank lines")
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag not in ("delete", "replace"):
            continue
        for j in range(i1, i2):
            if not old[j]:
                continue
            beside = [k for k in (i1 - 1, i2) if 0 <= k < len(old)]
            if any(old[k] == old[j] for k in beside):
                return Verification(
                    ok=False,
                    reason=f"original line {j + 1} ({old[j][:50]!r}) is deleted beside an "
                    "identical line that stays: the sketch's copy of it may be either",
                )
    return Verification(ok=True)


def _named(sketch: Sketch, indices: range | tuple[int, ...], most: int = 3) -> str:
    """The first few code lines among `indices`, by number and text, for a reason a chat panel
    can hand back to the model: "sketch lines 4 ('x = 1'), 5 ('return x') and 2 more"."""
    code = [i for i in indices if sketch.lines[i].text.strip() and not sketch.lines[i].marker]
    shown = ", ".join(f"{i + 1} ({sketch.lines[i].text.strip()[:50]!r})" for i in code[:most])
    more = f" and {len(code) - most} more" if len(code) > most else ""
    return f"sketch line{'s' if len(code) > 1 else ''} {shown}{more}"


def _region_new_text(result: str, lines: Lines, start: int, end: int) -> str:
    new = split_lines(result)
    tail = len(lines.text) - end
    return new.join(start, len(new.text) - tail)


def plan_apply(
    original: str,
    sketch: str,
    *,
    language: str | None,
    selection: tuple[int, int] | None = None,
    path: str | None = None,
) -> ApplyPlan:
    """Plan applying `sketch` (or a markdown answer holding it) to `original`.

    `language`: a `retrieval.languages` id ("python", "typescript", ...) or None/"text";
    `selection`: original lines [start, end), 0-based, end exclusive. A sketch without markers
    replaces the selection; with markers it is placed within it. `path`: the document's,
    to pick an answer's block by the path its info string or prose names.
    """
    known = frozenset(line.strip() for line in original.split("\n"))
    blocks = parse_answer(sketch, known)
    if blocks is None:
        return _plan_sketch(original, sketch, language, selection)
    mine = blocks_for(blocks, path, language)
    if not mine:
        named = sorted({b.path or b.language or "?" for b in blocks if b.code.strip()})
        return ApplyPlan(
            result=None,
            regions=(),
            reason="the answer has no code block for this file"
            + (f" (its blocks are for: {', '.join(named)})" if named else ""),
        )
    return _plan_blocks(original, mine, language, selection, known)


def _plan_blocks(
    original: str,
    blocks: list[CodeBlock],
    language: str | None,
    selection: tuple[int, int] | None,
    known: frozenset[str],
) -> ApplyPlan:
    """Every block that places for certain, together in file order (one change in several
    snippets), when they still place together; else the first block that places; else the
    plan of the block most of whose lines the file has."""
    plans = [
        attrs.evolve(_plan_sketch(original, b.code, language, selection), sketch=b.code)
        for b in blocks
    ]
    placed = sorted(
        (p for p in plans if p.deterministic and p.regions), key=lambda p: p.regions[0].start_line
    )
    if len(placed) > 1:
        code = _join([p.sketch or "" for p in placed])
        together = attrs.evolve(_plan_sketch(original, code, language, selection), sketch=code)
        if together.deterministic:
            return together
    if placed:
        return next(p for p in plans if p.deterministic)

    def shared(plan: ApplyPlan) -> float:
        lines = [t.strip() for t in (plan.sketch or "").split("\n") if t.strip()]
        return sum(t in known for t in lines) / max(1, len(lines))

    return max([p for p in plans if p.regions] or plans, key=shared)


def _join(codes: list[str]) -> str:
    """Snippets of one file, in order, with what lies between them elided."""
    return "...\n".join(code if code.endswith("\n") else code + "\n" for code in codes)


def _plan_sketch(
    original: str, sketch: str, language: str | None, selection: tuple[int, int] | None
) -> ApplyPlan:
    lines = split_lines(original)
    sketch = expand_docstrings(sketch, original, language)
    parsed = parse_sketch(sketch, original)
    if not any(line.text.strip() and not line.marker for line in parsed.lines):
        return ApplyPlan(result=None, regions=(), reason="the sketch has no code, only markers")
    if selection is not None and not parsed.has_markers:
        return _replace_selection(original, sketch, lines, parsed, selection, language)
    defs = definitions(original, lines.text, language)
    bounds = (0, len(lines.text)) if selection is None else (selection[0], selection[1])
    placement = place(lines.text, parsed, defs, language=language, bounds=bounds)
    placement = _settle_blank_edges(lines, parsed, placement, defs)
    if all(span is None for span in placement.spans):
        return ApplyPlan(
            result=None,
            regions=(),
            reason="the sketch matches nowhere in the file: none of "
            f"{_named(parsed, range(len(parsed.lines)))} is in the original",
        )
    reason: str | None = None
    if placement.certain:
        try:
            merged = merge(lines, parsed, placement)
        except ValueError as exc:
            reason = str(exc)
        else:
            result = merged.join()
            spans = [(s, [k]) for k, s in enumerate(placement.spans) if s is not None]
            regions = _regions(lines, parsed, placement, spans, merged)
            check = verify(original, result, sketch, language=language, regions=regions)
            if check.ok:
                check = _regions_keep_elisions(regions)
            if check.ok:
                check = _no_twin_deleted(lines, result)
            if check.ok:
                return ApplyPlan(result=result, regions=regions)
            reason = f"the deterministic merge failed verification: {check.reason}"
            if deletion_fits_elsewhere(lines, split_lines(result)) is not None:
                # The place found is one the sketch does not prove: the model would get that
                # place too and write the same edit there (seconds spent on a refusal).
                return ApplyPlan(result=None, regions=(), reason=reason)
    else:
        reason = "; ".join(
            [*placement.ambiguous, *placement.uncertain]
            + [
                f"{_named(parsed, placement.blocks[k].lines)} match no line of the original"
                for k in placement.unplaced
            ]
        )
    if placement.ambiguous:
        # Tied places: the sketch itself says nothing of which one it means, so no rewrite of
        # one of them can be proven to be the intended edit (a model picks one, verified and
        # perhaps wrong). Refused at once: a selection bounds placement to one of them.
        return ApplyPlan(result=None, regions=(), reason=f"{reason}; select the code to change")
    spans = _model_spans(placement, defs, bounds, lines)
    regions = _regions(lines, parsed, placement, spans, None)
    large = _too_large(regions)
    if large is not None:
        return ApplyPlan(result=None, regions=(), reason=f"{reason}; {large}")
    return ApplyPlan(result=None, regions=regions, reason=reason)
