"""The codebase-chat prompt: question, selection, current file and retrieved chunks by priority.

The context goes into the last user message, rendered with the priority
renderer so it fits the budget: the question is always kept; then the
selection; then the current file's lines nearest the cursor; then the
retrieved chunks, best first. Chunks come before the file in the text so
the prompt's head is stable while the user keeps asking about the same
code (the KV prefix cache hits), and each chunk is numbered so the answer
can cite it as [n].
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from .renderer import Component, Renderer, file_lines, group, text

__all__ = [
    "SYSTEM_PROMPT",
    "ChatChunk",
    "ChatInputs",
    "ChatPrompt",
    "cited_numbers",
    "render_chat_context",
]

SYSTEM_PROMPT = (
    "You are a programming assistant inside the user's editor. Answer the question about "
    "their codebase using the numbered code excerpts provided. Cite the excerpts you use as "
    "[1], [2], ... right after the claim they support. Be brief and concrete; name files and "
    "functions. If the excerpts do not answer the question, say so."
)

# Priorities: higher survives longer when the budget is tight.
_SELECTION = 1000
# The cursor line; one less per line of distance, so the 20 lines around the
# cursor outrank the best excerpt and farther lines interleave with the rest.
_FILE_TOP = 820
_CHUNK_TOP = 800  # the best chunk; each next one less
_CHUNK_STEP = 10
_FILE_WINDOW = 60  # lines each side of the cursor that may be offered


@attrs.frozen(kw_only=True)
class ChatChunk:
    """A retrieved excerpt: `label` is how the prompt names it (path and lines)."""

    label: str
    text: str
    language: str = ""


@attrs.frozen(kw_only=True)
class ChatInputs:
    question: str
    chunks: Sequence[ChatChunk] = ()
    selection: str | None = None
    selection_label: str | None = None
    file_label: str | None = None
    file_text: str | None = None
    cursor_line: int = 0
    language: str = ""


@attrs.frozen(kw_only=True)
class ChatPrompt:
    user: str  # the rendered last user message
    tokens: int
    included: tuple[int, ...]  # indices into `chunks` of the excerpts that fit
    file_included: bool


def _fence(body: str, language: str) -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}{language}\n{body.rstrip()}\n{ticks}\n"


def _chunk_header(n: int, chunk: ChatChunk) -> str:
    return f"[{n}] {chunk.label}\n"


def render_chat_context(
    inputs: ChatInputs, renderer: Renderer, *, budget: int, reserve_output: int
) -> ChatPrompt:
    """Render the user message within `budget - reserve_output` tokens (exact by `renderer`)."""
    parts: list[Component] = []
    if inputs.chunks:
        parts.append(text("Code excerpts from the workspace:\n\n"))
        for i, chunk in enumerate(inputs.chunks):
            priority = _CHUNK_TOP - _CHUNK_STEP * i
            parts.append(
                group(
                    text(_chunk_header(i + 1, chunk)),
                    text(_fence(chunk.text, chunk.language) + "\n"),
                    priority=priority,
                )
            )
    if inputs.file_text is not None and inputs.file_label:
        lines = inputs.file_text.split("\n")
        first = max(0, inputs.cursor_line - _FILE_WINDOW)
        last = min(len(lines), inputs.cursor_line + _FILE_WINDOW + 1)
        body = [line + "\n" for line in lines[first:last]]
        parts.append(
            group(
                text(
                    f"The user's current file, {inputs.file_label} "
                    f"(cursor on line {inputs.cursor_line + 1}):\n```{inputs.language}\n"
                ),
                file_lines(body, inputs.cursor_line, top=_FILE_TOP, first=first, mark_stable=False),
                text("```\n\n"),
                priority=_FILE_TOP,
            )
        )
    if inputs.selection:
        label = f" ({inputs.selection_label})" if inputs.selection_label else ""
        parts.append(
            group(
                text(f"The user's selection{label}:\n"),
                text(_fence(inputs.selection, inputs.language) + "\n"),
                priority=_SELECTION,
            )
        )
    parts.append(text(f"Question: {inputs.question.strip()}\n"))
    result = renderer.render(parts, budget=budget, reserve_output=reserve_output)
    included = tuple(
        i for i, chunk in enumerate(inputs.chunks) if _chunk_header(i + 1, chunk) in result.text
    )
    file_included = bool(inputs.file_label) and f"current file, {inputs.file_label}" in result.text
    return ChatPrompt(
        user=result.text, tokens=result.tokens, included=included, file_included=file_included
    )


_CITATION = re.compile(r"\[(\d{1,3})\]")


def cited_numbers(answer: str, available: int) -> list[int]:
    """1-based excerpt numbers cited as [n] in `answer`, in order of first citation."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        n = int(match.group(1))
        if 1 <= n <= available and n not in seen:
            seen.append(n)
    return seen
