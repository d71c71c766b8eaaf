"""Text edits for every feature: smallest replacements, LSP TextEdits, unified diffs.

`replacements` is the one minimal diff: lines are compared with difflib (after
trimming the common head and tail, so a 10k-line file costs what its changed
stretch costs), then each changed stretch is trimmed to its differing
characters. Lines end at "\\n" only, each keeping its ending, and an edit never
starts or ends between the CR and LF of a line ending. Apply turns the
replacements into LSP positions (`minimal_edits`, UTF-16 columns through
`server.positions`); next edit into its `Change`s (`next_edit.diffs`).

Two diffs for two readers: `unified_diff` is a whole file's, git-style, for
people (Apply's preview); `region_diff` is one changed region's with two lines
of context and no end-of-file marker, the form next edit's prompt shows the
model, computed without diffing the whole file.
"""

from __future__ import annotations

import difflib

import attrs

from lowentropy.server import positions

__all__ = [
    "TextEditSpec",
    "changed_span",
    "common_prefix",
    "common_suffix",
    "minimal_edits",
    "region_diff",
    "replacements",
    "unified_diff",
]

_CHUNK = 4096  # compare this many characters at a time before narrowing down


@attrs.frozen
class TextEditSpec:
    """Replace [start, end) of the original, in LSP coordinates, with `new_text`."""

    start_line: int
    start_char_utf16: int
    end_line: int
    end_char_utf16: int
    new_text: str


def _with_endings(text: str) -> list[str]:
    """Lines split at "\\n" (not `str.splitlines`, which also breaks at form feeds and
    U+2028), each with its own ending, so joined they give `text` back."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


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


def replacements(original: str, result: str) -> list[tuple[int, int, str]]:
    """(start, end, new text) in code points of `original`, non-overlapping, in document
    order, that turn `original` into `result`."""
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
    matcher = difflib.SequenceMatcher(
        None, old[head : len(old) - tail], new[head : len(new) - tail], autojunk=False
    )
    out = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old_text = "".join(old[head + i1 : head + i2])
        new_text = "".join(new[head + j1 : head + j2])
        prefix, suffix = _trim(old_text, new_text)
        start = line_starts[head + i1] + prefix
        end = line_starts[head + i2] - suffix
        out.append((start, end, new_text[prefix : len(new_text) - suffix]))
    return out


def minimal_edits(original: str, result: str) -> list[TextEditSpec]:
    """Non-overlapping LSP edits, in document order, that turn `original` into `result`."""
    starts = positions.line_starts(original)
    edits = []
    for start, end, text in replacements(original, result):
        (sl, sc) = positions.position_at(original, start, starts)
        (el, ec) = positions.position_at(original, end, starts)
        edits.append(TextEditSpec(sl, sc, el, ec, text))
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


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, comparing in C-speed chunks."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + _CHUNK] == b[i : i + _CHUNK]:
        i += _CHUNK
    if i >= n:
        return n
    hi = min(i + _CHUNK, n)
    while i < hi and a[i] == b[i]:
        i += 1
    return i


def common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the longest common suffix, at most `limit`."""
    la, lb = len(a), len(b)
    k = 0
    while k + _CHUNK <= limit and a[la - k - _CHUNK : la - k] == b[lb - k - _CHUNK : lb - k]:
        k += _CHUNK
    while k < limit and a[la - k - 1] == b[lb - k - 1]:
        k += 1
    return k


def changed_span(before: str, after: str) -> tuple[int, int, int]:
    """(start, end in `before`, end in `after`) of the one region that differs."""
    p = common_prefix(before, after)
    s = common_suffix(before, after, min(len(before), len(after)) - p)
    return p, len(before) - s, len(after) - s


def region_diff(before: str, after: str, path: str, context: int = 2) -> str:
    """A unified diff of one changed region with correct line numbers, or "" when equal."""
    if before == after:
        return ""
    start, end_b, end_a = changed_span(before, after)
    first = before.count("\n", 0, start)
    line_start = before.rfind("\n", 0, start) + 1
    # Whole lines around the change, plus `context` lines each side.
    lo = line_start
    for _ in range(context):
        if lo == 0:
            break
        lo = before.rfind("\n", 0, lo - 1) + 1
        first -= 1
    hi_b = max(_line_end(before, end_b, context), len(before) - (len(after) - end_a))
    tail = len(before) - hi_b
    old_lines = before[lo:hi_b].splitlines()
    new_lines = after[lo : len(after) - tail].splitlines()
    # difflib's own ---/+++ lines are dropped: ours carry the path.
    body = list(difflib.unified_diff(old_lines, new_lines, lineterm="", n=context))[2:]
    out = [f"--- a/{path}", f"+++ b/{path}"]
    for line in body:
        if line.startswith("@@"):
            line = _shift_hunk(line, first)
        out.append(line)
    return "\n".join(out) + "\n"


def _line_end(text: str, offset: int, context: int) -> int:
    """The end of the line holding `offset`, plus `context` more lines (newline included)."""
    pos = offset
    for _ in range(context + 1):
        nl = text.find("\n", pos)
        if nl == -1:
            return len(text)
        pos = nl + 1
    return pos


def _shift_hunk(header: str, first: int) -> str:
    """Shift a hunk header's line numbers by the region's first line (0-based)."""
    parts = header.split(" ")
    for i in (1, 2):
        sign = parts[i][0]
        nums = parts[i][1:].split(",")
        nums[0] = str(int(nums[0]) + first)
        parts[i] = sign + ",".join(nums)
    return " ".join(parts)
