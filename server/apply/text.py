"""Lines with their own endings, and indentation: measuring it, learning a sketch's shift, redrawing it.

Files are split on "\\n" only (not `str.splitlines`, which also breaks at form
feeds and U+2028, both found in real sources), and each line keeps its own
ending, so lines that an edit does not touch come back byte for byte.
"""

from __future__ import annotations

import collections
import math

import attrs

__all__ = ["IndentStyle", "Lines", "Reindent", "indent_style", "indent_width", "split_lines"]


@attrs.frozen
class Lines:
    """A text as lines without endings (`text`), each line's ending (`eols`), the usual ending."""

    text: tuple[str, ...]
    eols: tuple[str, ...]
    eol: str

    @property
    def final_newline(self) -> bool:
        return bool(self.eols) and self.eols[-1] != ""

    def join(self, start: int = 0, end: int | None = None) -> str:
        stop = len(self.text) if end is None else end
        return "".join(self.text[i] + self.eols[i] for i in range(start, stop))


def split_lines(text: str) -> Lines:
    parts = text.split("\n")
    contents: list[str] = []
    eols: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and part == "":
            break  # the text ended with a newline (or was empty)
        if not last and part.endswith("\r"):
            contents.append(part[:-1])
            eols.append("\r\n")
        else:
            contents.append(part)
            eols.append("" if last else "\n")
    crlf = eols.count("\r\n")
    return Lines(
        text=tuple(contents), eols=tuple(eols), eol="\r\n" if crlf > len(eols) / 2 else "\n"
    )


@attrs.frozen
class IndentStyle:
    tabs: bool  # indents with tabs
    unit: int  # columns per level (spaces, or what a tab stands for)


def indent_width(line: str, tab: int) -> int:
    width = 0
    for ch in line:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width += tab
        else:
            break
    return width


def indent_style(lines: list[str] | tuple[str, ...]) -> IndentStyle:
    """Tabs or spaces, and the step between indentation levels (most common positive step)."""
    tabbed = spaced = 0
    steps: collections.Counter[int] = collections.Counter()
    previous = 0
    for line in lines:
        if not line.strip():
            continue
        if line[0] == "\t":
            tabbed += 1
        elif line[0] == " ":
            spaced += 1
        width = indent_width(line, 4)
        if width > previous:
            steps[width - previous] += 1
        previous = width
    tabs = tabbed > spaced
    if tabs:
        return IndentStyle(tabs=True, unit=4)
    unit = next((step for step, _ in steps.most_common() if step in (2, 3, 4, 8)), 4)
    return IndentStyle(tabs=False, unit=unit)


@attrs.frozen
class Reindent:
    """Maps a sketch line's indentation onto the original's: width * scale + shift, then drawn
    in the original's style (tabs stay tabs)."""

    style: IndentStyle  # the original's
    sketch_tab: int  # columns a tab stands for in the sketch
    scale: float
    shift: int

    def width(self, line: str) -> int:
        return max(0, math.floor(indent_width(line, self.sketch_tab) * self.scale) + self.shift)

    def draw(self, width: int) -> str:
        if self.style.tabs:
            return "\t" * (width // self.style.unit) + " " * (width % self.style.unit)
        return " " * width

    def line(self, line: str) -> str:
        """A new sketch line in the original's indentation; trailing whitespace is drift."""
        body = line.strip(" \t")
        return self.draw(self.width(line)) + body if body else ""

    @classmethod
    def learn(
        cls, original: IndentStyle, sketch: IndentStyle, pairs: list[tuple[str, str]]
    ) -> Reindent:
        """From (original line, sketch line) pairs known to be the same line: the scale (levels
        of 2 vs 4 columns) and shift that most pairs agree on; scale 1 wins ties."""
        tab = original.unit
        best = (0, 1.0, 0)
        for scale in (1.0, 2.0, 0.5):
            shifts: collections.Counter[int] = collections.Counter()
            for orig, sk in pairs:
                width = math.floor(indent_width(sk, tab) * scale)
                shifts[indent_width(orig, original.unit) - width] += 1
            if shifts:
                shift, count = shifts.most_common(1)[0]
                if count > best[0]:
                    best = (count, scale, shift)
        return cls(style=original, sketch_tab=tab, scale=best[1], shift=best[2])
