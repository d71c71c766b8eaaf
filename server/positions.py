"""LSP positions: lines broken where LSP breaks them, columns in UTF-16 code units.

LSP counts "\\n", "\\r\\n" and "\\r" as line breaks and nothing else; `str.splitlines`
also breaks at form feed, NEL, U+2028 and others, all found in real sources, so it
must not be used for positions. The server negotiates UTF-16 positions only
(`text_model.utf16_only`), so every column on the wire counts UTF-16 code units.
Past-the-end columns and lines clamp to the line's end and the document's end, as
the specification says for columns.
"""

from __future__ import annotations

import re

__all__ = [
    "LINE_BREAK",
    "clamp_column",
    "codepoints_to_utf16",
    "line_starts",
    "offset_at",
    "position_at",
    "split_lines",
    "utf16_to_codepoints",
]

LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """The text's lines as LSP counts them ("a\\n" has two: "a" and "").

    With `keepends` the lines keep their breaks and join back to `text`; a final empty
    line is then left out (as `str.splitlines(True)` does)."""
    if keepends:
        return _LINE.findall(text)
    return LINE_BREAK.split(text)


def line_starts(text: str) -> list[int]:
    """Offset of each line's first character (LSP breaks)."""
    return [0] + [m.end() for m in LINE_BREAK.finditer(text)]


def utf16_to_codepoints(line: str, column: int) -> int:
    """An LSP (UTF-16) column on `line` as a code-point column, clamped to the line.

    A column inside a surrogate pair counts as the character's end."""
    if line.isascii():
        return max(0, min(column, len(line)))
    units = 0
    for i, ch in enumerate(line):
        if units >= column:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def codepoints_to_utf16(text: str) -> int:
    """The length of `text` in UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clamp_column(line: str, column: int) -> int:
    """A UTF-16 column clamped to `line` (without its break) and moved off a pair's middle."""
    return codepoints_to_utf16(line[: utf16_to_codepoints(line, column)])


def offset_at(text: str, line: int, character: int, starts: list[int] | None = None) -> int:
    """The code-point offset of an LSP position; past-the-end lines and columns clamp."""
    starts = line_starts(text) if starts is None else starts
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    begin = starts[line]
    end = starts[line + 1] if line + 1 < len(starts) else len(text)
    content = text[begin:end].rstrip("\r\n")  # a line holds one break, at its end
    return begin + utf16_to_codepoints(content, character)


def position_at(text: str, offset: int, starts: list[int] | None = None) -> tuple[int, int]:
    """The LSP (line, UTF-16 character) of a code-point offset.

    An offset between the CR and LF of a line break counts as the line's end."""
    starts = line_starts(text) if starts is None else starts
    offset = max(0, min(offset, len(text)))
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # the last line starting at or before `offset`
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    segment = text[starts[lo] : offset]
    return lo, codepoints_to_utf16(segment.rstrip("\r"))
