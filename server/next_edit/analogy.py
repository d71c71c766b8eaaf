"""The same edit again at another line: edit 1's change carried over by analogy, no model.

Two ways, tried in order on the chosen line:

- the line has the shape edit 1's old line had (token for token): each token
  edit 1 replaced, inserted or deleted is replaced, inserted or deleted there
  too, provided the tokens it replaced are the same there (`foo(a, b)` ->
  `foo(a, b, c=1)` turns `foo(x, y)` into `foo(x, y, c=1)`);
- the words edit 1 replaced occur on the line: they are replaced the same way
  (the peer "repeat the substitution", but at the ranked place).

Pure: texts in, one `(start, end, new)` or None out.
"""

from __future__ import annotations

import difflib
import re

from lowentropy.server.text_edits import changed_span

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
_WORD = re.compile(r"\w")
MAX_SUBSTITUTION = 200


def _line_bounds(text: str, offset: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return start, len(text) if end < 0 else end


def _edited_lines(before: str, after: str) -> tuple[str, str] | None:
    """Edit 1's old and new line when it changed one line into one line."""
    start, end_b, end_a = changed_span(before, after)
    if "\n" in before[start:end_b] or "\n" in after[start:end_a]:
        return None
    b0, b1 = _line_bounds(before, start)
    a0, a1 = _line_bounds(after, start)
    return before[b0:b1], after[a0:a1]


def _by_shape(old: str, new: str, line: str) -> str | None:
    o, n, c = _TOKEN.findall(old.strip()), _TOKEN.findall(new.strip()), _TOKEN.findall(line.strip())
    if len(o) != len(c):
        return None
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=o, b=n, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(c[i1:i2])
        elif tag == "insert":
            out.extend(n[j1:j2])
        elif o[i1:i2] == c[i1:i2]:
            out.extend(n[j1:j2])
        else:
            return None  # edit 1 changed a token this line does not have
    indent = line[: len(line) - len(line.lstrip())]
    result = indent + "".join(out) + line[len(line.rstrip()) :]
    return None if result == line else result


def _by_words(before: str, after: str, line: str, rest: str) -> str | None:
    """`line` (and `rest`, the text after it up to the old text's length) with the words
    edit 1 replaced replaced the same way."""
    start, end_b, end_a = changed_span(before, after)
    while start > 0 and _WORD.match(before[start - 1]):
        start -= 1
    while end_b < len(before) and _WORD.match(before[end_b]):
        end_b += 1
        end_a += 1
    old, new = before[start:end_b], after[start:end_a]
    if not old.strip() or len(old) > MAX_SUBSTITUTION:
        return None
    # A multi-line change is looked for from the line on (it spans the lines after it).
    m = re.compile(rf"(?<!\w){re.escape(old)}(?!\w)").search(line + rest)
    if m is None or m.start() >= len(line):
        return None
    return (line + rest)[: m.start()] + new + (line + rest)[m.end() :]


def analogous_edit(before: str, after: str, line_start: int) -> tuple[int, int, str] | None:
    """Edit 1 (`before` -> `after`) repeated on the line of `after` starting at `line_start`:
    (start, end, new text) replacing that line's text, or None."""
    if before == after:
        return None
    s, e = _line_bounds(after, line_start)
    line = after[s:e]
    pair = _edited_lines(before, after)
    done = _by_shape(pair[0], pair[1], line) if pair is not None else None
    if done is None:
        rest = after[e : e + MAX_SUBSTITUTION]
        words = _by_words(before, after, line, rest)
        if words is not None:
            line, e = line + rest, e + len(rest)
            done = words
    if done is None or done == line:
        return None
    p = 0  # narrow to the changed part: a small edit, not the whole line
    while p < min(len(line), len(done)) and line[p] == done[p]:
        p += 1
    q = 0
    while q < min(len(line), len(done)) - p and line[-1 - q] == done[-1 - q]:
        q += 1
    return s + p, e - q, done[p : len(done) - q]
