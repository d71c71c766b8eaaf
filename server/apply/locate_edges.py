"""A block's pairs from its chain: the anchors, the gaps between them, and its edges.

Inside a chain, gaps are aligned with difflib. At the block's edges, matching continues
line by line outwards (up from the first anchor, down from the last: `_extend`, one loop
for both directions), then a changed line replaces its neighbour when both start the same
way, or when it is the original line with one name renamed and the rest of the block
confirms the pairing line for line (`_changes`, `_walk`); otherwise it is `uncertain`.
Blank sketch lines left at an edge facing code are a doubt, with their deletion reading
(`_blank_edge`); a block without a marker after it may replace the scope's last lines.
"""

from __future__ import annotations

import difflib

import attrs

from .line_keys import trivial
from .locate_anchors import BY_NAME
from .locate_tables import LineTables
from .placement import BlankEdge, Block, Pair

__all__ = ["Edges"]

_SKIP = 12  # new lines looked past at a block's edge


class Edges(LineTables):
    def _header_span(self, i: int, block: Block) -> int:
        """End (exclusive) of the sketch's signature starting at line i: brackets balanced."""
        depth = 0
        last = block.lines[-1]
        for k in range(i, last + 1):
            text = self.sketch.lines[k].text
            depth += sum(text.count(c) for c in "([") - sum(text.count(c) for c in ")]")
            if depth <= 0:
                return k + 1
        return i + 1

    def _expand(
        self, block: Block, chain: list[tuple[int, int, int]], lo: int, hi: int, index: int = 0
    ) -> tuple[list[Pair], list[str], list[BlankEdge]]:
        pairs: list[Pair] = []
        uncertain: list[str] = []
        edges: list[BlankEdge] = []
        taken_s: set[int] = set()
        for i, j, kind in chain:
            if i in taken_s:
                continue
            if kind == BY_NAME:
                d = self.def_at[j]
                s1 = self._header_span(i, block)
                pairs.append(Pair(i, s1, j, d.header_end + 1, False))
                taken_s.update(range(i, s1))
            else:
                if pairs and j < pairs[-1].o1:
                    continue  # inside a replaced signature
                pairs.append(Pair(i, i + 1, j, j + 1, True))
                taken_s.add(i)
        pairs = [p for k, p in enumerate(pairs) if k == 0 or p.o0 >= pairs[k - 1].o1]
        # Fill the gaps between anchors.
        filled: list[Pair] = []
        for k, pair in enumerate(pairs):
            filled.append(pair)
            if k + 1 == len(pairs):
                break
            nxt = pairs[k + 1]
            s_gap = list(range(pair.s1, nxt.s0))
            o_gap = list(range(pair.o1, nxt.o0))
            if not s_gap or not o_gap:
                continue
            matcher = difflib.SequenceMatcher(
                None,
                [self._gap_key_s(i, o_gap) for i in s_gap],
                [self._gap_key_o(j) for j in o_gap],
                autojunk=False,
            )
            for a, b, size in matcher.get_matching_blocks():
                for t in range(size):
                    if self.same(s_gap[a + t], o_gap[b + t]):
                        filled.append(
                            Pair(
                                s_gap[a + t], s_gap[a + t] + 1, o_gap[b + t], o_gap[b + t] + 1, True
                            )
                        )
        filled.sort(key=lambda p: p.s0)
        # Extend outwards line by line, then by heads.
        first, last = filled[0], filled[-1]
        code = [k for k in block.lines if self.skeys[k]]
        first_code, last_code = code[0], code[-1]
        leading, i, j = self._extend(block, first.s0 - 1, first.o0 - 1, -1, first_code, lo, hi)
        if j >= 0 and self._stray_blanks(range(block.lines[0], i + 1), j):
            reason = f"blank sketch line {i + 1} stands where original line {j + 1} is"
            uncertain.append(reason)
            if block.marker_before:
                edge = self._blank_edge(reason, range(block.lines[0], i + 1), j, -1, lo, hi)
                edges.extend([attrs.evolve(edge, block=index)] if edge else [])
        if i >= block.lines[0] and j >= lo and self._doubtful(i, j):
            uncertain.append(f"sketch line {i + 1} may change original line {j + 1} or add a line")
        trailing, i, j = self._extend(block, last.s1, last.o1, 1, last_code, lo, hi)
        if self._stray_blanks(range(i, block.lines[-1] + 1), j):
            reason = f"blank sketch line {i + 1} stands where original line {j + 1} is"
            uncertain.append(reason)
            if block.marker_after:
                edge = self._blank_edge(reason, range(i, block.lines[-1] + 1), j, 1, lo, hi)
                edges.extend([attrs.evolve(edge, block=index)] if edge else [])
        rest = self._rest_of_scope(block, i, j, hi)
        trailing.extend(
            Pair(k, k + 1, j + (k - i), j + (k - i) + 1, False) for k in range(i, i + rest)
        )
        i, j = i + rest, j + rest
        if i <= block.lines[-1] and j < hi and self._doubtful(i, j):
            uncertain.append(f"sketch line {i + 1} may change original line {j + 1} or add a line")
        return list(reversed(leading)) + filled + trailing, uncertain, edges

    def _extend(
        self, block: Block, i: int, j: int, step: int, stop: int, lo: int, hi: int
    ) -> tuple[list[Pair], int, int]:
        """Pairs from sketch line i and original line j outwards (step -1: up from the block's
        first anchor; 1: down from its last), and the lines (i, j) where pairing stopped. The
        same line or the same head pairs; new sketch lines are skipped (nothing deleted); else
        a changed line pairs when the rest of the block, up to sketch line `stop`, confirms it."""
        pairs: list[Pair] = []
        edge = block.lines[0] if step < 0 else block.lines[-1]
        while self._facing(block, i, j, step, lo, hi):
            exact = self.same(i, j)
            if exact or self._replaces(i, j):
                pairs.append(Pair(i, i + 1, j, j + 1, exact))
                i, j = i + step, j + step
                continue
            # New lines between the anchor and this original line: skip them, delete nothing.
            limit = max(edge, i - _SKIP) if step < 0 else min(edge, i + _SKIP)
            skip = next((k for k in range(i + step, limit + step, step) if self.same(k, j)), None)
            if skip is not None:
                i = skip
            elif self._changes(i, j, step, stop, lo, hi):
                pairs.append(Pair(i, i + 1, j, j + 1, False))
                i, j = i + step, j + step
            else:
                break
        return pairs, i, j

    def _facing(self, block: Block, i: int, j: int, step: int, lo: int, hi: int) -> bool:
        """Sketch line i and original line j are both still in range for `_extend`."""
        if step < 0:
            return i >= block.lines[0] and j >= lo
        # Blank lines may run past the owner's end (the blank after a function).
        return i <= block.lines[-1] and (j < hi or (j < self.bounds[1] and not self.skeys[i]))

    def _blank_edge(
        self, reason: str, blanks: range, j: int, step: int, lo: int, hi: int
    ) -> BlankEdge | None:
        """The deletion reading of blank sketch lines facing code at original line j (after the
        block's last line: step 1; before its first: step -1): the code from j to the nearest
        blank line goes, when it is whole statements (brackets balanced, j's stretch no deeper
        than its first line, the code beyond it no deeper either) and the blanks pair with the
        original's blank lines."""
        n = len(blanks)
        stop = min(hi + 1, len(self.okeys), j + _SKIP + 1) if step > 0 else max(lo, j - _SKIP) - 1
        blank = next((k for k in range(j, stop, step) if not self.okeys[k]), None)
        if blank is None:
            return None
        near = range(blank, blank + n) if step > 0 else range(blank - n + 1, blank + 1)
        if near[0] < lo or near[-1] >= len(self.okeys) or any(self.okeys[k] for k in near):
            return None
        a, b = (j, blank) if step > 0 else (blank + 1, j + 1)
        code = [k for k in range(a, b) if self.okeys[k]]
        widths = [self._width_o(k) for k in code]
        text = "".join(self.okeys[k] for k in code)
        if min(widths) < widths[0] or sum(text.count(c) for c in "([{") != sum(
            text.count(c) for c in ")]}"
        ):
            return None
        # The code on either side of the stretch is no shallower (then the stretch would open
        # a body, as after a signature) and no deeper (then it would close one).
        before = next((k for k in range(a - 1, -1, -1) if self.okeys[k]), None)
        if before is not None and self._width_o(before) < widths[0]:
            return None
        beyond = next((k for k in range(b, len(self.okeys)) if self.okeys[k]), None)
        if beyond is not None and self._width_o(beyond) > widths[0]:
            return None
        pairs = tuple(Pair(s, s + 1, o, o + 1, True) for s, o in zip(blanks, near, strict=True))
        return BlankEdge(reason=reason, blanks=tuple(blanks), pairs=pairs, deleted=(a, b), block=0)

    def _stray_blanks(self, rest: range, j: int) -> bool:
        """Only blank lines left at a block's edge, facing code: a deletion, or nothing? Unsure."""
        return (
            len(rest) > 0
            and all(not self.skeys[k] for k in rest)
            and j < len(self.okeys)
            and bool(self.okeys[j])
        )

    def _rest_of_scope(self, block: Block, i: int, j: int, hi: int) -> int:
        """How many of the block's last lines (from i) replace the original's last lines of the
        scope (from j): when no marker follows and both have the same number of lines left."""
        if block.marker_after or i > block.lines[-1]:
            return 0
        s_end = block.lines[-1] + 1
        while s_end > i and not self.skeys[s_end - 1]:
            s_end -= 1
        o_end = hi
        while o_end > j and not self.okeys[o_end - 1]:
            o_end -= 1
        count = s_end - i
        if count <= 0 or count != o_end - j:
            return 0
        similar = any(
            difflib.SequenceMatcher(None, self.skeys[i + k], self.okeys[j + k]).ratio() >= 0.6
            for k in range(count)
        )
        return count if similar else 0

    def _changes(self, i: int, j: int, step: int, stop: int, lo: int, hi: int) -> bool:
        """At a block's edge, sketch line i faces original line j, which it resembles (renamed,
        or close) without being it: whether i changes j rather than adds a line. Yes when the
        rest of the block (to sketch line `stop`) then pairs with the original line for line,
        confirmed by at least one line (the same, or renamed alike), and no when reading i as a
        new line explains the rest as well."""
        if not (lo <= j < hi) or (stop - i) * step <= 0 or not self._doubtful(i, j):
            return False
        pair = self._renamed(i, j)
        if self._walk(i + step, j + step, step, stop, (lo, hi), pair) <= 0:
            return False
        return self._walk(i + step, j, step, stop, (lo, hi), pair) <= 0

    def _walk(
        self,
        i: int,
        j: int,
        step: int,
        stop: int,
        span: tuple[int, int],
        pair: tuple[str, str] | None,
    ) -> int:
        """Sketch lines i..stop against original lines j.. (both moving by `step`): -1 when one
        of them is neither the same line, nor the same head, nor renamed by `pair`; otherwise
        how many confirm the pairing (non-trivial lines the same, or renamed by `pair`)."""
        confirmed = 0
        while (stop - i) * step >= 0:
            if not span[0] <= j < span[1]:
                return -1
            if self.same(i, j):
                confirmed += int(bool(self.skeys[i]) and not trivial(self.skeys[i]))
            elif pair is not None and self._renamed(i, j) == pair:
                confirmed += 1
            elif not self._replaces(i, j):
                return -1
            i, j = i + step, j + step
        return confirmed
