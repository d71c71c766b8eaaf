"""`DriftGuard`: stop a streaming rewrite at the first line that dooms it.

Verification refuses a rewrite that writes a line in neither the region nor the update,
writes one of the update's markers as code, or leaves out a line the update adds (the
update's lines must all be in the result, in order). A tiny greedy model that has gone
wrong rambles on until its token limit; on this CPU that is seconds for a refusal. So the
stream is cut at the line that shows it:
- a complete line in neither region nor update, or one of the update's markers;
- a kept line of the update (one the region has exactly once, the update shows once)
  written while a new line the update puts before it has not been written: the new line
  is missing, or will come out of order (`_sketch_in_order` refuses either);
- one of the update's abbreviations written as code (a line with its trailing comment
  dropped or an ellipsis for part of it, standing for a longer region line): the
  region's line is kept whole, never its abbreviation (the merge reads them so);
- a region line written between two lines the update shows together (no marker between
  them) and that is neither of them: the sketch says nothing stands there, so the model
  is keeping a line the sketch deletes or replaces (the packaged model's usual miss:
  copying the line the sketch renames). Verification would let some of these through as
  an addition, which the sketch does not show either: refused, never written.
"""

from __future__ import annotations

import functools
import re

from .abbrev import abbreviation, matches
from .sketch import parse_sketch

__all__ = ["DriftGuard"]


@functools.lru_cache(maxsize=4096)
def _pattern(sketch_line: str) -> re.Pattern[str] | None:
    return abbreviation(sketch_line)


def _same(sketch_line: str, line: str) -> bool:
    """Stripped sketch line and stripped written line are the same, or the first abbreviates
    the second (as verification compares them)."""
    return sketch_line == line or matches(_pattern(sketch_line), line)


class DriftGuard:
    """Feed it the code as it streams (no answer tags); `stopped` turns True at the first
    complete line that dooms the rewrite (see the module doc), and `code` is the text up
    to that line. Blank lines and code fences are neutral."""

    def __init__(self, original_region: str, update: str) -> None:
        region = [t.strip() for t in original_region.split("\n")]
        region_set = set(region)
        self._known = {t.strip() for t in update.split("\n")} | region_set
        parsed = parse_sketch(update, original_region).lines
        # The update's markers written as code: refused too, so a miss stops there.
        self._markers = {
            line.text.strip()
            for line in parsed
            if line.marker and line.text.strip() not in region_set
        }
        # The update's lines in order: (text, new: no region line is it, kept once: the
        # region has it once and the update shows it once).
        texts = [line.text.strip() for line in parsed if not line.marker and line.text.strip()]
        self._order: list[tuple[str, bool, bool]] = []
        for text in texts:
            seen = sum(1 for r in region if r and _same(text, r))
            self._order.append((text, seen == 0, seen == 1 and texts.count(text) == 1))
        # The update's lines that abbreviate a longer region line: written as code, wrong.
        self._abbreviations = {
            text: line
            for text in texts
            if text not in region_set
            for line in region
            if line != text and matches(_pattern(text), line)
        }
        # For each of `_order`: whether the update shows it right after the one before (no
        # marker between them); nothing may be written in such a gap.
        self._joined: list[bool] = []
        marker_seen = True  # before the first line: whatever the region has there
        for line in parsed:
            if line.marker:
                marker_seen = True
            elif line.text.strip():
                self._joined.append(not marker_seen)
                marker_seen = False
        self._next = 0  # the first of `_order` not written yet
        self._done: list[str] = []
        self._line = ""
        self.stopped = False
        self.reason: str | None = None
        # Stopped at a line that no continuation can make right (a new line skipped): the
        # caller refuses with `reason` instead of verifying what came before it.
        self.doomed = False

    def feed(self, piece: str) -> bool:
        if self.stopped:
            return True
        *complete, self._line = (self._line + piece).split("\n")
        for line in complete:
            key = line.strip()
            if key and not key.startswith("```"):
                self.reason = self._doomed(key)
                if self.reason is not None:
                    self.stopped = True
                    return True
            self._done.append(line)
        return False

    def _doomed(self, key: str) -> str | None:
        if key not in self._known or key in self._markers:
            return f"the model wrote {key[:60]!r}, in neither the region nor the sketch"
        if key in self._abbreviations:
            self.doomed = True
            return (
                f"the model wrote the sketch's abbreviation {key[:60]!r} of the line "
                f"{self._abbreviations[key][:60]!r}, which stays whole"
            )
        order, at = self._order, self._next
        if at < len(order) and _same(order[at][0], key):
            self._next = at + 1
            return None
        later = next(
            (j for j in range(at + 1, len(order)) if order[j][2] and _same(order[j][0], key)),
            None,
        )
        if later is None:
            # (the line before the gap is new or the region's only one of it: it was no
            # copy of an elided line the model is still writing)
            before = order[at - 1] if at > 0 else None
            if (
                before is not None
                and (before[1] or before[2])
                and at < len(order)
                and self._joined[at]
            ):
                self.doomed = True
                return (
                    f"the model wrote {key[:60]!r} between the sketch's lines "
                    f"{order[at - 1][0][:60]!r} and {order[at][0][:60]!r}, which it shows "
                    "together (a line the sketch deletes or changes, kept)"
                )
            return None  # a region line the update elides, copied
        skipped = next((text for text, new, _ in order[at:later] if new), None)
        if skipped is not None:
            self.doomed = True
            return (
                f"the model wrote the kept line {key[:60]!r} before the sketch's new line "
                f"{skipped[:60]!r} (left out, or out of order)"
            )
        self._next = later + 1
        return None

    @property
    def code(self) -> str:
        """The complete lines accepted so far, each with its newline."""
        return "".join(line + "\n" for line in self._done)
