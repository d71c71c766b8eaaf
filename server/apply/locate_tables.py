"""The line tables placement looks things up in, and its line-to-line comparisons.

`LineTables` holds, for one original and one sketch, the stripped keys of both, where each
key occurs in the original (within bounds), the original lines each abbreviated sketch
line may stand for, the definitions by header line and by name, and the re-indentation
learned from lines found once. On those: whether a sketch line is an original line
(`same`), replaces it (same head), is it renamed, or might change it (`_doubtful`); the
extent of an original block and the owner of a sketch block. The search (`locate.py`)
and its parts (`locate_anchors.py`, `locate_edges.py`, `locate_defs.py`) build on it.
"""

from __future__ import annotations

import difflib
import re

from .abbrev import abbreviation, matches
from .line_keys import NAME_USE, head, renamed, trivial
from .placement import Block
from .sketch import Sketch
from .syntax import Definition, header_name
from .text import Reindent, indent_style, indent_width

__all__ = ["LineTables"]


class LineTables:
    def __init__(
        self,
        original: tuple[str, ...],
        sketch: Sketch,
        defs: list[Definition],
        language: str | None,
        bounds: tuple[int, int],
    ) -> None:
        self.orig = original
        self.sketch = sketch
        self.language = language
        self.bounds = bounds
        self.okeys = [line.strip() for line in original]
        self.skeys = [line.text.strip() for line in sketch.lines]
        # Names the sketch's code uses (a comment that still mentions a renamed name is prose,
        # and `self.name` is an attribute, not the variable).
        self.snames = {
            name
            for line, key in zip(sketch.lines, self.skeys, strict=True)
            if not line.marker and not key.startswith(("#", "//", "/*", "*"))
            for name in NAME_USE.findall(line.text)
        }
        self.occ: dict[str, list[int]] = {}
        for j, key in enumerate(self.okeys):
            if bounds[0] <= j < bounds[1]:
                self.occ.setdefault(key, []).append(j)
        # Abbreviated lines (`def f(self, a, ...):`, a dropped trailing comment): the original
        # lines each one may stand for.
        self.abbrev: dict[int, re.Pattern[str]] = {}
        self.abbrev_occ: dict[int, list[int]] = {}
        for i, key in enumerate(self.skeys):
            if sketch.lines[i].marker:
                continue
            pattern = abbreviation(key)
            found = [j for j in range(*bounds) if matches(pattern, self.okeys[j])]
            if pattern is not None and found:
                self.abbrev[i], self.abbrev_occ[i] = pattern, found
        self.defs = defs
        self.def_at: dict[int, Definition] = {}
        for d in defs:
            self.def_at.setdefault(d.header, d)
        self.by_name: dict[str, list[Definition]] = {}
        for d in defs:
            self.by_name.setdefault(d.name, []).append(d)
        self.ostyle = indent_style(original)
        self.sstyle = indent_style([line.text for line in sketch.lines if not line.marker])
        self.reindent = self._learn_reindent()

    # -- indentation ---------------------------------------------------------------------
    def _learn_reindent(self) -> Reindent:
        pairs = []
        for i, key in enumerate(self.skeys):
            if self.sketch.lines[i].marker or trivial(key):
                continue
            found = self._found(i)
            if len(found) == 1:
                pairs.append((self.orig[found[0]], self.sketch.lines[i].text))
            name = header_name(self.sketch.lines[i].text, self.language)
            named = self.by_name.get(name or "", [])
            if not found and len(named) == 1:  # a changed signature still shows the depth
                pairs.append((self.orig[named[0].header], self.sketch.lines[i].text))
        return Reindent.learn(self.ostyle, self.sstyle, pairs)

    def _width_o(self, j: int) -> int:
        return indent_width(self.orig[j], self.ostyle.unit)

    def _found(self, i: int) -> list[int]:
        """The original lines (within bounds) sketch line i is, or may abbreviate."""
        same = self.occ.get(self.skeys[i], [])
        if i not in self.abbrev:
            return same
        return sorted({*same, *self.abbrev_occ[i]})

    def same(self, i: int, j: int) -> bool:
        """Sketch line i is original line j (trivial lines must also sit at the same depth)."""
        key = self.skeys[i]
        if key != self.okeys[j]:
            return matches(self.abbrev.get(i), self.okeys[j])
        if key and trivial(key):
            return self.reindent.width(self.sketch.lines[i].text) == self._width_o(j)
        return True

    # -- scope ---------------------------------------------------------------------------
    def _extent(self, j: int) -> int:
        """End (exclusive) of the original block headed by line j."""
        d = self.def_at.get(j)
        if d is not None:
            return d.end
        base = self._width_o(j)
        end = j + 1
        for k in range(j + 1, len(self.orig)):
            if not self.okeys[k]:
                continue
            width = self._width_o(k)
            if width > base:
                end = k + 1
                continue
            if width == base and self.okeys[k][:1] in ("}", ")", "]"):
                end = k + 1
            break
        return end

    def _owner(self, block: Block) -> int | None:
        """The nearest earlier sketch line less indented than the block."""
        widths = [
            indent_width(self.sketch.lines[i].text, self.reindent.sketch_tab)
            for i in block.lines
            if self.skeys[i]
        ]
        least = min(widths)
        for i in range(block.lines[0] - 1, -1, -1):
            line = self.sketch.lines[i]
            if line.marker or not self.skeys[i]:
                continue
            if indent_width(line.text, self.reindent.sketch_tab) < least:
                return i
        return None

    # -- one line against another --------------------------------------------------------
    def _gap_key_s(self, i: int, o_gap: list[int]) -> str:
        if i in self.abbrev:  # an abbreviation aligns with the one line of the gap it fits
            fits = [j for j in o_gap if self.same(i, j)]
            if len(fits) == 1:
                return self._gap_key_o(fits[0])
        key = self.skeys[i]
        return (
            f"{self.reindent.width(self.sketch.lines[i].text)}|{key}"
            if trivial(key) and key
            else key
        )

    def _gap_key_o(self, j: int) -> str:
        key = self.okeys[j]
        return f"{self._width_o(j)}|{key}" if trivial(key) and key else key

    def _replaces(self, i: int, j: int) -> bool:
        if not self.skeys[i] or not self.okeys[j]:
            return False
        h = head(self.sketch.lines[i].text)
        return h is not None and h == head(self.orig[j])

    def _renamed(self, i: int, j: int) -> tuple[str, str] | None:
        """Sketch line i is original line j with one name renamed, and the sketch uses the old
        name nowhere (where it still does, the line is more likely a new, similar one)."""
        pair = renamed(self.skeys[i], self.okeys[j])
        return pair if pair is not None and pair[0] not in self.snames else None

    def _doubtful(self, i: int, j: int) -> bool:
        a, b = self.skeys[i], self.okeys[j]
        if not a or not b or trivial(a):
            return False
        if self._renamed(i, j) is not None:
            return True  # a renamed line is a changed line as often as a new one
        if head(self.sketch.lines[i].text) is not None and head(self.orig[j]) is not None:
            return False  # different heads: a new line, for sure
        return difflib.SequenceMatcher(None, a, b).ratio() >= 0.75
