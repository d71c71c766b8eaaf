"""Next edit: `lowentropy/nextEdit`, Copilot's `textDocument/copilotInlineEdit`, `didShowInlineEdit`.

Cursor-style Tab beyond the cursor: from what the user just did, predict the
next change (anywhere near the cursor) and, after it is accepted, the next place
to go, in this file or another. Pipeline per request: resolve the cursor ->
answer from the prefetch when the user just accepted our previous edit ->
supersede the document's older request -> when the last edit was in this
document, locate first without the model (`locate.py`: candidate lines from
what the edit changed, ranked; no place when the evidence is weak: silence),
then the edit there: propagation's, else the same edit again by analogy, else
the model rewriting a 3-line window within MODEL_BUDGET_S, else a jump to the
place; edits propagation determined in other files come before a place without
an edit. When the last edit was in another document: its propagation here,
else the model around the cursor. Drop the answer if the document changed
meanwhile (stale versions never produce edits). Acceptance is seen in
didChange (the document becomes what we predicted); the following edit is then
prefetched in the background. Inline completion and the code action offer this
document's located edit (no model) for editors without a next-edit UI (`offer.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types
from pygls.uris import to_fs_path

from lowentropy.retrieval.syntax import language_for

from .. import protocol
from ..documents import MAX_DOCUMENT_CHARS, utf16_to_codepoints
from ..tasks import Supersede, Superseded, TaskKeeper
from ..wire import unstructure
from .answer import ACCEPT_COMMAND, Prediction, _empty, _parse, _prediction, _range
from .diffs import Change
from .history import EditHistory
from .jump import WorkspaceFiles, apply_edits
from .locate import Located, locate
from .offer import LocalOffers
from .predict import merge, model_prediction
from .propagate import Candidate, Plan, order, plan, rename_elsewhere, signature_elsewhere

if TYPE_CHECKING:
    from ..app import LowEntropyServer

log = logging.getLogger(__name__)

PROMPT_BUDGET = 1536
# The model's window at a located place: lines each side of it, the prompt's budget,
# the recent edits shown, and the time it gets before the place alone is answered.
WINDOW_LINES = 1
WINDOW_PROMPT_BUDGET = 384
WINDOW_CONTEXT_LINES = 12
WINDOW_EVENTS = 1
MODEL_BUDGET_S = 1.0
MAX_TIMINGS = 1000  # locate_ms entries kept in the stats
# A backend whose last window rewrite missed MODEL_BUDGET_S (the packaged 0.5B model on
# 2 CPU cores takes ~5 s) is not asked again until this many located places later:
# the place alone is answered at once instead of after a wasted second.
REPROBE_AFTER = 25


@attrs.define
class NextEditStats:
    requests: int = 0
    propagated: int = 0
    model_calls: int = 0
    model_kept: int = 0
    empty: int = 0
    stale: int = 0
    superseded: int = 0
    accepted: int = 0
    shown: int = 0
    prefetches: int = 0
    prefetch_hits: int = 0
    silent: int = 0  # located nothing strong enough to show
    jumps: int = 0  # a located place answered without an edit
    model_late: int = 0  # the window's rewrite did not come within MODEL_BUDGET_S
    model_skipped: int = 0  # not asked: its last window rewrite was late
    locate_ms: list[float] = attrs.Factory(list)  # per located request (newest last)
    # The last located request: its top-ranked candidate lines (0-based) and the kinds of
    # evidence behind each, and the kinds behind the place answered (empty: silence).
    last_candidates: list[int] = attrs.Factory(list)
    last_candidate_kinds: list[list[str]] = attrs.Factory(list)
    last_kinds: list[str] = attrs.Factory(list)


@attrs.define
class _Pending:
    expected: str  # the document's text once our edit is applied
    cursor: int  # where the cursor lands
    task: asyncio.Task[Prediction] | None = None
    result: Prediction | None = None


class NextEdits:
    """Per-server next-edit state: history, in-flight requests, prefetches, workspace files."""

    def __init__(self, ls: LowEntropyServer) -> None:
        self.ls = ls
        self.history = EditHistory()
        self.stats = NextEditStats()
        self.requests = Supersede("next-edit")
        self.pending: dict[str, _Pending] = {}
        self.background = TaskKeeper("next-edit")
        self.use_model = True
        self._files: WorkspaceFiles | None = None
        self.offers = LocalOffers(self)  # for editors without a next-edit UI
        self._window_late = False  # the last window rewrite missed its budget
        self._window_skipped = 0

    # ---- document events (called from app.py) --------------------------------------------

    def opened(self, uri: str) -> None:
        doc = self.ls.workspace.text_documents.get(uri)
        if doc is not None and len(doc.source) <= MAX_DOCUMENT_CHARS:
            self.history.opened(uri, doc.source)

    def changed(self, uri: str, version: int) -> None:
        doc = self.ls.workspace.text_documents.get(uri)
        if doc is None or len(doc.source) > MAX_DOCUMENT_CHARS:
            return
        text = doc.source
        self.history.record(uri, self._path(uri), text, version)
        pending = self.pending.get(uri)
        if pending is None:
            return
        if pending.task is None and pending.expected == text:
            self.stats.accepted += 1
            self._prefetch(uri, pending)
        elif pending.expected != text:
            if pending.task is not None:
                pending.task.cancel()
            del self.pending[uri]

    def closed(self, uri: str) -> None:
        """didClose: release the document's state (its recorded edits stay in the history)."""
        self.history.closed(uri)
        pending = self.pending.pop(uri, None)
        if pending is not None and pending.task is not None:
            pending.task.cancel()
        self.offers.forget(uri)

    def _path(self, uri: str) -> str:
        return self.ls.relative_path(to_fs_path(uri) or uri)

    # ---- the request path ----------------------------------------------------------------

    async def request(self, params: Any) -> dict[str, Any]:
        uri, version, position = _parse(params)
        self.stats.requests += 1
        doc = self.ls.workspace.text_documents.get(uri)
        if doc is None:
            raise protocol.invalid_params(f"unknown document {uri}: open it first")
        if version is not None and version != doc.version:
            self.stats.stale += 1
            return _empty()
        text = doc.source
        if len(text) > MAX_DOCUMENT_CHARS:
            return _empty()
        started_version = doc.version
        cursor = self.offset(uri, text, position)

        pending = self.pending.get(uri)
        if pending is not None and pending.expected == text and pending.task is not None:
            prediction = await asyncio.shield(pending.task)
            self.stats.prefetch_hits += 1
            return self._answer(prediction, started_version)

        try:
            with self.requests.latest(uri):
                prediction = await self.compute(uri, text, cursor)
        except Superseded:
            self.stats.superseded += 1
            raise
        current = self.ls.workspace.text_documents.get(uri)
        if current is None or current.version != started_version or current.source != text:
            self.stats.stale += 1  # edited while we thought: the answer is for an old text
            return _empty()
        return self._answer(prediction, started_version)

    def _answer(self, prediction: Prediction, version: int | None) -> dict[str, Any]:
        if not prediction.edits and prediction.jump is None:
            self.stats.empty += 1
        mine = [e for e in prediction.edits if e.uri == prediction.uri and e.new is not None]
        if mine:
            # Accepted, the document reads `expected` (all of one rewrite's edits applied)
            # and the cursor is at the end of the last edit.
            expected = apply_edits(prediction.text, prediction.uri, mine)
            last = max(mine, key=lambda e: e.start)
            assert last.new is not None
            shift = sum(len(e.new or "") - (e.end - e.start) for e in mine if e is not last)
            cursor = last.start + shift + len(last.new)
            old = self.pending.pop(prediction.uri, None)
            if old is not None and old.task is not None:
                old.task.cancel()
            self.pending[prediction.uri] = _Pending(expected=expected, cursor=cursor)
        result: dict[str, Any] = unstructure(self._result(prediction, version))
        return result

    def _result(self, p: Prediction, version: int | None) -> protocol.NextEditResult:
        edits = []
        for c in p.edits:
            text = p.texts[c.uri]
            doc = self.ls.workspace.text_documents.get(c.uri)
            edits.append(
                protocol.NextEditItem(
                    text_document=protocol.WireDocument(
                        uri=c.uri,
                        version=version if c.uri == p.uri else (doc.version if doc else None),
                    ),
                    range=_range(text, c.start, c.end),
                    text=c.new or "",
                    command=protocol.NextEditCommand(
                        title="Accept next edit", command=ACCEPT_COMMAND, arguments=[c.uri]
                    ),
                )
            )
        jump = None
        if p.jump is not None:
            text = apply_edits(p.texts[p.jump.uri], p.jump.uri, p.edits)
            pos = _range(text, p.jump.offset, p.jump.offset)
            jump = protocol.NextEditLocation(uri=p.jump.uri, range=pos)
        return protocol.NextEditResult(edits=edits, jump=jump)

    async def compute(self, uri: str, text: str, cursor: int) -> Prediction:
        """The prediction for `uri` reading `text` with the cursor at `cursor`."""
        site = self.history.last_site()
        site_text = self.history.text(site.uri) if site is not None else None
        if site is not None and site.uri == uri and site.after is site_text is text:
            return await self._located(uri, text, cursor, site.before)
        texts = {uri: text}
        candidates: list[Candidate] = []
        if site is not None and site.after is site_text:
            language = self.language(site.uri)
            found: Plan = await asyncio.to_thread(plan, site.uri, site.before, site.after, language)
            texts[site.uri] = site.after
            candidates.extend(found.local)
            if found.search is not None and self.ls.root is not None:
                candidates.extend(await self._elsewhere(found, site.uri, language, texts))
        ordered = order(candidates, uri, cursor)
        if ordered:
            self.stats.propagated += 1
        # The model only when propagation determined no edit; places it found without
        # an edit (jump targets) then follow the model's edit (`merge`), never hide it.
        if self.use_model and not any(c.new is not None for c in ordered) and site is not None:
            changes = await self._model(uri, text, cursor, None)
            if changes:
                ordered = merge(ordered, changes)
        return _prediction(uri, text, ordered, texts)

    async def _located(self, uri: str, text: str, cursor: int, before: str) -> Prediction:
        """The last edit was in this document: place first (`locate`, no model), then the edit
        there: propagation's when it determined one, else the model rewriting a few lines
        around the place within MODEL_BUDGET_S, else a jump to the place. Weak evidence and
        no other file to go to: no answer (silence)."""
        texts = {uri: text}
        language = self.language(uri)
        t0 = time.perf_counter()
        found: Located = await asyncio.to_thread(locate, uri, before, text, language, cursor)
        self.stats.locate_ms.append(round((time.perf_counter() - t0) * 1000, 1))
        del self.stats.locate_ms[:-MAX_TIMINGS]
        place = found.location
        self.stats.last_candidates = [line for line, _ in found.top]
        self.stats.last_candidate_kinds = [list(kinds) for _, kinds in found.top]
        self.stats.last_kinds = list(place.kinds) if place is not None else []
        if place is not None and place.edits:
            self.stats.propagated += 1
            return _prediction(uri, text, list(place.edits), texts)
        # No edit determined at the place (or no place): edits propagation determined in
        # other files are certain, so they come before a place without one.
        elsewhere: list[Candidate] = []
        if found.plan.search is not None and self.ls.root is not None:
            elsewhere = await self._elsewhere(found.plan, uri, language, texts)
        if any(c.new is not None for c in elsewhere) or (place is None and elsewhere):
            self.stats.propagated += 1
            return _prediction(uri, text, order(elsewhere, uri, cursor), texts)
        if place is None:
            self.stats.silent += 1
            return _prediction(uri, text, [], texts)
        here = Candidate(uri=uri, start=place.offset, end=place.offset, new=None, reason="location")
        if self.use_model and self._window_worth_asking():
            changes = await self._model(uri, text, place.offset, before, window=True)
            near = [
                ch
                for ch in changes
                if abs(text.count("\n", 0, ch.start) - place.line) <= WINDOW_LINES + 1
            ]
            if near and len(near) == len(changes):
                return _prediction(uri, text, merge([], changes), texts)
        self.stats.jumps += 1
        return _prediction(uri, text, [here], texts)

    async def _elsewhere(
        self, found: Plan, site_uri: str, language: str, texts: dict[str, str]
    ) -> list[Candidate]:
        assert found.search is not None and self.ls.root is not None
        if self._files is None or self._files.root != self.ls.root:
            self._files = WorkspaceFiles(self.ls.root)
        files = self._files
        open_docs = {u: d.source for u, d in self.ls.workspace.text_documents.items()}
        word = found.search

        def scan() -> list[Candidate]:
            others = files.containing(word, language, open_docs, {site_uri})
            for f in others:
                texts[f.uri] = f.text
            if found.rename is not None:
                return rename_elsewhere(found, others)
            return signature_elsewhere(found, others)

        return await asyncio.to_thread(scan)

    async def _model(
        self, uri: str, text: str, cursor: int, undo_of: str | None, *, window: bool = False
    ) -> list[Change]:
        """The model's rewrite around `cursor`; `window`: a few lines only, within
        MODEL_BUDGET_S (past it there is no model edit: the place alone is answered)."""
        events = [(e.path, e.diff) for e in self.history.events()]
        if not events:
            return []
        backend = await self.ls.backends.get("nextEdit", self.ls.settings.role("nextEdit"))
        self.stats.model_calls += 1
        try:
            async with asyncio.timeout(MODEL_BUDGET_S if window else None):
                outcome = await model_prediction(
                    backend,
                    uri=uri,
                    text=text,
                    cursor=cursor,
                    path=self._path(uri),
                    language=self.language(uri),
                    events=events[-WINDOW_EVENTS:] if window else events,
                    undo_of=undo_of,
                    budget=WINDOW_PROMPT_BUDGET if window else PROMPT_BUDGET,
                    region=(WINDOW_LINES, WINDOW_LINES) if window else None,
                    context_lines=WINDOW_CONTEXT_LINES if window else None,
                )
        except TimeoutError:
            self.stats.model_late += 1
            if window:
                self._window_late = True
            return []
        if window:
            self._window_late = False
        if outcome.rejected:
            log.debug("next edit: model rewrite rejected: %s", outcome.rejected)
        if outcome.changes:
            self.stats.model_kept += 1
        return list(outcome.changes)

    def _window_worth_asking(self) -> bool:
        """Whether to ask the model for the edit at a place: not while the backend is known
        to miss the budget (re-probed every REPROBE_AFTER places: it may have got faster)."""
        if not self._window_late or self._window_skipped >= REPROBE_AFTER:
            self._window_skipped = 0
            return True
        self._window_skipped += 1
        self.stats.model_skipped += 1
        return False

    def language(self, uri: str) -> str:
        doc = self.ls.workspace.text_documents.get(uri)
        by_name = language_for(uri)
        if by_name == "text" and doc is not None and doc.language_id:
            return str(doc.language_id)
        return by_name

    def offset(self, uri: str, text: str, position: types.Position) -> int:
        index = self.ls.documents.get(uri).index(text)
        line = min(position.line, index.line_count - 1)
        column = utf16_to_codepoints(index.line(line), position.character)
        return index.offset(line, column)

    # ---- prefetch ------------------------------------------------------------------------

    def _prefetch(self, uri: str, pending: _Pending) -> None:
        self.stats.prefetches += 1

        async def run() -> Prediction:
            return await self.compute(uri, pending.expected, pending.cursor)

        pending.task = self.background.keep(asyncio.create_task(run()))

    async def aclose(self) -> None:
        self.offers.cancel()
        await self.background.aclose()

    # ---- without a next-edit UI (`offer.py`) ---------------------------------------------

    async def code_action(self, uri: str) -> types.CodeAction | None:
        """The located next edit in this document as a code action carrying its edit."""
        return await self.offers.code_action(uri)

    def inline_item(
        self, document: types.TextDocumentIdentifier, position: types.Position
    ) -> types.InlineCompletionItem | None:
        """The located next edit near the cursor as an inline completion item, or None."""
        return self.offers.inline_item(document, position)


# ---- handlers ------------------------------------------------------------------------------


async def next_edit(ls: LowEntropyServer, params: Any) -> dict[str, Any]:
    return await ls.next_edits.request(params)


def did_show_inline_edit(ls: LowEntropyServer, params: Any) -> None:
    ls.next_edits.stats.shown += 1


def accept_next_edit(ls: LowEntropyServer, *args: Any) -> None:
    """Clients run the item's command on acceptance; didChange has already seen it."""


async def next_edit_stats(ls: LowEntropyServer, params: Any) -> dict[str, Any]:
    result: dict[str, Any] = unstructure(ls.next_edits.stats)
    return result


def register(ls: LowEntropyServer) -> None:
    """Wire the next-edit handlers into `ls` (state lives on `ls.next_edits`)."""
    ls.feature(protocol.NEXT_EDIT)(next_edit)
    ls.feature(protocol.COPILOT_INLINE_EDIT)(next_edit)
    ls.feature(protocol.DID_SHOW_INLINE_EDIT)(did_show_inline_edit)
    ls.feature(protocol.NEXT_EDIT_STATS)(next_edit_stats)
    ls.command(ACCEPT_COMMAND)(accept_next_edit)
