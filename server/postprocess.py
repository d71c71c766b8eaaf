"""Pure post-processing of a raw model continuation into a suggestion worth showing.

Order: cut to one line when the cursor is mid-line → stop at the end of the
current block or where the text below the cursor already continues → drop what
duplicates the text after the cursor → keep brackets balanced → refuse
whitespace-only text.

Token healing (`heal_prompt`/`unheal`): a prompt that ends in indentation ends
in a token the model never sees there (BPE tokenizers glue a space to the word
after it), so the model writes the space again and every line comes out one
column deep. The server sends the prompt without its trailing spaces and keeps
only continuations that retype them.
"""

from __future__ import annotations

import attrs

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}


@attrs.frozen(kw_only=True)
class CursorContext:
    line_prefix: str  # text of the cursor line before the cursor
    line_suffix: str  # text of the cursor line after the cursor
    multiline: bool = True
    max_lines: int = 8
    next_line: str = ""  # the first non-blank line below the cursor line


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


#: A line that ends with one of these goes on below it (a block, a bracket left open).
_OPENS_BLOCK = (":", "(", "[", "{")


def one_line(ctx: CursorContext) -> bool:
    """Whether a suggestion here completes the cursor line and stops.

    Mid-line (text after the cursor), after code that does not open a block or a
    bracket (the line is being finished, not a block started), and where the line
    below is indented deeper (the cursor line heads a body that is already there).
    Multi-line suggestions are for an empty line or the end of a line that opens
    something, as in the editors people use.
    """
    if not ctx.multiline or ctx.line_suffix.strip():
        return True
    code = ctx.line_prefix.rstrip()
    if code.strip() and not code.endswith(_OPENS_BLOCK):
        return True
    below = ctx.next_line
    return bool(below.strip()) and _indent(below) > _indent(ctx.line_prefix)


def cut_block(text: str, ctx: CursorContext) -> str:
    """Keep the continuation inside the current block.

    One line where `one_line` says so. Otherwise it ends before the first line
    indented less than the cursor line's block, before a blank line followed by
    such a line, before the line below the cursor or a markdown fence, and after
    `max_lines` lines.
    """
    if one_line(ctx):
        return text.split("\n", 1)[0]
    lines = text.split("\n")
    base = _indent(ctx.line_prefix) if ctx.line_prefix.strip() else len(ctx.line_prefix)
    # A line ending with ':' or an opener starts a deeper block; its body may be indented more.
    below = ctx.next_line.strip()
    if below and not ctx.line_prefix.strip() and lines[0].strip() == below:
        return ""  # the line below already says it
    kept = [lines[0]]
    for line in lines[1:]:
        if len(kept) >= ctx.max_lines:
            break
        if below and line.strip() == below:
            break  # the text below the cursor continues from here
        if line.lstrip().startswith("```"):
            break  # a chat model's habit leaking into code: the code is over
        if line.strip() and _indent(line) < base:
            break
        if not line.strip() and kept and not kept[-1].strip():
            break  # two blank lines: the block is over
        kept.append(line)
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def drop_suffix_overlap(text: str, ctx: CursorContext) -> str:
    """Drop the tail of a one-line suggestion that repeats the text after the cursor."""
    suffix = ctx.line_suffix.rstrip()
    if not suffix or "\n" in text:
        return text
    stripped = text.rstrip()
    # Longest k such that the suggestion ends with suffix[:k] (e.g. a closing bracket already there).
    for k in range(min(len(suffix), len(stripped)), 0, -1):
        if stripped.endswith(suffix[:k]):
            return stripped[: len(stripped) - k]
    return text


def balance_brackets(text: str, ctx: CursorContext) -> str:
    """Cut the suggestion before a closing bracket that matches nothing open."""
    stack: list[str] = []
    for ch in ctx.line_prefix:
        if ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS and stack and stack[-1] == CLOSERS[ch]:
            stack.pop()
    in_string: str | None = None
    for i, ch in enumerate(text):
        if in_string:
            if ch == in_string:
                in_string = None
            continue
        if ch in "\"'":
            in_string = ch
        elif ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS:
            if not stack or stack[-1] != CLOSERS[ch]:
                return text[:i].rstrip() if i else ""
            stack.pop()
    return text


def heal_prompt(prompt: str) -> tuple[str, str]:
    """The prompt without its trailing spaces and tabs, and those (to `unheal` with)."""
    kept = prompt.rstrip(" \t")
    return kept, prompt[len(kept) :]


def unheal(raw: str, healed: str) -> str | None:
    """The model's text after the `healed` whitespace it must retype first.

    "" while it has not written all of it yet; None when it wrote something else
    (a continuation that does not fit the text typed: nothing to suggest).
    """
    if raw.startswith(healed):
        return raw[len(healed) :]
    if healed.startswith(raw):
        return ""
    return None


def postprocess(raw: str, ctx: CursorContext) -> str:
    """The suggestion to show, or "" when nothing is worth showing."""
    text = raw.replace("\r\n", "\n")
    text = cut_block(text, ctx)
    text = drop_suffix_overlap(text, ctx)
    text = balance_brackets(text, ctx)
    text = text.rstrip()
    if not text.strip():
        return ""
    return text


def block_finished(raw: str, ctx: CursorContext) -> bool:
    """True once more streamed text cannot change the post-processed result (stop generating)."""
    if one_line(ctx):
        return "\n" in raw
    lines = raw.split("\n")
    if len(lines) > ctx.max_lines + 1:
        return True
    cut = cut_block(raw, ctx)
    # The block was cut before the last complete line: nothing later can come back.
    return len(cut.split("\n")) < len(lines) - 1
