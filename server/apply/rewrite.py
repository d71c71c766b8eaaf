"""The apply model's path: each region the plan defers rewritten by the `apply` role,
spliced back and verified.

The model sees one region and its part of the sketch (`<code>…</code> <update>…</update>`
→ `<updated-code>`), with the original region as the speculative draft; `DriftGuard`
(guard.py) cuts a stream at its first line that dooms it. A region's rewrite must pass
`verify_rewrite` (it keeps what the sketch elides and invents nothing), the spliced file
`verify`; the first region that fails ends the path with the reason. Unless the client
asks to wait, the path answers by a deadline (budget.py): a rewrite the measured speed says
cannot finish by then is refused before the model starts, one that runs past it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lowentropy.models.types import Stream

from ..protocol import ApplyStats
from .budget import CHARS_PER_TOKEN, ModelSpeed, speed_of
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


class OverBudgetError(Exception):
    """The rewrite cannot finish, or did not finish, by the request's deadline; the message
    says how long it would take and how to ask for it anyway."""


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
    deadline: float | None = None,
) -> tuple[str, str | None]:
    """The file with `plan.regions` rewritten by the model, and why it is refused (None
    when it verified). `deadline`: a `time.perf_counter()` by which to answer (None: wait
    for the model however long it takes)."""
    rewrites = []
    reason: str | None = None
    for index, region in enumerate(plan.regions):
        try:
            rewritten = await _rewrite_region(
                ls, region, index, language, instruction, stats, on_piece, deadline
            )
        except OverBudgetError as exc:  # a refusal now, with how to ask for the slow path
            reason = str(exc)
            rewritten = region.original
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
    deadline: float | None,
) -> str:
    """The `apply` role's rewrite of one region (its original text is the speculative draft),
    by `deadline` if one is given."""
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
    speed = speed_of(backend.generator)
    if deadline is not None:
        _refuse_over_budget(region, speed, deadline)
    stream: Stream
    prompt_chars: int
    if backend.generator.capabilities.chat_template:
        chat = apply_chat_request(
            region.original, region.update, instruction=instruction, language=language, format=fmt
        )
        # The prompt's estimate (the region once and a half), within the role's limit.
        chat = attrs.evolve(chat, max_tokens=min(chat.max_tokens, config.max_tokens))
        stream = backend.generator.stream_chat(chat)
        prompt_chars = sum(len(m.content) for m in chat.messages)
    else:  # a base model (e.g. Gemma 270M): the raw prompt ends inside the answer tag
        raw = apply_completion_request(
            region.original, region.update, instruction=instruction, language=language, format=fmt
        )
        raw = attrs.evolve(raw, max_tokens=min(raw.max_tokens, config.max_tokens))
        stream = backend.generator.stream_completion(raw)
        prompt_chars = len(raw.prompt)
    pieces: list[str] = []
    # What the client sees while it streams: the code only, at the region's indentation.
    shown = UpdatedCodeStream(_common_indent(region.original) if fmt.dedent else "")
    # A line that fails verification whatever follows (in neither region nor update, a
    # marker, a kept line before a new one it follows): stop there (guard.py).
    guard = DriftGuard(region.original, region.update)
    started = time.perf_counter()
    first: float | None = None  # when the first piece came: the prefill's end
    timer = asyncio.timeout(None if deadline is None else max(0.0, deadline - started))
    try:
        async with timer, contextlib.aclosing(stream):  # stopping early stops the generation
            async for piece in stream:
                if first is None:
                    first = time.perf_counter()
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
        if timer.expired():
            _measure(speed, stream, prompt_chars, pieces, started, first)
            raise OverBudgetError(_over_budget(region, speed, stopped=True)) from exc
        if _CONTEXT_FULL.search(str(exc)):
            raise RegionTooLargeError(str(exc)) from exc
        raise JsonRpcException(
            message=f"lowentropy: the apply model failed: {exc}", code=REQUEST_FAILED
        ) from exc
    _measure(speed, stream, prompt_chars, pieces, started, first)
    if stream.stats is not None:  # final now that the stream is closed
        stats.tokens += stream.stats.tokens
        stats.draft_tokens += stream.stats.draft_tokens
        stats.accepted_draft_tokens += stream.stats.accepted_draft_tokens
    if guard.doomed:
        raise RewriteDoomedError(guard.reason)
    answer = f"{OPEN_TAG}\n{guard.code}{STOP}" if guard.stopped else "".join(pieces)
    rewritten: str = parse_updated_code(answer, region.original)
    return rewritten


def _measure(
    speed: ModelSpeed,
    stream: Stream,
    prompt_chars: int,
    pieces: list[str],
    started: float,
    first: float | None,
) -> None:
    """What this rewrite took, for the next one's estimate (tokens by the backend's count,
    else by characters)."""
    counted = stream.stats
    if counted is not None:
        prompt = counted.prompt_tokens - counted.prompt_tokens_reused
        tokens = counted.tokens
    else:
        prompt = round(prompt_chars / CHARS_PER_TOKEN)
        tokens = round(sum(map(len, pieces)) / CHARS_PER_TOKEN)
    now = time.perf_counter()
    if first is None:
        speed.record_unfinished_prefill(prompt, now - started)
    else:
        speed.record(prompt, first - started, max(0, tokens - 1), now - first)


def _refuse_over_budget(region: Region, speed: ModelSpeed, deadline: float) -> None:
    seconds = speed.estimate(len(region.original), len(region.update))
    if seconds is not None and time.perf_counter() + seconds > deadline:
        raise OverBudgetError(_over_budget(region, speed, stopped=False))


def _over_budget(region: Region, speed: ModelSpeed, stopped: bool) -> str:
    lines = f"lines {region.start_line + 1}-{region.end_line}"
    seconds = speed.estimate(len(region.original), len(region.update))
    took = ""
    if seconds is not None and speed.decode_tps is None:  # the prefill alone: a lower bound
        took = f"at least {seconds:.1f} s here"
    elif seconds is not None:
        took = f"about {seconds:.1f} s here, writing {speed.decode_tps:.0f} tokens/s"
    what = (
        f"the apply model did not finish rewriting {lines} within this request's budget"
        if stopped
        else f"the apply model needs longer than this request's budget to rewrite {lines}"
    )
    return (
        f"{what}{f' ({took})' if took else ''} (applyBudgetMs); nothing applied: ask again "
        'with wait (the request\'s "wait": true, `lowentropy apply --wait`) to let it finish'
    )
