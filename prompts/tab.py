"""The Tab (inline completion) prompt: one document and a cursor, rendered for a FIM format.

Layout, in output order: the format's leading literal, a short file header
(the path as a comment, or the repository-mode header), the file lines above
the cursor, the cursor line up to the cursor (the end of the prefix), then the
format's suffix slot (the rest of the cursor line and the lines below) and its
closing literal. The far lines above are marked stable; the server routes and
warms on that stable prefix.

Cache stability while typing: formats whose middle comes last (prefix,
suffix, then the middle marker: Qwen, StarCoder2, ...) put the lines typed
since an aligned anchor (`seed_anchor`, blocks of 16 lines) and the cursor
line up to the cursor after the middle marker, as middle the model has already
written. Everything before it, the text below the cursor included, stays
byte-identical while the user types within the block, so the backend's KV
cache keeps it and each keystroke evaluates a few tokens. The window's top
moves only in aligned blocks (see `renderer.file_lines`); blocks below the
cursor align to the file's end, so a typed line leaves their counts cached.
The suffix is rendered first under its own share of the budget: 35% (on 30
dev FIM cases, bench/fim.py, shares of 0.1 / 0.2 / 0.35 / 0.5 gave 5 / 5 / 7 / 6
exact). With a long-lived `Renderer`, renders at one path and cursor line form a sticky
series: the window keeps its place while it still fits, instead of flapping
when a token count wobbles.

Cost on the keystroke path (~0.3-0.8 ms on argparse.py, see bench/render.py):
only the lines within reach of the budget around the cursor are read (more
when all of them fit, so the result is the whole file's), the far lines of
each aligned block are one piece, piece counts come from the renderer's cache,
and the prompt's exact count is taken by difference from the document's
previous prompt (`Renderer.render`'s `basis`), which tokenizes a few lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import attrs

from .fim import FimTemplate, line_comment
from .renderer import (
    Component,
    PromptTooLargeError,
    Renderer,
    RenderResult,
    _flatten,
    group,
    line_priority,
)
from .renderer import text as _text  # `text` is a parameter name below

__all__ = [
    "DEFAULT_SUFFIX_SHARE",
    "TabInputs",
    "TabPrompt",
    "render_tab_inputs",
    "render_tab_prompt",
]

#: Share of `budget - reserve_output` that the text after the cursor may use.
DEFAULT_SUFFIX_SHARE = 0.35
_NEAR = 8  # lines around the cursor ranked one by one
#: Lines typed since an aligned anchor go after the middle marker (see `seed_anchor`).
SEED_BLOCK = 16
_BLOCK = 16  # far lines are ranked in aligned blocks of this many
# Characters read around the cursor per token of budget, at first: code runs
# 3-4 characters a token; when all that was read fits, four times more is read.
_CHARS_PER_TOKEN = 6
# Plus room for the near zone and a block (far lines are read in whole blocks).
_SLACK = (_NEAR + _BLOCK) * 80


@attrs.frozen(kw_only=True)
class TabPrompt:
    prompt: str
    stable_prefix: str  # leading text that does not change while typing near the cursor
    tokens: int  # exact count of `prompt` by the renderer's counting function
    exact: bool  # False when the count is a character estimate
    prefix_lines_kept: int  # whole lines above the cursor line that made it in
    suffix_lines_kept: int  # whole lines below the cursor line that made it in
    template: str  # the FIM format's name
    stop: tuple[str, ...]  # the format's stop strings


@attrs.frozen(kw_only=True)
class TabInputs:
    """The raw inputs of one Tab prompt (what the recorder stores and replays)."""

    text: str
    cursor_offset: int  # index into `text` in code points (not UTF-16 units)
    path: str
    language: str
    budget: int
    reserve_output: int
    repo: str | None = None
    suffix_share: float = DEFAULT_SUFFIX_SHARE


def seed_anchor(cursor_line: int) -> int:
    """The first line whose text goes after the middle marker: the cursor line's aligned
    block of SEED_BLOCK lines, so the prompt before it changes once per block typed."""
    return cursor_line - cursor_line % SEED_BLOCK


def _comment_header(path: str, language: str) -> str:
    """`# path` in the language's comment syntax, without a newline (the next line piece
    brings it); empty for languages without a known line comment."""
    marker = line_comment(language)
    return f"{marker} {path}" if marker and path else ""


class _Ranked(NamedTuple):
    component: Component
    lines: int  # file lines in it


def _ranked(
    lines: list[str],
    first: int,
    cursor_line: int,
    lead: bool,
    stable_end: int | None = None,
    shift: int = 0,
) -> list[_Ranked]:
    """Components for `lines` (absolute line `first` on), ranked as `renderer.file_lines`
    ranks them, but with the far lines of each aligned block joined into one component:
    they share a priority, so they are kept or cut together, and one piece per block
    keeps the renderer's work per keystroke small. Each piece starts with the newline
    that ends the line before it (none for line 0 when `lead` is False).

    Blocks below the cursor are aligned to `line + shift` (`_below` passes a shift that
    aligns them to the file's end): a line typed above them leaves their texts, and so
    their cached token counts, unchanged."""
    out: list[_Ranked] = []
    if stable_end is None:
        stable_end = max(0, (cursor_line - _NEAR) // _BLOCK * _BLOCK)
    n = len(lines)
    k = 0
    while k < n:
        i = first + k
        prio = line_priority(i, cursor_line, top=0, near=_NEAR, block=_BLOCK, slope=1)
        if abs(i - cursor_line) > _NEAR:
            if i < cursor_line:
                end = min((i // _BLOCK + 1) * _BLOCK, cursor_line - _NEAR)
            else:
                start = (i + shift) // _BLOCK * _BLOCK - shift
                end = start + _BLOCK
                prio = -(max(start, cursor_line + _NEAR + 1) - cursor_line)
            stop = min(end - first, n)
            chunk = "\n" + "\n".join(lines[k:stop])
        else:
            stop = k + 1
            chunk = "\n" + lines[k]
        count = stop - k
        if i == 0 and not lead:
            chunk = chunk[1:]
            count -= not lines[0]  # an empty first line is no piece of its own
        out.append(_Ranked(Component(text=chunk, priority=prio, stable=i < stable_end), count))
        k = stop
    return out


def _above(
    text: str,
    line: int,
    line_start: int,
    chars: int,
    lead: bool,
    cursor_line: int,
    stable_end: int | None = None,
) -> tuple[list[_Ranked], bool]:
    """The ranked lines above `line` (which starts at `line_start`) within about `chars`
    characters, ranked by their distance to `cursor_line`, and whether they reach the
    file's first line. Beyond the near zone only whole aligned blocks are read, so the
    pieces do not change as `chars` slides. Lines before `stable_end` are marked stable
    (default: the far blocks above the near zone)."""
    if line == 0:
        return [], True
    end = line_start - 1  # the newline that ends the line above
    lo = end - chars
    start = 0 if lo <= 0 else text.rfind("\n", 0, lo) + 1
    lines = text[start:end].split("\n")
    first = line - len(lines)
    if 0 < first < cursor_line - _NEAR:
        keep = min(-(-first // _BLOCK) * _BLOCK, cursor_line - _NEAR, line)
        lines = lines[keep - first :]
        first = keep
    return _ranked(lines, first, cursor_line, lead, stable_end), first == 0


def _below(text: str, cursor_line: int, line_end: int, chars: int) -> tuple[list[_Ranked], bool]:
    """The ranked lines below the cursor line within about `chars` characters, and
    whether they reach the file's end (whole aligned blocks only, as `_above`)."""
    if line_end >= len(text):
        return [], True
    start = line_end + 1
    stop = text.find("\n", start + chars) if start + chars < len(text) else -1
    complete = stop < 0
    lines = text[start : len(text) if complete else stop].split("\n")
    total = cursor_line + 1 + text.count("\n", line_end)  # lines in the file
    shift = -total % _BLOCK  # blocks end where the file ends
    last = cursor_line + len(lines)  # the last line read
    if not complete and last > cursor_line + _NEAR:
        keep = max(cursor_line + _NEAR, (last + 1 + shift) // _BLOCK * _BLOCK - shift - 1)
        lines = lines[: keep - cursor_line]
    return _ranked(lines, cursor_line + 1, cursor_line, True, shift=shift), complete


def _kept(ranked: list[_Ranked], result: RenderResult) -> int:
    cutoff = result.cutoff
    if cutoff is None:
        return 0
    return sum(
        r.lines
        for r in ranked
        if r.component.text and r.component.priority is not None and r.component.priority >= cutoff
    )


def render_tab_prompt(
    *,
    text: str,
    cursor_offset: int,
    path: str,
    language: str,
    template: FimTemplate,
    count: Callable[[str], int],
    budget: int,
    reserve_output: int,
    renderer: Renderer | None = None,
    exact: bool = True,
    repo: str | None = None,
    suffix_share: float = DEFAULT_SUFFIX_SHARE,
    seed: bool = True,
) -> TabPrompt:
    """Render the Tab prompt for `text` with the cursor at `cursor_offset`.

    Pass a long-lived `renderer` (built over the same `count`) to reuse token
    counts, keep the window steady across keystrokes and count each prompt by
    difference from the previous one; it takes precedence over `count` and
    `exact`. `cursor_offset` counts code points, not UTF-16 units. `repo`
    turns on repository mode for formats that have one.
    The prompt's exact token count is at most `budget - reserve_output`;
    `PromptTooLargeError` when the cursor line and header alone exceed it.
    """
    if not 0 <= cursor_offset <= len(text):
        raise ValueError(f"cursor_offset {cursor_offset} outside the text (0..{len(text)})")
    if not 0.0 <= suffix_share <= 1.0:
        raise ValueError("suffix_share must be within 0..1")
    r = renderer if renderer is not None else Renderer(count, exact=exact)
    limit = budget - reserve_output

    # Repository mode (formats with a repo header, when a repo name is given)
    # puts the header before the format; otherwise a comment heads the prefix.
    repo_header = None if repo is None else template.repo_header_for(repo, path)
    header = "" if repo_header is not None else _comment_header(path, language)
    # Each line piece starts with the newline that ends the line before it:
    # BPE tokenizers merge a newline with the next line's indentation, so
    # pieces cut this way count nearly the same as their concatenation (cut
    # after the newline, their sum overestimates by ~10% and wastes budget).
    # Only "\n" ends a line, as in LSP; a "\r" stays on its line. Only the
    # lines around the cursor are read: the keystroke path never splits the file.
    lead = bool(header)
    cursor_line = text.count("\n", 0, cursor_offset)
    line_start = text.rfind("\n", 0, cursor_offset) + 1
    line_end = text.find("\n", cursor_offset)
    line_end = len(text) if line_end < 0 else line_end
    after = text[cursor_offset:line_end]
    # Formats whose middle comes last (prefix, suffix, then the middle marker) get the
    # lines typed since the anchor, and the cursor line up to the cursor, after that
    # marker, as middle the model has already written: everything before it, the text
    # below the cursor included, stays the same while the user types on (KV cache).
    anchor = seed_anchor(cursor_line) if template.middle_last and seed else cursor_line
    anchor_start = line_start
    for _ in range(cursor_line - anchor):
        anchor_start = text.rfind("\n", 0, anchor_start - 1) + 1
    if template.middle_last:
        before = "\n" if lead or anchor else ""
        middle = text[anchor_start:cursor_offset]
    else:
        before = ("\n" if lead or cursor_line else "") + text[line_start:cursor_offset]
        middle = ""

    # Renders of this document with the same anchor and settings form one sticky series:
    # the window stays put while it fits (see `Renderer.render`). Renders of
    # the document at any line share a basis: each is counted by difference.
    settings = (template.name, budget, reserve_output, suffix_share, repo)
    series = ("tab", path, anchor, *settings)
    basis = ("tab", path, *settings)

    suffix = ""
    suffix_kept = 0
    if template.uses_suffix:
        share = max(int(limit * suffix_share), 0)
        chars = share * _CHARS_PER_TOKEN + _SLACK
        while True:
            below, complete = _below(text, cursor_line, line_end, chars)
            try:
                suffix_result = r._render(
                    _flatten(group(_text(after), [b.component for b in below])),
                    budget=share,
                    reserve_output=0,
                    sticky=(*series, "suffix"),
                    basis=(*basis, "suffix"),
                    partial=not complete,
                )
            except PromptTooLargeError:
                suffix = after  # a long line remainder alone: keep it, the total still must fit
                break
            if suffix_result is not None:
                suffix, suffix_kept = suffix_result.text, _kept(below, suffix_result)
                break
            chars *= 4  # all of it fit: read further

    chars = max(limit, 0) * _CHARS_PER_TOKEN + _SLACK
    while True:
        # Above a seed anchor every line stays put while the user types below it.
        stable_end = anchor if template.middle_last else None
        above, complete = _above(text, anchor, anchor_start, chars, lead, cursor_line, stable_end)
        parts: list[Component] = []
        if repo_header is not None:
            parts.append(_text(repo_header, stable=True))
        for kind, literal in template.segments():
            if kind == "text":
                parts.append(_text(literal, stable=True))
            elif kind == "prefix":
                prefix = [a.component for a in above]
                tail = _text(before, stable=template.middle_last)
                parts.append(group(_text(header, stable=True), prefix, tail))
            else:
                parts.append(_text(suffix, stable=template.middle_last))
        if middle:
            parts.append(_text(middle, stable=False))
        try:
            result = r._render(
                _flatten(parts),
                budget=budget,
                reserve_output=reserve_output,
                sticky=(*series, "prompt"),
                basis=(*basis, "prompt"),
                partial=not complete,
            )
        except PromptTooLargeError:
            if anchor == cursor_line:
                raise
            # A budget too small for the seed lines: they go back above the cursor line.
            return render_tab_prompt(
                text=text, cursor_offset=cursor_offset, path=path, language=language,
                template=template, count=count, budget=budget, reserve_output=reserve_output,
                renderer=renderer, exact=exact, repo=repo, suffix_share=suffix_share, seed=False,
            )  # fmt: skip
        if result is not None:
            break
        chars *= 4  # all of it fit: read further
    return TabPrompt(
        prompt=result.text,
        stable_prefix=result.stable_prefix,
        tokens=result.tokens,
        exact=result.exact,
        prefix_lines_kept=_kept(above, result) + (cursor_line - anchor),
        suffix_lines_kept=suffix_kept,
        template=template.name,
        stop=template.stop,
    )


def render_tab_inputs(
    inputs: TabInputs,
    *,
    template: FimTemplate,
    count: Callable[[str], int],
    renderer: Renderer | None = None,
    exact: bool = True,
) -> TabPrompt:
    """`render_tab_prompt` over a `TabInputs` (the form the recorder stores)."""
    return render_tab_prompt(
        text=inputs.text,
        cursor_offset=inputs.cursor_offset,
        path=inputs.path,
        language=inputs.language,
        template=template,
        count=count,
        budget=inputs.budget,
        reserve_output=inputs.reserve_output,
        renderer=renderer,
        exact=exact,
        repo=inputs.repo,
        suffix_share=inputs.suffix_share,
    )
