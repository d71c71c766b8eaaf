"""Apply over LSP: `lowentropy/apply`, `lowentropy/editSelection`, code actions and commands.

A request names the document version it was computed against. The sketch is
placed deterministically when placement is certain; otherwise the `apply`
role rewrites each touched region (`<code>…</code> <update>…</update>` →
`<updated-code>`), with the original region as the speculative draft. The
result is verified before anything is offered: an unverified result comes
back with `verified: false`, the reason and an empty edit, and the commands
write nothing. Commands re-check the version right before
`workspace/applyEdit`: a document that moved on is recomputed once, then
refused. The model path is `rewrite.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path

from lowentropy.models.types import ChatMessage, ChatRequest
from lowentropy.retrieval.syntax import language_for

from .. import protocol, wire
from ..protocol import (  # the wire types live in protocol.py; named here for callers
    APPLY,
    EDIT_SELECTION,
    ApplyParams,
    ApplyResult,
    ApplyStats,
    EditSelectionParams,
    WireDocument,
    WireRange,
)
from ..text_edits import TextEditSpec, minimal_edits, unified_diff
from .merge import Region
from .plan import plan_apply
from .rewrite import REQUEST_FAILED, OnPiece, model_apply

if TYPE_CHECKING:
    from ..app import LowEntropyServer

log = logging.getLogger(__name__)

APPLY_COMMAND = "lowentropy.applySketch"
EDIT_COMMAND = "lowentropy.editSelection"
DIFF_COMMAND = "lowentropy.showDiff"
CONTENT_MODIFIED = int(types.LSPErrorCodes.ContentModified)


@attrs.frozen(kw_only=True)
class ApplyOutcome:
    uri: str
    version: int
    original: str
    result: str | None
    verified: bool
    reason: str | None
    diff: str
    stats: ApplyStats
    edits: tuple[TextEditSpec, ...] = ()  # minimal edits from original to result

    def workspace_edit(self, versioned: bool) -> types.WorkspaceEdit:
        """Minimal edits against `version`; empty unless verified."""
        if not self.verified or self.result is None:
            return types.WorkspaceEdit(changes={})
        edits = [
            types.TextEdit(
                range=types.Range(
                    start=types.Position(line=e.start_line, character=e.start_char_utf16),
                    end=types.Position(line=e.end_line, character=e.end_char_utf16),
                ),
                new_text=e.new_text,
            )
            for e in self.edits
        ]
        if not versioned:
            return types.WorkspaceEdit(changes={self.uri: edits})
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=self.uri, version=self.version
                    ),
                    edits=list(edits),
                )
            ]
        )


class StaleVersionError(JsonRpcException):
    CODE = CONTENT_MODIFIED


# ---- computing ---------------------------------------------------------------------------


def _document(ls: LowEntropyServer, document: WireDocument) -> tuple[str, int]:
    doc = ls.workspace.text_documents.get(document.uri)
    if doc is None:
        raise protocol.invalid_params(
            f"unknown document {document.uri}: open it (textDocument/didOpen) first"
        )
    version = int(doc.version or 0)
    if document.version is not None and document.version != version:
        raise StaleVersionError(
            message=f"{document.uri} changed: the request is for version {document.version}, "
            f"the document is at {version}; nothing was applied",
            code=CONTENT_MODIFIED,
        )
    return str(doc.source), version


def _selection(rng: WireRange | None, line_count: int) -> tuple[int, int] | None:
    """Whole lines [start, end) that a range touches (a range ending at column 0 stops before)."""
    if rng is None:
        return None
    start, end = rng.start, rng.end
    if (end.line, end.character) < (start.line, start.character):
        start, end = end, start
    last = end.line if end.character > 0 or end.line == start.line else end.line - 1
    return max(0, start.line), min(line_count, last + 1)


def _relative(ls: LowEntropyServer, uri: str) -> str:
    path = to_fs_path(uri)
    return ls.relative_path(path) if path else uri


def _progress(ls: LowEntropyServer, token: Any) -> OnPiece | None:
    if token is None:
        return None
    if isinstance(token, bool) or not isinstance(token, (str, int)):
        raise protocol.invalid_params("partialResultToken must be a string or an integer")

    def send(region: Region, index: int, piece: str) -> None:
        value = {
            "text": piece,
            "region": index,
            "startLine": region.start_line,
            "endLine": region.end_line,
        }
        ls.protocol.notify(types.PROGRESS, types.ProgressParams(token=token, value=value))

    return send


def _finish(original: str, result: str, path: str) -> tuple[str, tuple[TextEditSpec, ...]]:
    """The diff and the minimal edits (difflib: ~30 ms on a 12k-line file, so off the loop)."""
    return unified_diff(original, result, path), tuple(minimal_edits(original, result))


async def compute_apply(
    ls: LowEntropyServer,
    document: WireDocument,
    sketch: str,
    rng: WireRange | None = None,
    on_piece: OnPiece | None = None,
    instruction: str | None = None,
    wait: bool = False,
) -> ApplyOutcome:
    if not sketch.strip():
        raise protocol.invalid_params(f"{APPLY}: the sketch is empty")
    started = time.perf_counter()
    original, version = _document(ls, document)
    path = _relative(ls, document.uri)
    language = language_for(path)
    selection = _selection(rng, original.count("\n") + 1)
    plan = await asyncio.to_thread(
        plan_apply, original, sketch, language=language, selection=selection, path=path
    )
    sketch = plan.sketch or sketch  # a chat answer's code block, once picked
    stats = ApplyStats()
    result = plan.result
    reason = plan.reason
    if result is None and plan.regions:
        stats.path = "model"
        # Unless the client waits, a miss must come back fast: the model gets what is left of
        # the budget, and a rewrite that cannot finish in it is refused before it starts.
        deadline = None if wait else started + ls.settings.apply_budget_ms / 1000
        result, reason = await model_apply(
            ls, original, sketch, plan, language, instruction, stats, on_piece, deadline
        )
    verified = result is not None and reason is None
    diff: str = ""
    edits: tuple[TextEditSpec, ...] = ()
    if result is not None:
        diff, edits = await asyncio.to_thread(_finish, original, result, path)
    if result is not None and result == original and reason is None:
        verified, reason = False, "the sketch changes nothing"
    stats.seconds = time.perf_counter() - started
    return ApplyOutcome(
        uri=document.uri,
        version=version,
        original=original,
        result=result,
        verified=verified,
        reason=reason,
        diff=diff,
        stats=stats,
        edits=edits,
    )


def outcome_result(ls: LowEntropyServer, outcome: ApplyOutcome) -> dict[str, Any]:
    stats = attrs.evolve(outcome.stats, seconds=round(outcome.stats.seconds, 4))
    result = ApplyResult(
        edit=outcome.workspace_edit(versioned=_versioned_edits(ls)),
        diff=outcome.diff,
        verified=outcome.verified,
        reason=outcome.reason,
        version=outcome.version,
        stats=stats,
    )
    written: dict[str, Any] = wire.unstructure(result)
    return written


def _versioned_edits(ls: LowEntropyServer) -> bool:
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace is not None else None
    return bool(edit is not None and edit.document_changes)


# ---- edit selection (Cmd-K) ---------------------------------------------------------------

EDIT_SYSTEM = (
    "You rewrite a selected piece of code as the user instructs. Answer with the complete new "
    "code for the selection only, in one fenced code block, and nothing else."
)
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:\n```|\Z)", re.S)


def _code_of(answer: str) -> str:
    blocks = _FENCE.findall(answer)
    return max(blocks, key=len) if blocks else answer.strip("\n")


async def compute_edit_selection(
    ls: LowEntropyServer,
    document: WireDocument,
    rng: WireRange,
    instruction: str,
    on_piece: OnPiece | None = None,
) -> ApplyOutcome:
    if not instruction.strip():
        raise protocol.invalid_params(f"{EDIT_SELECTION}: the instruction is empty")
    original, _ = _document(ls, document)
    lines = original.split("\n")
    selection = _selection(rng, len(lines))
    assert selection is not None
    start, end = selection
    if end <= start:
        raise protocol.invalid_params(f"{EDIT_SELECTION}: the range selects no line")
    selected = "\n".join(lines[start:end])
    path = _relative(ls, document.uri)
    language = language_for(path)
    config = ls.settings.role("chat")
    backend = await ls.backends.get("chat", config)
    request = ChatRequest(
        messages=(
            ChatMessage(role="system", content=EDIT_SYSTEM),
            ChatMessage(
                role="user",
                content=f"File: {path}\nSelection:\n```{language}\n{selected}\n```\n"
                f"Instruction: {instruction.strip()}",
            ),
        ),
        max_tokens=max(config.max_tokens, len(selected) // 2 + 64),
        temperature=config.temperature,
        stable_prefix=EDIT_SYSTEM,
    )
    try:
        async with contextlib.aclosing(backend.generator.stream_chat(request)) as stream:
            answer = "".join([piece async for piece in stream])
    except Exception as exc:
        raise JsonRpcException(
            message=f"lowentropy: the chat model failed: {exc}", code=REQUEST_FAILED
        ) from exc
    whole_lines = WireRange(
        start=protocol.WirePosition(line=start, character=0),
        end=protocol.WirePosition(line=end - 1, character=len(lines[end - 1]) or 1),
    )
    # The user already waits for the chat model's answer: a model rewrite may take its time.
    return await compute_apply(
        ls, document, _code_of(answer), whole_lines, on_piece, instruction, wait=True
    )


# ---- handlers ----------------------------------------------------------------------------


async def apply_request(ls: LowEntropyServer, params: Any) -> dict[str, Any]:
    request = protocol.parse_params(params, ApplyParams, APPLY)
    on_piece = _progress(ls, request.partial_result_token)
    outcome = await compute_apply(
        ls,
        request.text_document,
        request.sketch,
        request.range,
        on_piece,
        request.instruction,
        wait=request.wait,
    )
    return outcome_result(ls, outcome)


async def edit_selection_request(ls: LowEntropyServer, params: Any) -> dict[str, Any]:
    request = protocol.parse_params(params, EditSelectionParams, EDIT_SELECTION)
    on_piece = _progress(ls, request.partial_result_token)
    outcome = await compute_edit_selection(
        ls, request.text_document, request.range, request.instruction, on_piece
    )
    return outcome_result(ls, outcome)


def _command_params(args: tuple[Any, ...], cls: type[Any], name: str) -> Any:
    if len(args) != 1:
        raise protocol.invalid_params(f"{name}: expects one argument object, got {len(args)}")
    return protocol.parse_params(args[0], cls, name)


async def _apply_and_write(
    ls: LowEntropyServer, compute: Callable[[WireDocument], Any], document: WireDocument, label: str
) -> dict[str, Any]:
    """Compute, then write through `workspace/applyEdit` only if verified and still current."""
    outcome: ApplyOutcome = await compute(document)
    for attempt in range(2):
        if not outcome.verified:
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Warning,
                    message=f"lowentropy: nothing applied: {outcome.reason}",
                )
            )
            return {**outcome_result(ls, outcome), "applied": False}
        doc = ls.workspace.text_documents.get(outcome.uri)
        if doc is not None and int(doc.version or 0) == outcome.version:
            break
        if attempt == 1:
            raise StaleVersionError(
                message=f"{outcome.uri} kept changing while the edit was computed; nothing applied",
                code=CONTENT_MODIFIED,
            )
        # The user typed meanwhile: recompute against the current text, once.
        outcome = await compute(WireDocument(uri=document.uri, version=None))
    edit = outcome.workspace_edit(versioned=_versioned_edits(ls))
    response = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=edit, label=label)
    )
    applied = bool(response.applied)
    if not applied:
        log.info("the client did not apply the edit: %s", response.failure_reason)
    return {**outcome_result(ls, outcome), "applied": applied}


async def apply_command(ls: LowEntropyServer, *args: Any) -> dict[str, Any]:
    request = _command_params(args, ApplyParams, APPLY_COMMAND)

    async def compute(document: WireDocument) -> ApplyOutcome:
        return await compute_apply(
            ls,
            document,
            request.sketch,
            request.range,
            instruction=request.instruction,
            wait=request.wait,
        )

    return await _apply_and_write(ls, compute, request.text_document, "lowentropy: apply sketch")


async def edit_command(ls: LowEntropyServer, *args: Any) -> dict[str, Any]:
    request = _command_params(args, EditSelectionParams, EDIT_COMMAND)

    async def compute(document: WireDocument) -> ApplyOutcome:
        return await compute_edit_selection(ls, document, request.range, request.instruction)

    return await _apply_and_write(ls, compute, request.text_document, "lowentropy: edit selection")


async def diff_command(ls: LowEntropyServer, *args: Any) -> dict[str, Any]:
    request = _command_params(args, ApplyParams, DIFF_COMMAND)
    outcome = await compute_apply(
        ls,
        request.text_document,
        request.sketch,
        request.range,
        instruction=request.instruction,
        wait=request.wait,
    )
    return outcome_result(ls, outcome)


async def code_actions(
    ls: LowEntropyServer, params: types.CodeActionParams
) -> list[types.CodeAction] | None:
    """The next edit, then apply / edit / diff on the selection or at the cursor.

    The next edit is this document's deterministic propagation from the last
    edit, with its edit attached (editors without a next-edit UI apply it as a
    code action). The sketch comes from the client as the command's argument;
    when it has none, the code of the last chat answer is offered (chat, then
    apply, in any editor).
    """
    doc = ls.workspace.text_documents.get(params.text_document.uri)
    if doc is None:
        return None
    document = {"uri": doc.uri, "version": int(doc.version or 0)}
    rng = wire.unstructure(params.range)
    actions: list[types.CodeAction] = []
    next_edit = await ls.next_edits.code_action(doc.uri)
    if next_edit is not None:
        actions.append(next_edit)
    sketch = ls.last_chat_code()
    if sketch:
        args = {"textDocument": document, "sketch": sketch}
        actions.append(
            types.CodeAction(
                title="lowentropy: Apply the code from the last chat answer",
                kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(
                    title="Apply sketch", command=APPLY_COMMAND, arguments=[args]
                ),
            )
        )
        actions.append(
            types.CodeAction(
                title="lowentropy: Show the diff of the last chat answer's code",
                kind=types.CodeActionKind.Empty,
                command=types.Command(title="Show diff", command=DIFF_COMMAND, arguments=[args]),
            )
        )
    if params.range.start != params.range.end:
        actions.append(
            types.CodeAction(
                title="lowentropy: Edit selection…",
                kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(
                    title="Edit selection…",
                    command=EDIT_COMMAND,
                    arguments=[{"textDocument": document, "range": rng, "instruction": ""}],
                ),
            )
        )
    return actions


def _command(handler: Callable[..., Any]) -> Callable[..., Any]:
    """pygls reads a command handler's type hints; these name the server class only for mypy."""

    async def run(ls, *args):  # type: ignore[no-untyped-def]
        return await handler(ls, *args)

    return run


def register(ls: LowEntropyServer) -> None:
    ls.feature(APPLY)(apply_request)
    ls.feature(EDIT_SELECTION)(edit_selection_request)
    ls.command(APPLY_COMMAND)(_command(apply_command))
    ls.command(EDIT_COMMAND)(_command(edit_command))
    ls.command(DIFF_COMMAND)(_command(diff_command))
    ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.QuickFix,
                types.CodeActionKind.RefactorRewrite,
                types.CodeActionKind.Empty,
            ]
        ),
    )(code_actions)
