"""The apply prompt: `<code>original</code> <update>sketch</update>` → `<updated-code>…`.

The format of the open FastApply models and the hosted Morph/Relace apply
models, so any of them can serve the `apply` role. Formats (system and user
text) are data in `templates/apply.toml`, picked by name.

`render_apply` gives an `ApplyPrompt`: the chat messages, a raw completion
prompt that ends inside the answer (`<updated-code>\\n`), the `prediction`
(the original region, as the model should mostly copy it: the speculative
draft) and the stop string. `apply_chat_request` / `apply_completion_request`
wrap it in the request dataclasses of `lowentropy.models.types`, imported when
called so that importing `prompts` stays free of `models`. `parse_updated_code`
gets the new region out of a whole answer; `UpdatedCodeStream` does it
incrementally for partial results.

Formats with `dedent` send the region without its common indentation (a 135M
model copies a method body far more faithfully at column 0); the parser puts
the indentation back when it is given the original region.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import re
import textwrap
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .fim import UnknownTemplateError

if TYPE_CHECKING:
    from lowentropy.models.types import ChatRequest, CompletionRequest

__all__ = [
    "DEFAULT_APPLY_FORMAT",
    "OPEN_TAG",
    "STOP",
    "ApplyFormat",
    "ApplyPrompt",
    "UpdatedCodeStream",
    "apply_chat_request",
    "apply_completion_request",
    "apply_format_names",
    "get_apply_format",
    "parse_updated_code",
    "render_apply",
]

OPEN_TAG = "<updated-code>"
STOP = "</updated-code>"
DEFAULT_APPLY_FORMAT = "lowentropy"


@attrs.frozen(kw_only=True)
class ApplyFormat:
    name: str
    system: str
    user: str
    instruction: str = "Instruction: {text}\n"
    dedent: bool = False


@attrs.frozen(kw_only=True)
class ApplyPrompt:
    """One rendered apply prompt, backend-neutral."""

    system: str
    user: str
    # For completion backends: system and user text, then the start of the answer.
    prompt: str
    # What the answer should mostly be (the region as sent): the speculative draft.
    prediction: str
    stop: tuple[str, ...]
    max_tokens: int
    # Indentation removed from the region (put back by `parse_updated_code`).
    indent: str = ""


@functools.cache
def _registry() -> dict[str, ApplyFormat]:
    package = importlib.resources.files(__package__ or "lowentropy.prompts")
    data = tomllib.loads(package.joinpath("templates/apply.toml").read_text("utf-8"))
    return {name: _parse(name, entry) for name, entry in data["formats"].items()}


def _parse(name: str, entry: Mapping[str, Any]) -> ApplyFormat:
    user = str(entry["user"])
    if user.count("{code}") != 1 or user.count("{update}") != 1:
        raise ValueError(f"apply format {name!r}: user needs one {{code}} and one {{update}}")
    return ApplyFormat(
        name=name,
        system=str(entry["system"]),
        user=user,
        instruction=str(entry.get("instruction", "Instruction: {text}\n")),
        dedent=bool(entry.get("dedent", False)),
    )


def apply_format_names() -> tuple[str, ...]:
    return tuple(_registry())


def get_apply_format(name: str = DEFAULT_APPLY_FORMAT) -> ApplyFormat:
    """The format called `name`; an unknown name raises `UnknownTemplateError` listing them."""
    try:
        return _registry()[name]
    except KeyError:
        raise UnknownTemplateError(name, apply_format_names()) from None


def render_apply(
    original: str,
    update: str,
    *,
    instruction: str | None = None,
    language: str | None = None,
    max_tokens: int | None = None,
    format: str | ApplyFormat = DEFAULT_APPLY_FORMAT,
) -> ApplyPrompt:
    """The prompt that rewrites `original` (one region) with the sketch `update` merged in.

    `max_tokens` None: room for the region once and a half plus the sketch,
    estimated from characters (code runs 3-4 characters a token).
    """
    fmt = get_apply_format(format) if isinstance(format, str) else format
    indent = ""
    code, sketch = original, update
    if fmt.dedent:
        indent = _common_indent(original)
        code, sketch = textwrap.dedent(original), textwrap.dedent(update)
    code, sketch = _with_newline(code), _with_newline(sketch)
    extra = fmt.instruction.replace("{text}", instruction.strip()) if instruction else ""
    user = (
        fmt.user.replace("{instruction}", extra)
        .replace("{language}", language or "")
        .replace("{update}", sketch)
        .replace("{code}", code)
    )
    if max_tokens is None:
        max_tokens = math.ceil(len(original) / 2) + len(update) // 4 + 64
    return ApplyPrompt(
        system=fmt.system,
        user=user,
        prompt=f"{fmt.system}\n\n{user}\n{OPEN_TAG}\n",
        prediction=code,
        stop=(STOP,),
        max_tokens=max_tokens,
        indent=indent,
    )


def apply_chat_request(
    original: str,
    update: str,
    *,
    instruction: str | None = None,
    language: str | None = None,
    max_tokens: int | None = None,
    temperature: float = 0.0,
    format: str | ApplyFormat = DEFAULT_APPLY_FORMAT,
) -> ChatRequest:
    """A `ChatRequest` (system + user message) with the region as `prediction`."""
    from lowentropy.models.types import ChatMessage, ChatRequest

    p = render_apply(
        original,
        update,
        instruction=instruction,
        language=language,
        max_tokens=max_tokens,
        format=format,
    )
    return ChatRequest(
        messages=(
            ChatMessage(role="system", content=p.system),
            ChatMessage(role="user", content=p.user),
        ),
        max_tokens=p.max_tokens,
        temperature=temperature,
        stop=p.stop,
        stable_prefix=p.system,
        prediction=p.prediction,
        # Where the engine can prefill, the answer starts inside the tag: small models
        # then copy the code instead of chatting about it.
        assistant_prefix=f"{OPEN_TAG}\n",
    )


def apply_completion_request(
    original: str,
    update: str,
    *,
    instruction: str | None = None,
    language: str | None = None,
    max_tokens: int | None = None,
    temperature: float = 0.0,
    format: str | ApplyFormat = DEFAULT_APPLY_FORMAT,
) -> CompletionRequest:
    """A raw-prompt `CompletionRequest` whose prompt ends with `<updated-code>\\n`.

    For models without a chat template; the answer is then the code itself.
    """
    from lowentropy.models.types import CompletionRequest

    p = render_apply(
        original,
        update,
        instruction=instruction,
        language=language,
        max_tokens=max_tokens,
        format=format,
    )
    return CompletionRequest(
        prompt=p.prompt,
        max_tokens=p.max_tokens,
        temperature=temperature,
        stop=p.stop,
        stable_prefix=p.system,
        prediction=p.prediction,
    )


_FENCE_OPEN = re.compile(r"\A[ \t]*```[^\n`]*\n")
_FENCE_CLOSE = re.compile(r"\n[ \t]*```[ \t]*\n?\Z")


def parse_updated_code(answer: str, original: str | None = None) -> str:
    """The updated code in a model's answer (whole or cut short).

    Takes what follows `<updated-code>` (the whole answer when the tag is
    missing, as after a completion prompt that ends with it) up to
    `</updated-code>` or the end, drops a code fence around it and the newline
    after the tag. Given the `original` region: puts back indentation that a
    `dedent` format removed (when the answer is less indented than the
    original) and matches the original's final newline.
    """
    body = answer
    start = body.find(OPEN_TAG)
    if start >= 0:
        body = body[start + len(OPEN_TAG) :]
    end = body.find(STOP)
    if end >= 0:
        body = body[:end]
    else:  # cut short: drop a partial closing tag
        for k in range(len(STOP) - 1, 0, -1):
            if body.endswith(STOP[:k]):
                body = body[: len(body) - k]
                break
    body = body.lstrip("\r\n") if body.strip() else ""
    if _FENCE_OPEN.match(body):
        body = _FENCE_OPEN.sub("", body, count=1)
        body = _FENCE_CLOSE.sub("\n", body)
    body = body.rstrip()
    if original is None:
        return body + "\n" if body else body
    want = _common_indent(original)
    have = _common_indent(body)
    if want != have and want.startswith(have) and body:
        body = textwrap.indent(body, want[len(have) :])
    newline = "\r\n" if "\r\n" in original else "\n"
    if newline != "\n":
        body = body.replace("\r\n", "\n").replace("\n", newline)
    return body + newline if original.endswith(("\n", "\r")) and body else body


class UpdatedCodeStream:
    """The updated code as the answer streams in: feed pieces, get code text to show.

    Emits text after `<updated-code>` (or from the start when the answer begins
    with code) and holds back what could still turn out to be the closing tag.
    `indent` (the region's common indentation, for a `dedent` format) is put
    before every non-empty line as it streams, so what a client shows while the
    answer arrives already stands where it will go; `parse_updated_code` on the
    whole answer still gives the final text.
    """

    def __init__(self, indent: str = "") -> None:
        self._buf = ""
        self._started = False
        self._done = False
        self._indent = indent
        self._line_start = True

    def feed(self, piece: str) -> str:
        return self.reindent(self.code(piece))

    def reindent(self, text: str) -> str:
        """`text` (what `code` returned, in order) with `indent` before each non-empty line."""
        if not self._indent or not text:
            return text
        out: list[str] = []
        for part in re.split(r"(\n)", text):
            if part == "\n":
                self._line_start = True
            elif part:
                if self._line_start and part not in ("\r",):
                    out.append(self._indent)
                self._line_start = False
            out.append(part)
        return "".join(out)

    def code(self, piece: str) -> str:
        """The code in `piece`, as the model wrote it (no tags, not re-indented)."""
        if self._done:
            return ""
        self._buf += piece
        if not self._started:
            at = self._buf.find(OPEN_TAG)
            if at >= 0:
                self._buf = self._buf[at + len(OPEN_TAG) :].lstrip("\r\n")
            elif len(self._buf) < len(OPEN_TAG) and OPEN_TAG.startswith(self._buf.lstrip()):
                return ""  # may still become the opening tag
            self._started = True
        end = self._buf.find(STOP)
        if end >= 0:
            self._done = True
            out, self._buf = self._buf[:end], ""
            return out
        hold = next((k for k in range(len(STOP) - 1, 0, -1) if self._buf.endswith(STOP[:k])), 0)
        out, self._buf = self._buf[: len(self._buf) - hold], self._buf[len(self._buf) - hold :]
        return out


def _common_indent(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    indents = [line[: len(line) - len(line.lstrip())] for line in lines]
    prefix = indents[0]
    for ind in indents[1:]:
        while not ind.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"
