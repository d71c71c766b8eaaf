"""Stops a streamed answer where a greedy model starts repeating itself.

Small models decoded greedily fall into loops: the same sentence or line,
again and again, until the token limit. `LoopGuard` sits between the model's
stream and the client. It splits the text into units (lines; in prose also
sentences, which end at `.`, `?` or `!` before a space) and stops the answer at
the first unit of `MIN_CHARS` or more that the answer already gave.

The repeat never reaches the client: while the unit being written is still
the start of one already given, its text is held back, and it is sent only
once it turns out different. Short units ("}", "else:") repeat in real code
and are never taken for a loop; inside a ``` fence only whole lines count,
since a code line's `. ` is no sentence end.
"""

from __future__ import annotations

import re

import attrs

# A sentence ends at . ? or ! followed by whitespace (the whitespace starts the next unit).
_SENTENCE_END = re.compile(r"[.?!](?=\s)")


@attrs.frozen
class Fed:
    """What to send on, and whether generation should stop here."""

    text: str
    stop: bool = False


@attrs.define
class LoopGuard:
    MIN_CHARS = 40

    _unit: str = ""  # the unit being written, since the last boundary
    _sent: int = 0  # how much of it the client has already been sent
    _line_start: bool = True  # the current unit starts a line
    _in_fence: bool = False
    _seen: set[str] = attrs.field(factory=set)
    _stopped: bool = False

    def feed(self, piece: str) -> Fed:
        """Takes the next streamed piece; says what may go to the client now."""
        if self._stopped:
            return Fed("", stop=True)
        out: list[str] = []
        self._unit += piece
        while (end := self._boundary()) is not None:
            unit, self._unit = self._unit[:end], self._unit[end:]
            key = unit.strip()
            if len(key) >= self.MIN_CHARS:
                if key in self._seen:
                    self._stopped = True
                    return Fed("".join(out), stop=True)
                self._seen.add(key)
            sent = min(self._sent, end)
            out.append(unit[sent:])
            self._sent -= sent
            if self._line_start and key.startswith("```"):
                self._in_fence = not self._in_fence
            self._line_start = unit.endswith("\n")
        if self._sent or not self._repeating(self._unit):
            out.append(self._unit[self._sent :])
            self._sent = len(self._unit)
        return Fed("".join(out))

    def finish(self) -> str:
        """The held-back rest at the end of the stream: dropped if it repeats."""
        if self._stopped:
            return ""
        held = not self._sent
        if held and len(self._unit.strip()) >= self.MIN_CHARS and self._repeating(self._unit):
            return ""  # a repeat cut short by the token limit
        return self._unit[self._sent :]

    def _boundary(self) -> int | None:
        """End of the first complete unit in the text not yet split off."""
        newline = self._unit.find("\n")
        line_end = newline + 1 if newline >= 0 else None
        if self._in_fence:
            return line_end
        sentence = _SENTENCE_END.search(self._unit, 0, newline if newline >= 0 else len(self._unit))
        if sentence is not None:
            return sentence.end()
        return line_end

    def _repeating(self, partial: str) -> bool:
        """Whether `partial` could still become a unit already given (blank: it could)."""
        key = partial.lstrip()
        return any(seen.startswith(key) for seen in self._seen)
