"""From original and result to the smallest LSP TextEdits, and a unified diff for people.

Lines are compared with difflib (after trimming the common head and tail, so a
10k-line file costs what its changed stretch costs); each changed stretch is then
trimmed to its differing characters. Positions are LSP's (`server.positions`:
lines broken at \\n, \\r\\n and \\r, UTF-16 code unit columns). An edit never
starts or ends between the CR and LF of a line ending.
"""

from __future__ import annotations

import difflib

import attrs

from lowentropy.server import positions

from .text import split_lines

__all__ = ["TextEditSpec", "minimal_edits", "unified_diff"]


@attrs.frozen
class TextEditSpec:
    """Replace [start, end) of the original, in LSP coordinates, with `new_text`."""

    start_line: int
    start_char_utf16: int
    end_line: int
    end_char_utf16: int
    new_text: str


def _with_endings(text: str) -> list[str]:
    lines = split_lines(text)
    return [lines.text[k] + lines.eols[k] for k in range(len(lines.text))]


def _trim(old: str, new: str) -> tuple[int, int]:
    """Lengths of the common prefix and suffix of old and new, not splitting a CRLF."""
    limit = min(len(old), len(new))
    head = 0
    while head < limit and old[head] == new[head]:
        head += 1
    if 0 < head < len(old) and old[head - 1] == "\r" and old[head] == "\n":
        head -= 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    if 0 < tail < len(old) and old[-tail] == "\n" and old[-1 - tail] == "\r":
        tail -= 1
    return head, tail


def minimal_edits(original: str, result: str) -> list[TextEditSpec]:
    """Non-overlapping edits, in document order, that turn `original` into `result`."""
    old, new = _with_endings(original), _with_endings(result)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    line_starts = [0]
    for line in old:
        line_starts.append(line_starts[-1] + len(line))
    lsp_starts = positions.line_starts(original)

    def position(offset: int) -> tuple[int, int]:
        return positions.position_at(original, offset, lsp_starts)

    matcher = difflib.SequenceMatcher(
        None, old[head : len(old) - tail], new[head : len(new) - tail], autojunk=False
    )
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old_text = "".join(old[head + i1 : head + i2])
        new_text = "".join(new[head + j1 : head + j2])
        prefix, suffix = _trim(old_text, new_text)
        start = line_starts[head + i1] + prefix
        end = line_starts[head + i2] - suffix
        (sl, sc), (el, ec) = position(start), position(end)
        edits.append(TextEditSpec(sl, sc, el, ec, new_text[prefix : len(new_text) - suffix]))
    return edits


def unified_diff(original: str, result: str, path: str, context: int = 3) -> str:
    """A unified diff with `a/path` and `b/path` headers ('\\ No newline at end of file' as git)."""
    old, new = _with_endings(original), _with_endings(result)
    lines = []
    for line in difflib.unified_diff(old, new, fromfile=f"a/{path}", tofile=f"b/{path}", n=context):
        if line.endswith("\n"):
            lines.append(line)
        else:
            lines.append(line + "\n\\ No newline at end of file\n")
    return "".join(lines)
