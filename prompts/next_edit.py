"""The next-edit prompt (Zeta-style): recent edits as diffs, then the file with an editable region.

Layout: the instruction (stable), the user's recent edits oldest first (the
history only ever grows at its end, so this part stays a cacheable prefix), the
file excerpt with the editable region marked and the cursor marked inside it,
then the response header that the model continues with the rewritten region.
The model stops at the region's end marker; the diff between the old and the
new region is the suggestion.

Under a tight budget the renderer drops the oldest edits first, then the
excerpt lines furthest from the cursor; the region and the newest edit stay.
The template text is data (`templates/next_edit.toml`).
"""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from collections.abc import Callable, Sequence

import attrs

from .renderer import Component, Renderer, group, line_priority
from .renderer import text as _text

__all__ = ["NextEditInputs", "NextEditPrompt", "NextEditTemplate", "render_next_edit"]

_NEAR = 8
_BLOCK = 16
_EVENT_TOP = 1_000_000  # edits outrank excerpt lines; newer edits outrank older ones


@attrs.frozen(kw_only=True)
class NextEditTemplate:
    instruction: str
    events_header: str
    event: str
    excerpt_header: str
    excerpt_footer: str
    response: str
    start_of_file: str
    region_start: str
    region_end: str
    cursor: str


@functools.cache
def load_template() -> NextEditTemplate:
    raw = importlib.resources.files(__package__).joinpath("templates/next_edit.toml")
    return NextEditTemplate(**tomllib.loads(raw.read_text(encoding="utf-8")))


@attrs.frozen(kw_only=True)
class NextEditInputs:
    """The raw inputs of one next-edit prompt."""

    text: str
    cursor_offset: int  # code points
    path: str
    events: tuple[tuple[str, str], ...]  # (path, unified diff), oldest first
    region_before: int = 2  # editable lines above the cursor line
    region_after: int = 3  # editable lines below it
    context_lines: int = 40  # excerpt lines read each side of the region
    budget: int = 1536
    reserve_output: int = 256


@attrs.frozen(kw_only=True)
class NextEditPrompt:
    prompt: str
    stable_prefix: str
    tokens: int
    region: str  # the editable region's original text (whole lines, newline-terminated)
    region_start: int  # its offset in the document
    region_end: int
    cursor_in_region: int  # the cursor's offset inside `region`


def render_next_edit(
    inputs: NextEditInputs,
    *,
    count: Callable[[str], int],
    renderer: Renderer | None = None,
    template: NextEditTemplate | None = None,
) -> NextEditPrompt:
    t = template or load_template()
    text = inputs.text
    cursor = inputs.cursor_offset
    cursor_line = text.count("\n", 0, cursor)
    lines = text.split("\n")
    lo = max(0, cursor_line - inputs.region_before)
    hi = min(len(lines), cursor_line + inputs.region_after + 1)
    starts = [0]
    for line in lines[:hi]:
        starts.append(starts[-1] + len(line) + 1)
    region_start = starts[lo]
    region_end = min(starts[hi], len(text))
    region = text[region_start:region_end]
    if not region.endswith("\n"):
        region += "\n"
    in_region = cursor - region_start
    marked = region[:in_region] + t.cursor + region[in_region:]

    ctx_lo = max(0, lo - inputs.context_lines)
    ctx_hi = min(len(lines), hi + inputs.context_lines)
    above = _excerpt(lines, ctx_lo, lo, cursor_line)
    below = _excerpt(lines, hi, ctx_hi, cursor_line)

    events: list[Component] = []
    n = len(inputs.events)
    for i, (path, diff) in enumerate(inputs.events):
        body = t.event.format(path=path, diff=diff if diff.endswith("\n") else diff + "\n")
        # The newest edit is always kept; older ones go first when the budget is tight.
        prio = None if i == n - 1 else _EVENT_TOP - (n - 1 - i)
        events.append(_text(body, priority=prio))

    root = group(
        _text(t.instruction, stable=True),
        group(_text(t.events_header), events, stable=True) if events else group(),
        _text(t.excerpt_header.format(path=inputs.path), stable=False),
        _text(t.start_of_file) if ctx_lo == 0 else group(),
        above,
        _text(t.region_start + marked + t.region_end + "\n"),
        below,
        _text(t.excerpt_footer + t.response.format(path=inputs.path)),
    )
    r = renderer or Renderer(count)
    result = r.render(root, budget=inputs.budget, reserve_output=inputs.reserve_output)
    return NextEditPrompt(
        prompt=result.text,
        stable_prefix=result.stable_prefix,
        tokens=result.tokens,
        region=region,
        region_start=region_start,
        region_end=region_end,
        cursor_in_region=in_region,
    )


def _excerpt(lines: Sequence[str], lo: int, hi: int, cursor_line: int) -> list[Component]:
    """Context lines [lo, hi), ranked by distance from the cursor line."""
    return [
        _text(
            lines[i] + "\n",
            priority=line_priority(i, cursor_line, top=0, near=_NEAR, block=_BLOCK, slope=1),
        )
        for i in range(lo, hi)
    ]
