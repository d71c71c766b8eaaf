"""This document's located next edit for editors without a next-edit UI.

Tab's inline completion offers it as an item when it is on or near the cursor's
line (`inline_item`), and the code actions offer it as a quick fix carrying its
edit (`code_action`): Helix, eglot. Only the place `locate` chooses and the edit
propagation or analogy determines there (no model, no workspace scan), computed
off the keystroke path once typing pauses and cached per recorded change.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types

from .answer import ACCEPT_COMMAND, Prediction, _lsp_range, _prediction
from .locate import locate

if TYPE_CHECKING:
    from .feature import NextEdits

LOCAL_PROPAGATION_DELAY_S = 0.1  # quiet time before propagating for inline completion
NEARBY_LINES = 2  # a replacement this close to the cursor is offered as an inline completion


class LocalOffers:
    """The located edit of the last change in its document, cached per history version."""

    def __init__(self, edits: NextEdits) -> None:
        self.edits = edits
        self._cached: tuple[str, int, Prediction | None] | None = None  # (uri, version, edit)
        self._task: asyncio.Task[None] | None = None
        self._version = -1

    def forget(self, uri: str) -> None:
        """didClose: drop the cached edit of `uri`."""
        if self._cached is not None and self._cached[0] == uri:
            self._cached = None

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _schedule(self, uri: str) -> None:
        version = self.edits.history.version
        task = self._task
        if task is not None and not task.done():
            if self._version == version:
                return
            task.cancel()
        self._version = version
        self._task = asyncio.create_task(self._compute(uri, version))

    async def _compute(self, uri: str, version: int) -> None:
        await asyncio.sleep(LOCAL_PROPAGATION_DELAY_S)  # typing on: a newer change replaces us
        await self._propagate(uri, version)

    async def _propagate(self, uri: str, version: int) -> Prediction | None:
        """This document's located next edit from the last edit (cached in `_cached`): the
        place `locate` chooses and the edit propagation or analogy determines there (no
        model, no workspace scan); None when the history moved on meanwhile, the place is
        not strong enough or no edit is determined there."""
        site = self.edits.history.last_site()
        doc = self.edits.ls.workspace.text_documents.get(uri)
        if self.edits.history.version != version or site is None or doc is None:
            return None
        text = doc.source
        if site.uri != uri or site.after is not text:
            return None
        language = self.edits.language(uri)
        found = await asyncio.to_thread(locate, uri, site.before, text, language, site.end)
        if self.edits.history.version != version:
            return None
        place = found.location
        edits = list(place.edits) if place is not None else []
        pred = _prediction(uri, text, edits, {uri: text}) if edits else None
        self._cached = (uri, version, pred)
        return pred

    async def code_action(self, uri: str) -> types.CodeAction | None:
        """The propagated next edit in this document as a code action carrying its edit.

        For editors with no next-edit UI (Helix, eglot): the same deterministic edits that
        Tab offers inline, applied by the editor as a versioned WorkspaceEdit (refused by
        the editor if the document moved on)."""
        doc = self.edits.ls.workspace.text_documents.get(uri)
        site = self.edits.history.last_site()
        if doc is None or site is None or site.uri != uri or site.after is not doc.source:
            return None
        version = self.edits.history.version
        cached = self._cached
        if cached is not None and cached[0] == uri and cached[1] == version:
            pred = cached[2]
        else:
            pred = await self._propagate(uri, version)
        text = doc.source
        if pred is None or pred.text is not text:
            return None
        mine = [c for c in pred.edits if c.uri == uri and c.new is not None]
        if not mine:
            return None
        edits = [
            types.TextEdit(range=_lsp_range(text, c.start, c.end), new_text=c.new or "")
            for c in mine
        ]
        shown = (mine[0].new or "").strip().split("\n")[0][:40]
        return types.CodeAction(
            title=f"lowentropy: Next edit: {shown}"
            + (f" (+{len(mine) - 1} more)" if len(mine) > 1 else ""),
            kind=types.CodeActionKind.QuickFix,
            edit=types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=uri, version=int(doc.version or 0)
                        ),
                        edits=list(edits),
                    )
                ]
            ),
            command=types.Command(
                title="Accept next edit", command=ACCEPT_COMMAND, arguments=[uri]
            ),
        )

    def inline_item(
        self, document: types.TextDocumentIdentifier, position: types.Position
    ) -> types.InlineCompletionItem | None:
        """The located next edit, when it is on the cursor's line or near it, as a standard
        inline completion item with its range (LSP 3.18; Helix and others with no next-edit
        UI show it like any completion), or None.

        Only this document's located edit is consulted (propagation or analogy; no model,
        no workspace scan), once per recorded change, so Tab pays ~nothing for it."""
        uri = document.uri
        doc = self.edits.ls.workspace.text_documents.get(uri)
        site = self.edits.history.last_site()
        if doc is None or site is None or site.uri != uri or site.after is not doc.source:
            return None
        text = doc.source
        cached = self._cached
        if cached is None or cached[0] != uri or cached[1] != self.edits.history.version:
            # Propagation parses the file (~20 ms on 6k lines): never on the keystroke
            # path. It runs off the loop once typing pauses; a later request offers it.
            self._schedule(uri)
            return None
        pred = cached[2]
        if pred is None or not pred.edits:
            return None
        cursor = self.edits.offset(uri, text, position)
        line = text.count("\n", 0, cursor)
        for c in pred.edits:
            if c.uri != uri or c.new is None:
                continue
            at_cursor = c.start == c.end == cursor
            near = abs(text.count("\n", 0, c.start) - line) <= NEARBY_LINES
            one_line = "\n" not in text[c.start : c.end]  # LSP 3.18: the range is on one line
            if (at_cursor or near) and one_line:
                return types.InlineCompletionItem(
                    insert_text=c.new,
                    range=_lsp_range(text, c.start, c.end),
                    command=types.Command(
                        title="Accept next edit", command=ACCEPT_COMMAND, arguments=[uri]
                    ),
                )
        return None
