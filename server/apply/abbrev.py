"""Abbreviated unchanged lines: a sketch line that stands for one original line, shortened.

Chat models shorten what they do not change: `def f(self, a, b, ...):` for a long
signature, `raise ValueError("...")` for a long message, a line without its trailing
comment. Such a line is an anchor, not new code: it matches the original lines its
pattern fits (what the ellipsis leaves out is anything; a dropped trailing comment is
allowed back), and the merge keeps the original line. A docstring written `\"\"\"...\"\"\"`
stands for a whole docstring and is a marker (`sketch.py`); right after the header of a
Python definition the original has one docstring for, it is that docstring, written out
(`expand_docstrings`): a marker would also stand for the lines after it, so a line the
sketch deletes there would be kept.

An ellipsis that is code stays code: inside square brackets (`tuple[int, ...]`,
`a[..., 0]`) or as a whole value (`x = ...`, a stub's `...` body). Any other ellipsis
elides (`elides`): such a line is never written into a file as new code.

A line without its trailing comment is an abbreviation of the line with it, so a sketch
cannot remove a trailing comment by leaving it out: chat models drop comments far more
often than they are asked to remove one.
"""

from __future__ import annotations

import ast
import re

from .syntax import header_name
from .text import indent_width

__all__ = ["abbreviation", "elides", "expand_docstrings", "matches"]

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


_DOCSTRING_STUB = re.compile(r"^\s*[rRuU]?(\"\"\"|\'\'\')\s*(?:\.\.\.|…)\s*\1\s*$")
_HEADER_LOOKBACK = 8  # lines back from a stub to its definition's header (long signatures)


def _docstrings(original: str) -> dict[str, list[tuple[int, int]]]:
    """Definition name -> the line spans [start, end) of its docstring, one per definition."""
    try:
        tree = ast.parse(original)
    except (SyntaxError, ValueError, RecursionError):
        return {}
    found: dict[str, list[tuple[int, int]]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        first = node.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
            and first.end_lineno is not None
        ):
            found.setdefault(node.name, []).append((first.lineno - 1, first.end_lineno))
    return found


def expand_docstrings(sketch: str, original: str, language: str | None) -> str:
    """`sketch` with each `\"\"\"...\"\"\"` right after a definition's header replaced by the
    original's docstring of that definition, re-indented to the stub (when the original has
    exactly one such docstring text for the name)."""
    if language != "python" or not any(_DOCSTRING_STUB.match(t) for t in sketch.split("\n")):
        return sketch
    docs = _docstrings(original)
    source = original.split("\n")
    out: list[str] = []
    for line in sketch.split("\n"):
        if _DOCSTRING_STUB.match(line):
            text = _docstring_for(out, line, docs, source)
            if text is not None:
                out.extend(text)
                continue
        out.append(line)
    return "\n".join(out)


def _docstring_for(
    before: list[str], stub: str, docs: dict[str, list[tuple[int, int]]], source: list[str]
) -> list[str] | None:
    code = [t for t in before[-_HEADER_LOOKBACK:] if t.strip()]
    if not code or not code[-1].rstrip().endswith(":"):
        return None  # not right after a header
    name = next((n for t in reversed(code) if (n := header_name(t, "python"))), None)
    spans = docs.get(name or "", [])
    texts = {tuple(source[a:b]) for a, b in spans}
    if len(texts) != 1:
        return None  # no docstring there, or several different ones: leave it a marker
    (lines,) = texts
    shift = indent_width(stub, 4) - indent_width(lines[0], 4)
    if shift == 0 or "\t" in "".join(lines):
        return list(lines)  # (the sketch's re-indentation to the file comes later)
    return [_shifted(t, shift) for t in lines]


def _shifted(line: str, shift: int) -> str:
    if not line.strip():
        return line
    if shift > 0:
        return " " * shift + line
    return line[min(-shift, len(line) - len(line.lstrip(" "))) :]
