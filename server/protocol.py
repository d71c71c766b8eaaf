"""The custom `lowentropy/*` protocol, typed in one place (handlers, tests and client docs use it)."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from .wire import STRUCTURE_ERRORS, describe_error, structure

T = TypeVar("T")

STATS = "lowentropy/stats"


def invalid_params(message: str) -> JsonRpcException:
    return JsonRpcException(message=message, code=int(types.ErrorCodes.InvalidParams))


def parse_params(params: Any, cls: type[T], method: str) -> T:
    """Structure a custom request's params strictly; bad params are an InvalidParams error."""
    try:
        return structure(params, cls)
    except STRUCTURE_ERRORS as exc:
        raise invalid_params(
            f"{method}: {describe_error(exc).replace('settings', 'params')}"
        ) from exc


# Copilot's notifications, served so existing clients (copilot.lua, copilot.vim UIs) report acceptance.
DID_SHOW_COMPLETION = "textDocument/didShowCompletion"
DID_PARTIALLY_ACCEPT_COMPLETION = "textDocument/didPartiallyAcceptCompletion"


@attrs.define(kw_only=True)
class StatsParams:
    reset: bool = False


@attrs.define(kw_only=True)
class BackendState:
    role: str
    kind: str  # "embedded" | "pool"
    name: str
    template: str
    tokenizer_exact: bool
    detail: dict[str, object] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class StatsResult:
    tab: dict[str, object]
    backends: list[BackendState]


# ---- codebase index and chat ------------------------------------------------------------

SEARCH = "lowentropy/search"
INDEX_STATUS = "lowentropy/indexStatus"
CHAT = "lowentropy/chat"


@attrs.define(kw_only=True)
class WirePosition:
    line: int
    character: int


@attrs.define(kw_only=True)
class WireRange:
    start: WirePosition
    end: WirePosition


@attrs.define(kw_only=True)
class WireDocument:
    uri: str
    version: int | None = None


@attrs.define(kw_only=True)
class SearchParams:
    query: str
    limit: int = 10


@attrs.define(kw_only=True)
class SearchHit:
    """One `lowentropy/search` result (the request answers a list of them)."""

    location: types.Location
    score: float
    text: str
    symbol: str | None
    kind: str | None


@attrs.define(kw_only=True)
class IndexStatusResult:
    state: str  # off | indexing | embedding | ready | error
    files: int
    chunks: int
    pending_embeddings: int
    root_hash: str
    model: str
    error: str | None


@attrs.define(kw_only=True)
class WireChatMessage:
    role: str
    content: str


@attrs.define(kw_only=True)
class ChatContext:
    text_document: WireDocument | None = None
    range: WireRange | None = None
    position: WirePosition | None = None
    uris: list[str] | None = None


@attrs.define(kw_only=True)
class ChatParams:
    messages: list[WireChatMessage]
    context: ChatContext | None = None
    # A string or an integer (LSP's ProgressToken); checked by the handler.
    partial_result_token: Any = None
    work_done_token: Any = None


@attrs.define(kw_only=True)
class IgnoredUri:
    """A file chat's context named that stayed out of the prompt, and why."""

    uri: str
    reason: str


@attrs.define(kw_only=True)
class ChatResult:
    content: str
    citations: list[types.Location]
    ignored: list[IgnoredUri]


# ---- apply ---------------------------------------------------------------------------------

APPLY = "lowentropy/apply"
EDIT_SELECTION = "lowentropy/editSelection"


@attrs.define(kw_only=True)
class ApplyParams:
    text_document: WireDocument
    sketch: str
    range: WireRange | None = None
    instruction: str | None = None
    # Wait for the apply model however long its rewrite takes; by default a request answers
    # within a short deadline and refuses a rewrite that cannot finish by then (apply/budget.py).
    wait: bool = False
    partial_result_token: Any = None
    work_done_token: Any = None


@attrs.define(kw_only=True)
class EditSelectionParams:
    text_document: WireDocument
    range: WireRange
    instruction: str
    partial_result_token: Any = None
    work_done_token: Any = None


@attrs.define(kw_only=True)
class ApplyStats:
    """What an apply cost: the model's tokens (draft ones proposed and accepted), seconds."""

    tokens: int = 0
    draft_tokens: int = 0
    accepted_draft_tokens: int = 0
    seconds: float = 0.0
    path: str = "deterministic"  # or "model"


@attrs.define(kw_only=True)
class ApplyResult:
    edit: types.WorkspaceEdit  # empty unless verified
    diff: str
    verified: bool
    reason: str | None  # why it is not verified (or a note when it is)
    version: int  # the document version the edit is against
    stats: ApplyStats


# ---- next edit ---------------------------------------------------------------------------

NEXT_EDIT = "lowentropy/nextEdit"
NEXT_EDIT_STATS = "lowentropy/nextEditStats"
# Copilot's next-edit-suggestion method and notification, so existing Neovim NES UIs work.
COPILOT_INLINE_EDIT = "textDocument/copilotInlineEdit"
DID_SHOW_INLINE_EDIT = "textDocument/didShowInlineEdit"


@attrs.define(kw_only=True)
class NextEditParams:
    text_document: WireDocument
    position: WirePosition


@attrs.define(kw_only=True)
class NextEditCommand:
    title: str
    command: str
    arguments: list[str] = attrs.field(factory=list)


@attrs.define(kw_only=True)
class NextEditItem:
    text_document: WireDocument
    range: WireRange
    text: str
    command: NextEditCommand | None = None


@attrs.define(kw_only=True)
class NextEditLocation:
    uri: str
    range: WireRange


@attrs.define(kw_only=True)
class NextEditResult:
    edits: list[NextEditItem]
    jump: NextEditLocation | None = None
