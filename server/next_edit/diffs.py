"""Pure text-diff helpers for next edit: changed spans, minimal edits, unified diffs.

Offsets are code-point offsets into Python strings; conversion to LSP (UTF-16)
positions happens at the protocol boundary (`feature.py`).
"""

from __future__ import annotations

import difflib

import attrs

_CHUNK = 4096  # compare this many characters at a time before narrowing down


@attrs.frozen(kw_only=True)
class Change:
    """Replace `text[start:end]` of one document with `new`."""

    uri: str
    start: int
    end: int
    new: str

    def apply(self, text: str) -> str:
        return text[: self.start] + self.new + text[self.end :]

    def overlaps(self, other: Change) -> bool:
        if self.uri != other.uri:
            return False
        return self.start < other.end and other.start < self.end or self.start == other.start


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


def minimal_changes(uri: str, old: str, new: str, base: int) -> list[Change]:
    """The smallest replacements turning `old` into `new` (offsets shifted by `base`).

    Line-level opcodes first, then each replaced block trimmed to the characters
    that differ, so a one-word change is a one-word edit.
    """
    if old == new:
        return []
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    out: list[Change] = []
    starts = [0]
    for line in old_lines:
        starts.append(starts[-1] + len(line))
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        a = "".join(old_lines[i1:i2])
        b = "".join(new_lines[j1:j2])
        p, end_a, end_b = changed_span(a, b)
        at = base + starts[i1]
        out.append(Change(uri=uri, start=at + p, end=at + end_a, new=b[p:end_b]))
    return out


def unified_diff(before: str, after: str, path: str, context: int = 2) -> str:
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
