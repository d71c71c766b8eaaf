"""A next-edit answer: the prediction, its wire form, and the request's parameters.

Pure helpers of `feature.py`: build a `Prediction` from ordered candidates,
convert offsets to LSP positions (UTF-16 columns) and parse a request.
"""

from __future__ import annotations

from typing import Any

import attrs
from lsprotocol import types

from .. import protocol
from ..positions import position_at
from ..wire import to_plain, unstructure
from .jump import Jump, next_jump
from .propagate import Candidate

ACCEPT_COMMAND = "lowentropy.acceptNextEdit"  # the command every offered edit carries


@attrs.frozen(kw_only=True)
class Prediction:
    """One answer: edits (in their documents' texts) and where to go next."""

    uri: str
    text: str  # the requested document's text the answer is for
    edits: tuple[Candidate, ...]
    jump: Jump | None
    texts: dict[str, str]  # uri -> the text its offsets refer to
    source: str  # propagation | model | none


def _prediction(uri: str, text: str, ordered: list[Candidate], texts: dict[str, str]) -> Prediction:
    """The answer from merged candidates (edits first): the first edit, with the rest of one
    model rewrite, and the place after it. `source` names where the first candidate, the
    one the answer is built on, came from."""
    if not ordered:
        return Prediction(uri=uri, text=text, edits=(), jump=None, texts=texts, source="none")
    first = ordered[0]
    source = "model" if first.reason == "model" else "propagation"
    if first.new is None:  # the place is known, the edit is not: jump there
        return Prediction(
            uri=uri,
            text=text,
            edits=(),
            jump=Jump(uri=first.uri, offset=first.start),
            texts=texts,
            source=source,
        )
    if first.uri != uri:  # the edit is in another file: go there to make it
        return Prediction(
            uri=uri,
            text=text,
            edits=(first,),
            jump=Jump(uri=first.uri, offset=first.start),
            texts=texts,
            source=source,
        )
    edits = [first]
    if first.reason == "model":  # one rewrite may be several small edits: keep them together
        edits += [c for c in ordered[1:] if c.reason == "model" and c.uri == first.uri]
    return Prediction(
        uri=uri,
        text=text,
        edits=tuple(edits),
        jump=next_jump(ordered, edits),
        texts=texts,
        source=source,
    )


def _empty() -> dict[str, Any]:
    result: dict[str, Any] = unstructure(protocol.NextEditResult(edits=[], jump=None))
    return result


def _position(text: str, offset: int) -> protocol.WirePosition:
    line, character = position_at(text, offset)
    return protocol.WirePosition(line=line, character=character)


def _range(text: str, start: int, end: int) -> protocol.WireRange:
    return protocol.WireRange(start=_position(text, start), end=_position(text, end))


def _lsp_range(text: str, start: int, end: int) -> types.Range:
    r = _range(text, start, end)
    return types.Range(
        start=types.Position(line=r.start.line, character=r.start.character),
        end=types.Position(line=r.end.line, character=r.end.character),
    )


def _parse(params: Any) -> tuple[str, int | None, types.Position]:
    """uri, version and position of a nextEdit / copilotInlineEdit request (extra keys ignored:
    Copilot clients send more than we read)."""
    raw = to_plain(params)
    if not isinstance(raw, dict):
        raise protocol.invalid_params("nextEdit: params must be an object")
    fields = {k: raw[k] for k in ("textDocument", "position") if k in raw}
    parsed = protocol.parse_params(fields, protocol.NextEditParams, "lowentropy/nextEdit")
    pos = parsed.position
    if pos.line < 0 or pos.character < 0:
        raise protocol.invalid_params("nextEdit: negative position")
    return (
        parsed.text_document.uri,
        parsed.text_document.version,
        types.Position(line=pos.line, character=pos.character),
    )
