"""Parse a sketch (a chat model's edit) into literal lines and elision markers.

A marker is a line that stands for unchanged original code: a comment in any
common syntax (`#`, `//`, `/* */`, `<!-- -->`, `--`, `;`, `%`) whose words say
so ("... existing code ...", "rest of the file unchanged", "remaining methods"),
a bare `...`, or a docstring written `\"\"\"...\"\"\"`. A comment without an ellipsis
counts only when its wording is unmistakable and it is not a line of the original file
(a real comment such as `# the rest of the header` is kept as code). A bare `...` is
always a marker, even in Python where it is also a statement: sketches use it far more
often.

A code line that ends in such a comment (`pass  # unchanged`, `return x  // ... rest`) is
code, but it may well be a placeholder: `elision_comment` tells, and the caller does not
decide such a line alone.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["Sketch", "SketchLine", "elision_comment", "is_marker", "parse_sketch"]

_COMMENT = re.compile(
    r"^\s*(?:\{/\*+|/\*+|<!--|//+|#+|--+|;+|%+)\s*(?P<body>.*?)\s*(?:\*+/\}?|-->|--+)?\s*$"
)
_TRAILING = re.compile(r"\S\s+(?P<comment>(?:#|//|/\*|<!--|--)\s*\S.*)$")
_DOTS = re.compile(r"\.\s?\.\s?\.|…")
_BARE = re.compile(r"^\s*(?:\.\s?\.\s?\.|…)\s*[,;]?\s*$")
# A docstring written `"""..."""`: the whole docstring, unchanged.
_DOCSTRING_STUB = re.compile(r"^\s*[rRuU]?(\"\"\"|''')\s*(?:\.\.\.|…)\s*\1\s*$")
_FENCE = re.compile(r"^\s*```[\w+#.-]*\s*$")
# With an ellipsis, any of these words makes the comment a marker.
_LOOSE_WORDS = (
    "existing", "unchanged", "rest", "remain", "omit", "same", "before", "no change",
    "other", "code", "keep", "elide", "skip", "previous", "more", "etc", "here", "lines",
    "method", "function", "body", "import", "as is", "as-is", "original",
)  # fmt: skip
# Without one, the whole comment must read as an elision.
_STRICT = re.compile(
    r"(?:existing code.*"
    r"|(?:the )?(?:rest|remainder) of (?:the )?[\w ]{1,30}"
    r"|remaining [\w ]{1,30}"
    r"|[\w ]{0,30}\b(?:unchanged|omitted|elided)\b[\w ]{0,20}"
    r"|same as before|no changes?(?: here| below| above)?)"
)


@attrs.frozen
class SketchLine:
    """One line of a sketch, without its line ending; `marker` when it elides original code."""

    text: str
    marker: bool


@attrs.frozen
class Sketch:
    lines: tuple[SketchLine, ...]

    @property
    def has_markers(self) -> bool:
        return any(line.marker for line in self.lines)

    @property
    def literals(self) -> list[int]:
        """Indices of the non-marker lines."""
        return [i for i, line in enumerate(self.lines) if not line.marker]


def _words(body: str) -> str:
    text = _DOTS.sub(" ", body).lower()
    text = re.sub(r"[^\w\s-]", " ", text)
    return " ".join(text.split())


def is_marker(line: str, original_lines: frozenset[str] = frozenset()) -> bool:
    """Whether `line` elides original code. `original_lines`: the original's stripped lines."""
    if _BARE.match(line) or _DOCSTRING_STUB.match(line):
        return True
    match = _COMMENT.match(line)
    if match is None:
        return False
    body = match.group("body")
    words = _words(body)
    if _DOTS.search(body):
        return not words or any(w in words for w in _LOOSE_WORDS)
    if len(words.split()) > 8 or line.strip() in original_lines:
        return False
    return _STRICT.fullmatch(words) is not None


def elision_comment(line: str) -> bool:
    """Whether a code line ends in a comment that reads as an elision marker."""
    if not line.strip() or is_marker(line):
        return False
    match = _TRAILING.search(line)
    return match is not None and is_marker(match.group("comment"))


def _strip_fence(lines: list[str]) -> list[str]:
    """Drop a Markdown code fence around the whole sketch (chat output often has one)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), None)
    if first is None or last is None or first == last:
        return lines
    if _FENCE.match(lines[first]) and lines[last].strip() == "```":
        return lines[first + 1 : last]
    return lines


def parse_sketch(sketch: str, original: str | None = None) -> Sketch:
    """Split a sketch into lines and classify each; `original` disambiguates plain comments."""
    raw = [line.rstrip("\r") for line in sketch.split("\n")]
    if raw and raw[-1] == "":
        raw.pop()  # the sketch's final newline
    raw = _strip_fence(raw)
    known = frozenset(line.strip() for line in original.split("\n")) if original else frozenset()
    return Sketch(tuple(SketchLine(text=line, marker=is_marker(line, known)) for line in raw))
