"""The Tab (inline completion) prompt: one document and a cursor, rendered for a FIM format.

Layout, in output order: the format's leading literal, a short file header
(the path as a comment, or the repository-mode header), the file lines above
the cursor, the cursor line up to the cursor (the end of the prefix), then the
format's suffix slot (the rest of the cursor line and the lines below) and its
closing literal. The far lines above are marked stable; the server routes and
warms on that stable prefix.

Cache stability while typing: everything up to the cursor is the same text as
at the previous keystroke, and the window's top moves only in aligned blocks
(see `renderer.file_lines`). The suffix is rendered first under its own small
share of the budget: it comes after the cursor in prefix-suffix-middle
formats, so the backend recomputes it on every keystroke; keeping it small
keeps that work small, and a fixed share keeps it from changing while the
cursor stays on one line. With a long-lived `Renderer`, renders at one path
and cursor line form a sticky series: the window keeps its place while it
still fits, instead of flapping when a token count wobbles.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .fim import FimTemplate, line_comment
from .renderer import (
    Component,
    PromptTooLargeError,
    Renderer,
    RenderResult,
    file_lines,
    group,
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
DEFAULT_SUFFIX_SHARE = 0.03
_NEAR = 8  # lines around the cursor ranked one by one
_BLOCK = 16  # far lines are ranked in aligned blocks of this many


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


def _comment_header(path: str, language: str) -> str:
    """`# path` in the language's comment syntax, without a newline (the next line piece
    brings it); empty for languages without a known line comment."""
    marker = line_comment(language)
    return f"{marker} {path}" if marker and path else ""


def _kept(lines: list[Component], result: RenderResult) -> int:
    cutoff = result.cutoff
    if cutoff is None:
        return 0
    return sum(1 for c in lines if c.text and c.priority is not None and c.priority >= cutoff)


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
) -> TabPrompt:
    """Render the Tab prompt for `text` with the cursor at `cursor_offset`.

    Pass a long-lived `renderer` (built over the same `count`) to reuse token
    counts and keep the window steady across keystrokes; it takes precedence
    over `count` and `exact`. `cursor_offset` counts code points, not UTF-16
    units. `repo` turns on repository mode for formats that have one.
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
    # Only "\n" ends a line, as in LSP; a "\r" stays on its line.
    lines = text.split("\n")
    pieces = ["\n" + line for line in lines]
    if not header:
        pieces[0] = lines[0]
    cursor_line = text.count("\n", 0, cursor_offset)
    column = cursor_offset - (text.rfind("\n", 0, cursor_offset) + 1)
    newline = len(pieces[cursor_line]) - len(lines[cursor_line])
    before = pieces[cursor_line][: newline + column]
    after = pieces[cursor_line][newline + column :]

    # A line further than `limit` lines (plus a block) from the cursor cannot
    # fit: every line piece costs at least a token and all nearer lines come
    # first. Clipping keeps the keystroke path cheap on very long files.
    reach = max(limit, 0) + _BLOCK + 1
    first = max(0, cursor_line - reach)
    # Renders of this document line with these settings form one sticky series:
    # the window stays put while it fits (see `Renderer.render`).
    series = ("tab", path, cursor_line, template.name, budget, reserve_output, suffix_share)
    ranked = file_lines(
        pieces[first : cursor_line + reach + 1], cursor_line, near=_NEAR, block=_BLOCK, first=first
    )
    above, below = ranked[: cursor_line - first], ranked[cursor_line - first + 1 :]

    suffix = ""
    suffix_kept = 0
    if template.uses_suffix:
        try:
            suffix_result = r.render(
                group(_text(after), below),
                budget=max(int(limit * suffix_share), 0),
                sticky=(*series, "suffix"),
            )
        except PromptTooLargeError:
            suffix = after  # a long line remainder alone: keep it, the total still must fit
        else:
            suffix, suffix_kept = suffix_result.text, _kept(below, suffix_result)

    parts: list[Component] = []
    if repo_header is not None:
        parts.append(_text(repo_header, stable=True))
    for kind, literal in template.segments():
        if kind == "text":
            parts.append(_text(literal, stable=True))
        elif kind == "prefix":
            parts.append(group(_text(header, stable=True), above, _text(before, stable=False)))
        else:
            parts.append(_text(suffix, stable=False))

    result = r.render(
        parts, budget=budget, reserve_output=reserve_output, sticky=(*series, "prompt")
    )
    return TabPrompt(
        prompt=result.text,
        stable_prefix=result.stable_prefix,
        tokens=result.tokens,
        exact=result.exact,
        prefix_lines_kept=_kept(above, result),
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
