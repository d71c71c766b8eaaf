"""Abbreviated unchanged lines: a sketch line that stands for one original line, shortened.

Chat models shorten what they do not change: `def f(self, a, b, ...):` for a long
signature, `raise ValueError("...")` for a long message, a line without its trailing
comment. Such a line is an anchor, not new code: it matches the original lines its
pattern fits (what the ellipsis leaves out is anything; a dropped trailing comment is
allowed back), and the merge keeps the original line. A docstring written `\"\"\"...\"\"\"`
stands for a whole docstring and is a marker (`sketch.py`).

An ellipsis that is code stays code: inside square brackets (`tuple[int, ...]`,
`a[..., 0]`) or as a whole value (`x = ...`, a stub's `...` body). Any other ellipsis
elides (`elides`): such a line is never written into a file as new code.

A line without its trailing comment is an abbreviation of the line with it, so a sketch
cannot remove a trailing comment by leaving it out: chat models drop comments far more
often than they are asked to remove one.
"""

from __future__ import annotations

import re

__all__ = ["abbreviation", "elides", "matches"]

_ELLIPSIS = re.compile(r"\.\.\.|…")
# `[...`, `..., ]`-style subscripts and `= ...` values: Python's own Ellipsis.
_CODE_ELLIPSIS = re.compile(r"(?:\[\s*|,\s*)(?:\.\.\.|…)\s*[\],]|=\s*(?:\.\.\.|…)\s*$")
_TRAILING_COMMENT = r"(?:\s+(?:#|//).*)?"


def elides(key: str) -> bool:
    """Whether stripped line `key` has an ellipsis that leaves code out (not Python's own)."""
    if not key or key.startswith(("#", "//", "/*")) or _CODE_ELLIPSIS.search(key):
        return False
    pieces = _ELLIPSIS.split(key)
    return len(pieces) > 1 and any(piece.strip() for piece in pieces)


def abbreviation(key: str) -> re.Pattern[str] | None:
    """A pattern for the stripped original lines that stripped sketch line `key` may stand for,
    or None when it abbreviates nothing (a comment, nothing but dots)."""
    if not key or key.startswith(("#", "//", "/*")):
        return None
    if not elides(key):
        if _ELLIPSIS.fullmatch(key.strip(" ,;")):
            return None  # nothing but dots: a marker's business, not an anchor's
        return re.compile(re.escape(key) + r"\s+(?:#|//)\s*\S.*")  # a trailing comment dropped
    body = ".+?".join(re.escape(piece) for piece in _ELLIPSIS.split(key))
    return re.compile(body + _TRAILING_COMMENT)


def matches(pattern: re.Pattern[str] | None, key: str) -> bool:
    return pattern is not None and pattern.fullmatch(key) is not None
