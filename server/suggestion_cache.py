"""Suggestions kept per document so typing through one, or accepting one, calls no model.

An entry remembers the text around its anchor (the cursor it was made for).
A later cursor matches when the text before the anchor is unchanged, the text
typed since the anchor is a prefix of the suggestion, and the text after the
cursor is unchanged: the answer is the suggestion's remainder. A prefetched
entry is the same thing made for the document as it would be after acceptance.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import attrs

TAIL = 256  # chars before the anchor that must be unchanged
HEAD = 64  # chars after the cursor that must be unchanged


@attrs.define(kw_only=True)
class CachedSuggestion:
    anchor: int
    before: str  # text[anchor - TAIL : anchor]
    after: str  # text[anchor : anchor + HEAD] at the time (suffix head)
    text: str
    prefetched: bool = False

    def remainder(self, text: str, cursor: int) -> str | None:
        """The rest of the suggestion if `cursor` in `text` is typing through it, else None."""
        typed_len = cursor - self.anchor
        if typed_len < 0 or typed_len >= len(self.text):
            return None
        start = max(0, self.anchor - TAIL)
        if text[start : self.anchor] != self.before:
            return None
        if text[self.anchor : cursor] != self.text[:typed_len]:
            return None
        if text[cursor : cursor + HEAD] != self.after:
            return None
        return self.text[typed_len:]


def snapshot(
    text: str, anchor: int, suggestion: str, *, prefetched: bool = False
) -> CachedSuggestion:
    return CachedSuggestion(
        anchor=anchor,
        before=text[max(0, anchor - TAIL) : anchor],
        after=text[anchor : anchor + HEAD],
        text=suggestion,
        prefetched=prefetched,
    )


@attrs.define
class PendingPrefetch:
    """A prefetch still generating: the document text it assumes and its future."""

    expected_text: str
    cursor: int
    task: asyncio.Task[str]


class SuggestionCache:
    """A few recent suggestions per document, most recent first."""

    def __init__(self, per_document: int = 8) -> None:
        self._entries: dict[str, OrderedDict[int, CachedSuggestion]] = {}
        self._per_document = per_document
        self.pending: dict[str, PendingPrefetch] = {}

    def add(self, uri: str, entry: CachedSuggestion) -> None:
        entries = self._entries.setdefault(uri, OrderedDict())
        entries[id(entry)] = entry
        entries.move_to_end(id(entry), last=False)
        while len(entries) > self._per_document:
            entries.popitem(last=True)

    def lookup(self, uri: str, text: str, cursor: int) -> tuple[str, CachedSuggestion] | None:
        for entry in self._entries.get(uri, {}).values():
            rest = entry.remainder(text, cursor)
            if rest:
                return rest, entry
        return None

    def forget(self, uri: str) -> None:
        self._entries.pop(uri, None)
        pending = self.pending.pop(uri, None)
        if pending is not None:
            pending.task.cancel()
