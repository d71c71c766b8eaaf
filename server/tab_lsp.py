"""Tab's LSP surface: `textDocument/inlineCompletion` and `textDocument/completion`.

Resolve a request's position against the document's current text (`locate`: a
`Cursor`, or None when there is nothing to complete), ask the engine (`tab.py`)
for the suggestion and answer it as an inline completion item, or as one
completion item for editors without inline completion.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path

from lowentropy.retrieval.secrets import is_secret_path

from .documents import MAX_DOCUMENT_CHARS, LineIndex, codepoints_to_utf16, utf16_to_codepoints
from .postprocess import CursorContext

if TYPE_CHECKING:
    from .app import LowEntropyServer

log = logging.getLogger(__name__)

ACCEPT_COMMAND = "lowentropy.acceptCompletion"


@attrs.frozen(kw_only=True)
class Cursor:
    """Where a request points, resolved against the document's current text."""

    uri: str
    version: int
    text: str
    offset: int
    line: int
    column: int  # code points
    ctx: CursorContext
    path: str
    language: str


def locate(
    ls: LowEntropyServer, document: types.TextDocumentIdentifier, position: types.Position
) -> Cursor | None:
    """Resolve a request's cursor, or None (with a log line) when there is nothing to complete."""
    doc = ls.workspace.text_documents.get(document.uri)
    if doc is None:
        raise JsonRpcException(
            message=f"unknown document {document.uri}: open it (textDocument/didOpen) first",
            code=int(types.ErrorCodes.InvalidParams),
        )
    text = doc.source
    if len(text) > MAX_DOCUMENT_CHARS or "\x00" in text[:8192]:
        log.info("no completion for %s: too large or binary", document.uri)
        return None
    if is_secret_path(to_fs_path(document.uri) or document.uri):  # .env, keys: never a prompt
        log.info("no completion for %s: a credentials file", document.uri)
        return None
    state = ls.documents.get(document.uri)
    index = state.index(text)
    if position.line < 0 or position.character < 0:
        raise JsonRpcException(
            message="negative position", code=int(types.ErrorCodes.InvalidParams)
        )
    if position.line >= index.line_count:
        log.info("position past the end of %s (line %d)", document.uri, position.line)
        return None
    line_text = index.line(position.line)
    column = utf16_to_codepoints(line_text, position.character)  # clamps past-the-end columns
    options = ls.settings.completion
    ctx = CursorContext(
        line_prefix=line_text[:column],
        line_suffix=line_text[column:],
        multiline=options.multiline,
        max_lines=options.max_lines,
        next_line=_next_line(index, position.line),
    )
    path = to_fs_path(document.uri) or document.uri
    return Cursor(
        uri=document.uri,
        version=doc.version or 0,
        text=text,
        offset=index.offset(position.line, column),
        line=position.line,
        column=column,
        ctx=ctx,
        path=ls.relative_path(path),
        language=doc.language_id or Path(path).suffix.lstrip("."),
    )


def _next_line(index: LineIndex, line: int, reach: int = 64) -> str:
    """The first non-blank line below `line` within `reach` lines ("" when none)."""
    for n in range(line + 1, min(index.line_count, line + 1 + reach)):
        text = index.line(n)
        if text.strip():
            return text
    return ""


def _item_range(cursor: Cursor) -> types.Range:
    character = codepoints_to_utf16(cursor.ctx.line_prefix)
    pos = types.Position(line=cursor.line, character=character)
    return types.Range(start=pos, end=pos)


async def _suggestion_at(
    ls: LowEntropyServer,
    document: types.TextDocumentIdentifier,
    position: types.Position,
    invoked: bool,
) -> tuple[Cursor, str] | None:
    """The cursor and its suggestion; None when completion is off or there is nothing to say.
    `invoked`: the user asked explicitly, so the answer is waited for beyond the budget."""
    started = time.perf_counter()
    cursor = locate(ls, document, position)
    if cursor is None:
        return None
    suggestion = await ls.tab.suggest(cursor, started, budgeted=not invoked)
    return (cursor, suggestion) if suggestion else None


async def inline_completion(
    ls: LowEntropyServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList | None:
    if not ls.settings.completion.enabled:
        return None
    # A propagated next edit at or near the cursor (a rename's next site...) is determined: offer it.
    offered = ls.next_edits.inline_item(params.text_document, params.position)
    if offered is not None:
        return types.InlineCompletionList(items=[offered])
    invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    found = await _suggestion_at(ls, params.text_document, params.position, invoked)
    if found is None:
        return types.InlineCompletionList(items=[])
    cursor, suggestion = found
    item = types.InlineCompletionItem(
        insert_text=suggestion,
        range=_item_range(cursor),
        command=types.Command(
            title="Accept", command=ACCEPT_COMMAND, arguments=[cursor.uri, len(suggestion)]
        ),
    )
    return types.InlineCompletionList(items=[item])


_TYPED_WORD = re.compile(r"[\w$]+$")


async def completion(
    ls: LowEntropyServer, params: types.CompletionParams
) -> types.CompletionList | None:
    """The Tab suggestion as one completion item, for editors without inline completion (Helix)."""
    if not ls.settings.completion.enabled:
        return None
    invoked = (
        params.context is not None
        and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
    )
    found = await _suggestion_at(ls, params.text_document, params.position, invoked)
    if found is None:
        return types.CompletionList(is_incomplete=True, items=[])
    cursor, suggestion = found
    first_line = suggestion.split("\n", 1)[0]
    # The word being typed (touching the cursor) heads the label, so filters match it.
    typed = _TYPED_WORD.search(cursor.ctx.line_prefix)
    label = (typed.group(0) if typed else "") + first_line
    item = types.CompletionItem(
        label=label.strip()[:80] or first_line[:80],
        kind=types.CompletionItemKind.Text,
        detail="lowentropy",
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=suggestion),
        text_edit=types.TextEdit(range=_item_range(cursor), new_text=suggestion),
        insert_text_format=types.InsertTextFormat.PlainText,
        filter_text=label.strip() or first_line,
        sort_text="0",
        preselect=True,
        command=types.Command(
            title="Accept", command=ACCEPT_COMMAND, arguments=[cursor.uri, len(suggestion)]
        ),
    )
    return types.CompletionList(is_incomplete=True, items=[item])
