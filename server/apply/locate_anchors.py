"""Where a block may go: its distinctive lines found in the original (seeds), chained.

Seeds are sketch lines found in range: the same stripped line (at the sketch's depth, or at
another), or a definition header by name when the signature changed. The best monotone
chain of seeds scores each match and charges gaps that a block's contiguity does not
explain; `_candidates` takes chains one after another (the seeds a chain spans removed)
while they may tie with the best.
"""

from __future__ import annotations

import bisect

from .line_keys import trivial
from .locate_tables import LineTables
from .placement import Block
from .syntax import header_name

__all__ = ["BEAM", "BY_NAME", "MAX_TIED", "TIE", "Anchors"]

_MAX_OCCURRENCES = 40  # a line found more often than this in range is no anchor
TIE = 1e-6
BEAM = 6
MAX_TIED = 64  # tied placements followed at most (the rest are cut, and reported as ties)
BY_NAME = 2  # seed kinds: 0 same line, 1 same line at another depth, 2 header by name
_WEIGHTS = (1.0, 0.8, 0.9)


class Anchors(LineTables):
    def _seeds(self, block: Block, lo: int, hi: int, anchored: bool) -> list[tuple[int, int, int]]:
        seeds: list[tuple[int, int, int]] = []
        for i in block.lines:
            key = self.skeys[i]
            if trivial(key):
                continue
            found = self._found(i)
            a, b = bisect.bisect_left(found, lo), bisect.bisect_left(found, hi)
            if 0 < b - a <= _MAX_OCCURRENCES:
                width = self.reindent.width(self.sketch.lines[i].text)
                seeds.extend((i, j, 0 if self._width_o(j) == width else 1) for j in found[a:b])
            elif b - a == 0:
                name = header_name(self.sketch.lines[i].text, self.language)
                for d in self.by_name.get(name or "", []):
                    if lo <= d.header < hi and name:
                        seeds.append((i, d.header, BY_NAME))
        if not seeds and anchored:
            # Only short lines to go by (`pass`, `}`), after an anchored block: at their depth.
            for i in block.lines:
                key = self.skeys[i]
                if not key or not trivial(key):
                    continue
                found = self.occ.get(key, [])
                a, b = bisect.bisect_left(found, lo), bisect.bisect_left(found, hi)
                seeds.extend((i, j, 0) for j in found[a:b] if self.same(i, j))
        seeds.sort()
        return seeds

    @staticmethod
    def _chain(seeds: list[tuple[int, int, int]]) -> tuple[float, list[tuple[int, int, int]]]:
        """The best monotone chain: 1 per exact seed (0.8 at another depth than the sketch's),
        0.9 per header found by name, gaps cost."""
        best: list[float] = []
        back: list[int] = []
        for s, (i, j, kind) in enumerate(seeds):
            weight = _WEIGHTS[kind]
            top, arg = weight, -1
            for p in range(s):
                pi, pj, _ = seeds[p]
                if pi >= i or pj >= j:
                    continue
                di, dj = i - pi, j - pj
                cost = (
                    0.0 if di == dj else (0.05 + 0.02 * (dj - di) if dj > di else 0.02 * (di - dj))
                )
                value = best[p] - cost + weight
                if value > top + TIE:
                    top, arg = value, p
            best.append(top)
            back.append(arg)
        if not seeds:
            return 0.0, []
        end = max(range(len(seeds)), key=lambda s: (best[s], -seeds[s][1]))
        chain = []
        while end >= 0:
            chain.append(seeds[end])
            end = back[end]
        chain.reverse()
        return best[seeds.index(chain[-1])], chain

    def _candidates(
        self, block: Block, lo: int, hi: int, anchored: bool
    ) -> list[tuple[float, list[tuple[int, int, int]]]]:
        seeds = self._seeds(block, lo, hi, anchored)
        found: list[tuple[float, list[tuple[int, int, int]]]] = []
        while seeds:
            score, chain = self._chain(seeds)
            if len(found) >= BEAM and (len(found) >= MAX_TIED or score < found[0][0] - TIE):
                break  # beyond the beam, only chains tied with the first are worth having
            found.append((score, chain))
            first, last = chain[0][1], chain[-1][1]
            seeds = [s for s in seeds if not first <= s[1] <= last]
        found.sort(key=lambda c: (-c[0], c[1][0][1]))
        return found
