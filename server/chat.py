"""Codebase chat (`lowentropy/chat`): retrieve, render by priority, stream, cite.

The question (the last user message) goes to the index's hybrid search; the
hits, the selection and the current file around the cursor are rendered into
one user message by priority within `chatContext.tokens`; the `chat` role
streams the answer. With a `partialResultToken` each piece of the answer is
sent as `$/progress` `{content: piece}` (concatenate them). The result is
`{content, citations: [Location], ignored: [{uri, reason}]}`: the excerpts the
answer cites as [n], or, when it cites none, every excerpt the prompt included,
best first. Each citation is the chunk's real range in its file.

Secrets never reach the prompt: files the walker would not index (gitignored,
`.env`, keys, files holding credentials) are left out of the context, and
no file outside the workspace is read (symlinks resolved: `etc_link/passwd` with
`etc_link -> /etc` is outside). Each file of `context` left out is named in
`ignored` with the reason, so the client can tell the user. Weaker signs (a URL's
password) are masked in the prompt with every other prompt (`redaction.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path

from lowentropy.models.types import ChatMessage, ChatRequest
from lowentropy.prompts.chat import (
    SYSTEM_PROMPT,
    ChatChunk,
    ChatInputs,
    cited_numbers,
    render_chat_context,
)
from lowentropy.prompts.renderer import PromptTooLargeError
from lowentropy.retrieval import SearchHit, Walker, contains_secret, is_secret_path
from lowentropy.retrieval.walker import read_bytes

from . import protocol, wire
from .indexing import IndexUnavailableError, hit_location
from .loop_guard import LoopGuard
from .positions import line_starts, offset_at

if TYPE_CHECKING:
    from .app import LowEntropyServer

log = logging.getLogger(__name__)

ROLES = ("user", "assistant", "system")


@attrs.frozen(kw_only=True)
class _Source:
    """A file the user pointed at, resolved inside the workspace."""

    label: str
    text: str
    language: str


def _walker(ls: LowEntropyServer) -> Walker | None:
    service = ls.index.index
    if service is not None:
        return service.walker
    return Walker(ls.root) if ls.root is not None else None


def _check(ls: LowEntropyServer, path: str) -> tuple[str | None, str]:
    """(the path relative to the workspace, "") when it may go into a prompt, else (None, why)."""
    walker = _walker(ls)
    if walker is None:
        return None, "no workspace folder is open"
    rel = walker.relative(path)
    if rel is None:
        return None, "outside the workspace"
    if is_secret_path(rel):
        return None, "a credentials file (by its name)"
    if walker.entry(rel) is None:
        return None, "not indexable (ignored, excluded, binary, too large or missing)"
    return rel, ""


def _allowed(ls: LowEntropyServer, path: str) -> str | None:
    """The path relative to the workspace when it may go into a prompt, else None."""
    return _check(ls, path)[0]


def _document_text(ls: LowEntropyServer, uri: str) -> str | None:
    """The open buffer's text, else the file's; None when binary, too large or not UTF-8.
    (Secrets are checked by the caller, so it can say why a file was left out.)"""
    doc = ls.workspace.text_documents.get(uri)
    if doc is not None:
        return str(doc.source)
    path = to_fs_path(uri)
    data = read_bytes(Path(path)) if path else None
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _source(ls: LowEntropyServer, uri: str) -> _Source | str:
    """The file behind `uri`, or why it stays out of the prompt."""
    path = to_fs_path(uri)
    if not path:
        return "not a file"
    rel, why = _check(ls, path)
    if rel is None:
        return why
    text = _document_text(ls, uri)
    if text is None:
        return "unreadable (binary, too large or not UTF-8)"
    if contains_secret(text):
        return "it holds a secret (a key or token)"
    doc = ls.workspace.text_documents.get(uri)
    language = (doc.language_id if doc is not None else None) or Path(rel).suffix.lstrip(".")
    return _Source(label=rel, text=text, language=language or "")


def _resolve(ls: LowEntropyServer, uri: str, ignored: list[protocol.IgnoredUri]) -> _Source | None:
    """`_source`, noting a refused file in `ignored` (returned to the client) and the log."""
    source = _source(ls, uri)
    if isinstance(source, str):
        log.warning("chat context: %s left out: %s", uri, source)
        ignored.append(protocol.IgnoredUri(uri=uri, reason=source))
        return None
    return source


def _selection(text: str, rng: protocol.WireRange) -> str:
    starts = line_starts(text)

    def offset(pos: protocol.WirePosition) -> int:
        return offset_at(text, pos.line, max(pos.character, 0), starts)

    start, end = offset(rng.start), offset(rng.end)
    return text[min(start, end) : max(start, end)]


def _chunk(hit: SearchHit) -> ChatChunk:
    span = hit.span
    label = f"{hit.rel_path}:{span.start_line + 1}-{span.end_line + 1}"
    if hit.symbol:
        label += f" ({hit.symbol})"
    return ChatChunk(label=label, text=hit.text, language=hit.language)


async def chat(ls: LowEntropyServer, params: Any) -> Any:
    request = protocol.parse_params(params, protocol.ChatParams, protocol.CHAT)
    messages = request.messages
    if not messages or messages[-1].role != "user" or not messages[-1].content.strip():
        raise protocol.invalid_params(
            f"{protocol.CHAT}: the last message must be the user's question"
        )
    for m in messages:
        if m.role not in ROLES:
            raise protocol.invalid_params(f"{protocol.CHAT}: unknown role {m.role!r}")
    token = request.partial_result_token
    if token is not None and (isinstance(token, bool) or not isinstance(token, (str, int))):
        raise protocol.invalid_params(
            f"{protocol.CHAT}: partialResultToken must be a string or integer"
        )
    question = messages[-1].content
    options = ls.settings.chat_context

    # Retrieval: the index may be off or still indexing; chat still answers from the editor context.
    hits: list[SearchHit] = []
    if options.max_chunks:
        try:
            hits = await ls.index.search(question, options.max_chunks)
        except IndexUnavailableError as exc:
            log.info("chat without retrieval: %s", exc)

    ctx = request.context or protocol.ChatContext()
    file_label = file_text = selection = selection_label = None
    language = ""
    cursor_line = 0
    extra: list[ChatChunk] = []
    ignored: list[protocol.IgnoredUri] = []
    if ctx.text_document is not None:
        source = _resolve(ls, ctx.text_document.uri, ignored)
        if source is not None:
            file_label, file_text, language = source.label, source.text, source.language
            if ctx.range is not None:
                selection = _selection(source.text, ctx.range)
                cursor_line = ctx.range.start.line
                selection_label = (
                    f"{source.label}:{ctx.range.start.line + 1}-{ctx.range.end.line + 1}"
                )
            elif ctx.position is not None:
                cursor_line = ctx.position.line
    for uri in ctx.uris or ():
        source = _resolve(ls, uri, ignored)
        if source is not None:
            extra.append(ChatChunk(label=source.label, text=source.text, language=source.language))

    chunks = [*extra, *(_chunk(h) for h in hits)]
    inputs = ChatInputs(
        question=question,
        chunks=chunks,
        selection=selection or None,
        selection_label=selection_label,
        file_label=file_label,
        file_text=file_text,
        cursor_line=cursor_line,
        language=language,
    )
    config = ls.settings.role("chat")
    backend = await ls.backends.get("chat", config)
    answer_tokens = config.max_tokens
    try:
        if backend.blocking_tokenizer:
            prompt = await asyncio.to_thread(
                render_chat_context,
                inputs,
                backend.renderer,
                budget=options.tokens,
                reserve_output=answer_tokens,
            )
        else:
            prompt = render_chat_context(
                inputs, backend.renderer, budget=options.tokens, reserve_output=answer_tokens
            )
    except PromptTooLargeError as exc:
        raise protocol.invalid_params(f"{protocol.CHAT}: {exc}") from None

    history = tuple(ChatMessage(role=m.role, content=m.content) for m in messages[:-1])  # type: ignore[arg-type]
    chat_request = ChatRequest(
        messages=(
            ChatMessage(role="system", content=SYSTEM_PROMPT),
            *history,
            ChatMessage(role="user", content=prompt.user),
        ),
        max_tokens=answer_tokens,
        temperature=config.temperature,
        stable_prefix=SYSTEM_PROMPT,
    )
    pieces: list[str] = []
    loops = LoopGuard()

    def send(text: str) -> None:
        pieces.append(text)
        if token is not None and text:
            ls.protocol.notify(
                types.PROGRESS, types.ProgressParams(token=token, value={"content": text})
            )

    try:
        async with contextlib.aclosing(backend.generator.stream_chat(chat_request)) as stream:
            async for piece in stream:
                fed = loops.feed(piece)
                send(fed.text)
                if fed.stop:
                    log.info("chat: the answer started repeating itself; stopped it there")
                    break  # aclosing stops the generation now
        send(loops.finish())
    except JsonRpcException:
        raise
    except Exception as exc:
        raise JsonRpcException(
            message=f"lowentropy: chat failed: {exc}", code=int(types.LSPErrorCodes.RequestFailed)
        ) from exc
    content = "".join(pieces).strip()
    ls.last_chat_answer = content

    # Excerpts from attached files (`uris`) have no range to cite; index hits do.
    offset = len(extra)
    cited = [n - 1 for n in cited_numbers(content, len(chunks)) if n - 1 in prompt.included]
    chosen = [i for i in cited if i >= offset] or [i for i in prompt.included if i >= offset]
    citations = [hit_location(hits[i - offset]) for i in chosen]
    log.info(
        "chat: %d prompt tokens, %d excerpts (%d cited), %d answer chars",
        prompt.tokens,
        len(prompt.included),
        len(cited),
        len(content),
    )
    result = protocol.ChatResult(content=content, citations=citations, ignored=ignored)
    return wire.unstructure(result)
