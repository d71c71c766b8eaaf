"""Model prediction (Zeta-style) through the `nextEdit` role, and merging with propagation.

The model rewrites the editable region around the cursor; the diff between the
old and new region, as minimal edits, is its suggestion. A small model often
rewrites badly, so a suggestion is kept only when it looks confident: the
rewrite is complete (ends at the region's end marker), changes few lines, does
not add syntax errors, introduces no identifier that exists nowhere in the file
or the recent edits, and does not simply undo what the user just did.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from lowentropy.models.errors import BackendError
from lowentropy.models.types import CompletionRequest
from lowentropy.prompts.next_edit import (
    NextEditInputs,
    NextEditPrompt,
    load_template,
    render_next_edit,
)
from lowentropy.prompts.renderer import PromptTooLargeError

from .diffs import Change, minimal_changes
from .propagate import Candidate
from .syntax import Source

if TYPE_CHECKING:
    from ..backends import RoleBackend

log = logging.getLogger(__name__)

_IDENT = re.compile(r"[A-Za-z_]\w*")
MAX_CHANGED_LINES = 4
MIN_SIMILARITY = 0.6


@attrs.frozen(kw_only=True)
class ModelOutcome:
    changes: tuple[Change, ...]
    rejected: str | None  # why the rewrite was not kept (None when kept or empty)
    raw: str


def region_changes(
    uri: str,
    text: str,
    language: str,
    prompt: NextEditPrompt,
    raw: str,
    complete: bool,
    context: str,
    undo_of: str | None = None,
) -> ModelOutcome:
    """Judge the model's rewrite of the region and turn it into minimal changes.

    Pure, but it parses the whole file twice (the syntax-error check): call it
    off the event loop (`model_prediction` does)."""
    t = load_template()
    if not complete:
        return ModelOutcome(changes=(), rejected="incomplete rewrite", raw=raw)
    new_region = raw.replace(t.cursor, "")
    if new_region.startswith(t.region_start):
        new_region = new_region[len(t.region_start) :]
    if not new_region.endswith("\n"):
        new_region += "\n"
    old_region = prompt.region
    if new_region == old_region:
        return ModelOutcome(changes=(), rejected=None, raw=raw)
    old_lines, new_lines = old_region.splitlines(), new_region.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    changed = sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )
    if changed > MAX_CHANGED_LINES or matcher.ratio() < MIN_SIMILARITY:
        return ModelOutcome(changes=(), rejected=f"rewrites too much ({changed} lines)", raw=raw)
    # The document's own region: `prompt.region` has a newline added when the region
    # ends the file without one; the rewrite then ends without it too.
    region_end = min(prompt.region_start + len(old_region), len(text))
    region_text = text[prompt.region_start : region_end]
    if region_text != old_region:
        if old_region != region_text + "\n":
            return ModelOutcome(changes=(), rejected="prompt is for another text", raw=raw)
        new_region = new_region[:-1]
    new_text = text[: prompt.region_start] + new_region + text[region_end:]
    if undo_of is not None and new_text == undo_of:
        return ModelOutcome(changes=(), rejected="undoes the last edit", raw=raw)
    known = set(_IDENT.findall(text)) | set(_IDENT.findall(context))
    added = set(_IDENT.findall(new_region)) - set(_IDENT.findall(old_region))
    if added - known:
        return ModelOutcome(changes=(), rejected=f"invents {sorted(added - known)[:3]}", raw=raw)
    if Source(new_text, language).errors() > Source(text, language).errors():
        return ModelOutcome(changes=(), rejected="adds syntax errors", raw=raw)
    changes = minimal_changes(uri, region_text, new_region, prompt.region_start)
    return ModelOutcome(changes=tuple(changes), rejected=None, raw=raw)


async def model_prediction(
    backend: RoleBackend,
    *,
    uri: str,
    text: str,
    cursor: int,
    path: str,
    language: str,
    events: Sequence[tuple[str, str]],
    undo_of: str | None,
    budget: int,
    region: tuple[int, int] | None = None,
    context_lines: int | None = None,
) -> ModelOutcome:
    """Render, stream from the role's backend and judge. Backend failures are no suggestion.

    `region`: editable lines (above, below) the cursor's line, else the template's;
    `context_lines`: excerpt lines each side of the region, else the template's."""
    t = load_template()
    inputs = NextEditInputs(
        text=text,
        cursor_offset=cursor,
        path=path,
        events=tuple(events),
        budget=budget,
        reserve_output=0,
    )
    if region is not None:
        inputs = attrs.evolve(inputs, region_before=region[0], region_after=region[1])
    if context_lines is not None:
        inputs = attrs.evolve(inputs, context_lines=context_lines)

    def render() -> NextEditPrompt:
        region_tokens = backend.tokenizer.count(_region_of(inputs))
        reserve = region_tokens * 2 + 32
        return render_next_edit(
            attrs.evolve(inputs, reserve_output=reserve),
            count=backend.tokenizer.count,
            renderer=backend.renderer,
        )

    try:
        prompt = await asyncio.to_thread(render) if backend.blocking_tokenizer else render()
    except PromptTooLargeError:  # the newest edit alone is over the budget (a big paste)
        return ModelOutcome(changes=(), rejected="prompt too large", raw="")
    role = backend.config
    region_tokens = backend.tokenizer.count(prompt.region) if not backend.blocking_tokenizer else 0
    max_tokens = max(role.max_tokens, region_tokens * 2 + 32 if region_tokens else 256)
    req = CompletionRequest(
        prompt=prompt.prompt,
        max_tokens=max_tokens,
        temperature=role.temperature,
        stop=(t.region_end, "```"),
        stable_prefix=prompt.stable_prefix,
        prediction=prompt.region,
    )
    raw = ""
    complete = False
    try:
        async with asyncio.timeout(role.timeouts.total + 1.0):
            stream = backend.generator.stream_completion(req)
            async with contextlib.aclosing(stream):
                async for delta in stream:
                    raw += delta
                    if t.region_end in raw:
                        raw = raw.split(t.region_end, 1)[0]
                        break
        # A stop string ends the stream early: anything shorter than the budget is complete.
        used = backend.tokenizer.count(raw) if not backend.blocking_tokenizer else 0
        complete = used < max_tokens - 1
    except BackendError as exc:
        log.warning("next edit: backend failed: %s", exc.user_message)
        return ModelOutcome(changes=(), rejected="backend failed", raw=raw)
    except TimeoutError:
        log.warning("next edit: backend timed out")
        return ModelOutcome(changes=(), rejected="timed out", raw=raw)
    context = "\n".join(d for _, d in events)
    # Two full-file parses (the syntax check) and line diffs: CPU work, off the event loop.
    return await asyncio.to_thread(
        region_changes, uri, text, language, prompt, raw, complete, context, undo_of
    )


def _region_of(inputs: NextEditInputs) -> str:
    text, cursor = inputs.text, inputs.cursor_offset
    line = text.count("\n", 0, cursor)
    lines = text.split("\n")
    return "\n".join(lines[max(0, line - inputs.region_before) : line + inputs.region_after + 1])


def merge(propagated: Sequence[Candidate], predicted: Sequence[Change]) -> list[Candidate]:
    """Propagated edits first, then the model's, then the places propagation found without
    an edit (jump targets).

    A model change equal to a propagated edit is dropped (they agree: propagation's
    stays first); one that overlaps a propagated edit differently drops the whole
    rewrite (one rewrite's changes belong together, and propagation is the certain
    one). A place-only candidate that a kept model change covers is dropped: the
    model supplied its edit. A place-only candidate never suppresses a model edit.
    """
    edits = [c for c in propagated if c.change is not None]
    places = [c for c in propagated if c.change is None]
    kept: list[Change] = []
    for ch in predicted:
        same = [c for c in edits if c.change is not None and c.change.overlaps(ch)]
        if not same:
            kept.append(ch)
        elif any(c.change != ch for c in same):
            kept = []
            break
    model = [
        Candidate(uri=ch.uri, start=ch.start, end=ch.end, new=ch.new, reason="model") for ch in kept
    ]
    places = [p for p in places if not any(ch.overlaps(_span(p)) for ch in kept)]
    return [*edits, *model, *places]


def _span(c: Candidate) -> Change:
    return Change(uri=c.uri, start=c.start, end=c.end, new="")
