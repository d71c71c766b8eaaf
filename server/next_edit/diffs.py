"""Next edit's change: one replacement in one document, and the smallest such changes.

Offsets are code-point offsets into Python strings; conversion to LSP (UTF-16)
positions happens at the protocol boundary (`feature.py`). The diffing itself is
`server.text_edits`, shared with Apply.
"""

from __future__ import annotations

import attrs

from lowentropy.server.text_edits import replacements


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


def minimal_changes(uri: str, old: str, new: str, base: int) -> list[Change]:
    """The smallest replacements turning `old` into `new` (offsets shifted by `base`).

    Line-level opcodes first, then each replaced block trimmed to the characters
    that differ, so a one-word change is a one-word edit.
    """
    return [
        Change(uri=uri, start=base + start, end=base + end, new=text)
        for start, end, text in replacements(old, new)
    ]
