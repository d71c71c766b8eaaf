"""Whether a change's place is proven: a deletion the file itself contradicts.

A sketch shows a deletion only by leaving lines out: its kept line P stands right above
its kept line Q, so whatever lay between them at the place edited is gone. That reading
is proof only if the place is the one the sketch means. When the original also has P
directly followed by Q somewhere else (a twin: `Wave_read.initfp` and
`Wave_write.initfp`, one with a line more), the sketch fits that other place as it is,
with nothing deleted, and an edit that deletes at this place cannot be told from an edit
at the wrong twin. Either reading may be what was meant, so neither is verified.

P may be a line the edit changes (`def f(self, a):` → `def f(self, a, b=0):`): the
sketch shows its new text, placed over the old one, so the old text is what must stand
above Q. Blank lines are skipped on both sides (spacing is no evidence of place).
"""

from __future__ import annotations

import difflib
import keyword
import re

from .line_keys import head, renamed
from .text import Lines

__all__ = ["deletion_fits_elsewhere"]

_SIMILAR = 0.6  # an old line this close to a new one in the same hunk was changed, not deleted
_WORD = re.compile(r"[A-Za-z_]\w*")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_KEYWORDS = frozenset(keyword.kwlist) | {"self", "cls"}


def _changed_into(old: str, new: list[str], used: set[int]) -> bool:
    """Whether old line `old` (stripped) is one of `new`'s lines not `used` yet, edited: the
    same definition, one name renamed, or most tokens kept with a name in common (`if x:` and
    `if y:` share only a keyword: the second is a new line, the first deleted)."""
    mark = head(old)
    words = set(_WORD.findall(old)) - _KEYWORDS
    tokens = _TOKEN.findall(old)
    for k, line in enumerate(new):
        if k in used:
            continue
        same_def = mark is not None and mark[0] == "def" and head(line) == mark
        close = bool(words & set(_WORD.findall(line))) and (
            difflib.SequenceMatcher(None, tokens, _TOKEN.findall(line), autojunk=False).ratio()
            >= _SIMILAR
        )
        if same_def or close or renamed(line, old) is not None:
            used.add(k)
            return True
    return False


def _next_code(lines: list[str], k: int) -> int | None:
    while k < len(lines) and not lines[k]:
        k += 1
    return k if k < len(lines) else None


def _prev_code(lines: list[str], k: int) -> int | None:
    while k >= 0 and not lines[k]:
        k -= 1
    return k if k >= 0 else None


def _distinct(text: str) -> bool:
    """A line worth taking as evidence of place (not `return`, `else:`, `}`)."""
    return len(text) >= 8 and any(ch.isalpha() for ch in text)


def deletion_fits_elsewhere(old_lines: Lines, new_lines: Lines) -> str | None:
    """The reason, when the result deletes original lines between P and Q while P stands
    directly above Q elsewhere in the original (see the module doc); else None."""
    old = [t.strip() for t in old_lines.text]
    new = [t.strip() for t in new_lines.text]
    a = 0
    while a < min(len(old), len(new)) and old[a] == new[a]:
        a += 1
    tail = 0
    while tail < min(len(old), len(new)) - a and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    if a == len(old) - tail:
        return None  # nothing original removed
    following: dict[str, set[str]] = {}  # P -> every Q that directly follows a P
    matcher = difflib.SequenceMatcher(
        None, old[a : len(old) - tail], new[a : len(new) - tail], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag not in ("delete", "replace"):
            continue
        added = [t for t in new[a + j1 : a + j2] if t]
        used: set[int] = set()
        gone = [
            a + i
            for i in range(i1, i2)
            if old[a + i] and not (tag == "replace" and _changed_into(old[a + i], added, used))
        ]
        for k in gone:
            p, q = _prev_code(old, k - 1), _next_code(old, k + 1)
            # P and Q: the nearest lines around the deletion that are not deleted themselves.
            while p is not None and p in gone:
                p = _prev_code(old, p - 1)
            while q is not None and q in gone:
                q = _next_code(old, q + 1)
            if p is None or q is None or not (_distinct(old[p]) or _distinct(old[q])):
                continue
            if not following:
                for m, text in enumerate(old):
                    n = _next_code(old, m + 1) if text else None
                    if n is not None:
                        following.setdefault(text, set()).add(old[n])
            if old[q] not in following.get(old[p], set()):
                continue
            return (
                f"the edit deletes original line {k + 1} ({old[k][:50]!r}) between "
                f"{old[p][:40]!r} and {old[q][:40]!r}, but elsewhere the original has those two "
                "lines together: the sketch fits there without deleting anything, so its place "
                "is not certain; select the code to change"
            )
    return None
