"""The apply model's path: each region the plan defers rewritten by the `apply` role,
spliced back and verified.

The model sees one region and its part of the sketch (`<code>…</code> <update>…</update>`
→ `<updated-code>`), with the original region as the speculative draft; `DriftGuard`
(guard.py) cuts a stream at its first line that dooms it. A region's rewrite must pass
`verify_rewrite` (it keeps what the sketch elides and invents nothing), the spliced file
`verify`; the first region that fails ends the path with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lowentropy.models.types import Stream

from ..protocol import ApplyStats
from .merge import Region, splice
from .plan import ApplyPlan
from .verify import DriftGuard, verify, verify_rewrite

if TYPE_CHECKING:
    from ..app import LowEntropyServer

log = logging.getLogger(__name__)

REQUEST_FAILED = int(types.LSPErrorCodes.RequestFailed)

# A partial result: a piece of region `region`'s new text, which replaces original lines
# from `startLine` (0-based) on; pieces of one region arrive in order.
OnPiece = Callable[[Region, int, str], None]


class RewriteDoomedError(Exception):
    """The model's rewrite was stopped at a line no continuation can make right (a line
    the sketch adds, skipped: `DriftGuard.doomed`); the message says which."""


class RegionTooLargeError(Exception):
    """A region the model's context cannot hold (plan.py bounds regions for a 4,096-token
    context; a smaller one, or a server's own limit, can still refuse)."""


# How llama.cpp here, llama-server, vLLM and OpenAI word a prompt over the context.
_CONTEXT_FULL = re.compile(
    r"does not fit the context|context length|context window|exceeds the context|"
    r"maximum context|too many tokens",
    re.IGNORECASE,
)


async def model_apply(
    ls: LowEntropyServer,
    original: str,
    sketch: str,
    plan: ApplyPlan,
    language: str,
    instruction: str | None,
    stats: ApplyStats,
    on_piece: OnPiece | None,
) -> tuple[str, str | None]:
    """The file with `plan.regions` rewritten by the model, and why it is refused (None
    when it verified)."""
    rewrites = []
    reason: str | None = None
    for index, region in enumerate(plan.regions):
        try:
            rewritten = await _rewrite_region(
                ls, region, index, language, instruction, stats, on_piece
            )
        except RewriteDoomedError as exc:  # stopped early: no continuation could verify
            reason = f"the apply model's rewrite failed verification: {exc}"
            rewritten = region.original
        except RegionTooLargeError as exc:  # a refusal with its reason, not an error
            reason = (
                f"lines {region.start_line + 1}-{region.end_line} do not fit the apply "
                f"model's context ({exc}); select the code to change"
            )
            rewritten = region.original
        # Inside a region the whole-file checks see nothing: the model must keep what
        # the sketch elides and invent nothing.
        own = verify_rewrite(region.original, region.update, rewritten)
        if not own.ok and reason is None:
            reason = f"the apply model's rewrite failed verification: {own.reason}"
        rewrites.append((region, rewritten))
        if reason is not None:  # a refusal either way: answer now, not after the rest
            break
    result = splice(original, rewrites)
    if reason is None:
        check = await asyncio.to_thread(
            verify, original, result, sketch, language=language, regions=list(plan.regions)
        )
        if not check.ok:
            reason = f"the apply model's rewrite failed verification: {check.reason}"
    if reason is not None and plan.reason:
        # What did not place (which sketch lines), for a chat panel to ask again with.
        reason = f"{reason}; placing the sketch: {plan.reason}"
    return result, reason


async def _rewrite_region(
    ls: LowEntropyServer,
    region: Region,
    index: int,
    language: str,
    instruction: str | None,
    stats: ApplyStats,
    on_piece: OnPiece | None,
) -> str:
    """The `apply` role's rewrite of one region (its original text is the speculative draft)."""
    from lowentropy.prompts.apply import (
        DEFAULT_APPLY_FORMAT,
        OPEN_TAG,
        STOP,
        UpdatedCodeStream,
        _common_indent,
        apply_chat_request,
        apply_completion_request,
        get_apply_format,
        parse_updated_code,
    )

    config = ls.settings.role("apply")
    fmt = get_apply_format(config.template or DEFAULT_APPLY_FORMAT)
    backend = await ls.backends.get("apply", config)
    stream: Stream
    if backend.generator.capabilities.chat_template:
        chat = apply_chat_request(
            region.original, region.update, instruction=instruction, language=language, format=fmt
        )
        # The prompt's estimate (the region once and a half), within the role's limit.
        chat = attrs.evolve(chat, max_tokens=min(chat.max_tokens, config.max_tokens))
        stream = backend.generator.stream_chat(chat)
    else:  # a base model (e.g. Gemma 270M): the raw prompt ends inside the answer tag
        raw = apply_completion_request(
            region.original, region.update, instruction=instruction, language=language, format=fmt
        )
        raw = attrs.evolve(raw, max_tokens=min(raw.max_tokens, config.max_tokens))
        stream = backend.generator.stream_completion(raw)
    pieces: list[str] = []
    # What the client sees while it streams: the code only, at the region's indentation.
    shown = UpdatedCodeStream(_common_indent(region.original) if fmt.dedent else "")
    # A line that fails verification whatever follows (in neither region nor update, a
    # marker, a kept line before a new one it follows): stop there (guard.py).
    guard = DriftGuard(region.original, region.update)
    try:
        async with contextlib.aclosing(stream):  # stopping early stops the generation
            async for piece in stream:
                pieces.append(piece)
                code = shown.code(piece)
                if guard.feed(code):
                    log.info("apply: the rewrite stopped: %s", guard.reason)
                    break
                if on_piece is not None and code:
                    on_piece(region, index, shown.reindent(code))
    except JsonRpcException:
        raise
    except Exception as exc:
        if _CONTEXT_FULL.search(str(exc)):
            raise RegionTooLargeError(str(exc)) from exc
        raise JsonRpcException(
            message=f"lowentropy: the apply model failed: {exc}", code=REQUEST_FAILED
        ) from exc
    if stream.stats is not None:  # final now that the stream is closed
        stats.tokens += stream.stats.tokens
        stats.draft_tokens += stream.stats.draft_tokens
        stats.accepted_draft_tokens += stream.stats.accepted_draft_tokens
    if guard.doomed:
        raise RewriteDoomedError(guard.reason)
    answer = f"{OPEN_TAG}\n{guard.code}{STOP}" if guard.stopped else "".join(pieces)
    rewritten: str = parse_updated_code(answer, region.original)
    return rewritten
