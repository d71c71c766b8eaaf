"""The workspace's edit history: what the user just did, as unified diffs and as edit sites.

Two views of the same didChange stream:

- `events()`: unified diffs with their paths for the Zeta prompt. Changes to one
  file within `burst_s` of each other merge into one event. Finished events are
  only ever appended (the oldest are dropped in one go when the bounds are hit,
  never one by one), so the prompt's history prefix stays byte-identical across
  requests and the backend's KV cache keeps it.
- `last_site()`: the text before and after the user's latest edit site (a run of
  changes that touch adjacent text), for deterministic propagation. Typing a
  word char by char is one site, so a rename reads `count` -> `total`, never
  `tota` -> `total`.

Recording is O(changed region) per keystroke: the changed span is found by
chunked string comparison and diffs are computed only when an event is read.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import attrs

from lowentropy.models.remote_tokenizer import estimate_tokens
from lowentropy.server.text_edits import changed_span, region_diff

BURST_S = 1.0
MAX_EVENTS = 16
MAX_EVENT_TOKENS = 1500  # of finished diffs in all, by `estimate_tokens` (chars / 4)
MAX_TEXTS = 64  # documents whose last text is kept for diffing
SITE_GAP = 2  # characters between changes that still count as one site
SITE_IDLE_S = 30.0  # a site older than this is no longer "what the user just did"


@attrs.define(kw_only=True)
class EditEvent:
    uri: str
    path: str
    before: str
    after: str
    first_at: float
    last_at: float
    _diff: str | None = None
    _diff_of: str | None = None

    @property
    def diff(self) -> str:
        if self._diff is None or self._diff_of is not self.after:
            self._diff = region_diff(self.before, self.after, self.path)
            self._diff_of = self.after
        return self._diff


@attrs.define(kw_only=True)
class Site:
    """One edit site: the document before its first change and now."""

    uri: str
    path: str
    before: str
    after: str
    version: int
    at: float
    # The changed region of `after` (start, end), kept up to date per change.
    start: int
    end: int

    def span(self) -> tuple[int, int, int]:
        """(start, end in before, end in after) of the site's whole change."""
        return changed_span(self.before, self.after)


class EditHistory:
    def __init__(
        self,
        *,
        burst_s: float = BURST_S,
        max_events: int = MAX_EVENTS,
        max_tokens: int = MAX_EVENT_TOKENS,
    ) -> None:
        self.burst_s = burst_s
        self.max_events = max_events
        self.max_tokens = max_tokens
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._done: list[EditEvent] = []
        self._open: EditEvent | None = None
        self._site: Site | None = None
        self.version = 0  # bumps on every recorded change

    # ---- recording -----------------------------------------------------------------------

    def opened(self, uri: str, text: str) -> None:
        self._remember(uri, text)

    def closed(self, uri: str) -> None:
        """The editor closed `uri`: release its texts. Its recorded events stay (they are
        the prompt's history); an open burst in it is finished now, keeping only its diff."""
        self._texts.pop(uri, None)
        if self._open is not None and self._open.uri == uri:
            self._close_burst()
        if self._site is not None and self._site.uri == uri:
            self._site = None

    def record(
        self, uri: str, path: str, text: str, version: int, now: float | None = None
    ) -> None:
        """The document `uri` now reads `text` (after one didChange)."""
        now = time.monotonic() if now is None else now
        prev = self._texts.get(uri)
        self._remember(uri, text)
        if prev is None or prev == text:
            return
        self.version += 1
        start, _, end_new = changed_span(prev, text)
        self._record_event(uri, path, prev, text, now)
        self._record_site(uri, path, prev, text, version, now, start, end_new)

    def _remember(self, uri: str, text: str) -> None:
        self._texts[uri] = text
        self._texts.move_to_end(uri)
        while len(self._texts) > MAX_TEXTS:
            self._texts.popitem(last=False)

    def _record_event(self, uri: str, path: str, prev: str, text: str, now: float) -> None:
        ev = self._open
        if ev is not None and ev.uri == uri and now - ev.last_at <= self.burst_s:
            ev.after = text
            ev.last_at = now
            return
        self._close_burst()
        self._open = EditEvent(
            uri=uri, path=path, before=prev, after=text, first_at=now, last_at=now
        )

    def _close_burst(self) -> None:
        ev = self._open
        self._open = None
        if ev is None or not ev.diff:
            return
        # Keep only the diff: the full texts are not needed once the burst is over.
        ev.before = ev.after = ""
        ev._diff_of = ev.after
        self._done.append(ev)
        if len(self._done) > self.max_events or self._tokens() > self.max_tokens:
            # Drop the older half at once: the remaining prefix then stays fixed for a while.
            keep = self.max_events // 2
            while self._done and (len(self._done) > keep or self._tokens() > self.max_tokens // 2):
                self._done.pop(0)

    def _tokens(self) -> int:
        """The finished events' size in tokens, estimated (no tokenizer here: chars / 4)."""
        return sum(estimate_tokens(e.diff) for e in self._done)

    def _record_site(
        self,
        uri: str,
        path: str,
        prev: str,
        text: str,
        version: int,
        now: float,
        start: int,
        end_new: int,
    ) -> None:
        site = self._site
        delta = len(text) - len(prev)
        end_old = end_new - delta
        if (
            site is not None
            and site.uri == uri
            and site.after is prev
            and now - site.at <= SITE_IDLE_S
            and start <= site.end + SITE_GAP
            and end_old >= site.start - SITE_GAP
        ):
            site.after = text
            site.version = version
            site.at = now
            site.start = min(site.start, start)
            site.end = max(site.end + delta, end_new) if end_old <= site.end else end_new
            return
        self._site = Site(
            uri=uri,
            path=path,
            before=prev,
            after=text,
            version=version,
            at=now,
            start=start,
            end=end_new,
        )

    # ---- reading -------------------------------------------------------------------------

    def events(self) -> list[EditEvent]:
        """Finished events oldest first, then the open burst (if it changed anything)."""
        out = list(self._done)
        if self._open is not None and self._open.diff:
            out.append(self._open)
        return out

    def diffs(self) -> tuple[str, ...]:
        return tuple(e.diff for e in self.events())

    def last_site(self, now: float | None = None) -> Site | None:
        now = time.monotonic() if now is None else now
        site = self._site
        if site is None or now - site.at > SITE_IDLE_S:
            return None
        return site

    def text(self, uri: str) -> str | None:
        return self._texts.get(uri)
