"""Parse the SSE stream of OpenAI `/v1/completions` and `/v1/chat/completions` into text.

Pure parsing: `SseDecoder` turns lines into event payloads, `parse_chunk` turns
one payload into a `Delta`, `text_deltas` composes both over an async line
iterator. The stream must end with `data: [DONE]` or a chunk carrying a
`finish_reason`; one that simply stops was cut, and raises BackendStreamBroken.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal

import attrs

from lowentropy.models.errors import BackendError, BackendHTTPError, BackendStreamBroken

DONE = "[DONE]"
Kind = Literal["completion", "chat"]


@attrs.frozen
class SseEvent:
    data: str
    event: str = "message"


@attrs.frozen
class Delta:
    text: str
    finish_reason: str | None = None


@attrs.define
class SseDecoder:
    """Accumulates SSE lines; `feed` returns an event when a blank line completes one."""

    _data: list[str] = attrs.field(factory=list)
    _event: str = "message"

    def feed(self, line: str) -> SseEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # comment / keep-alive ping
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        # id, retry and unknown fields mean nothing to a completion stream.
        return None

    def flush(self) -> SseEvent | None:
        """The last event when the stream ends without a trailing blank line."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = "message"
            return None
        event = SseEvent(data="\n".join(self._data), event=self._event)
        self._data = []
        self._event = "message"
        return event


def error_from_payload(payload: object, *, endpoint: str = "") -> BackendError:
    """An in-stream `{"error": ...}` payload as the matching BackendError."""
    err = payload.get("error", payload) if isinstance(payload, dict) else payload
    message = str(err)
    status: int | None = None
    if isinstance(err, dict):
        message = str(err.get("message") or err.get("type") or err)
        for key in ("code", "status"):
            value = err.get(key)
            if isinstance(value, int) and 100 <= value <= 599:
                status = value
                break
            if isinstance(value, str) and value.isdigit():
                status = int(value)
                break
    if status is not None:
        return BackendHTTPError(
            f"server error in stream: {message}", status=status, endpoint=endpoint
        )
    return BackendStreamBroken(f"server error in stream: {message}", endpoint=endpoint)


def parse_chunk(data: str, kind: Kind, *, endpoint: str = "") -> Delta:
    """One `data:` payload (not `[DONE]`) as a text delta; raises on error payloads."""
    try:
        payload: Any = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BackendStreamBroken(
            f"malformed stream chunk: {data[:80]!r}", endpoint=endpoint
        ) from exc
    if not isinstance(payload, dict):
        raise BackendStreamBroken(f"unexpected stream chunk: {data[:80]!r}", endpoint=endpoint)
    if "error" in payload:
        raise error_from_payload(payload, endpoint=endpoint)
    choices = payload.get("choices") or []
    if not choices:  # e.g. a usage-only chunk
        return Delta("")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise BackendStreamBroken(f"unexpected choice: {choice!r}", endpoint=endpoint)
    if kind == "chat":
        delta = choice.get("delta") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
    else:
        text = choice.get("text")
    return Delta(text or "", choice.get("finish_reason"))


async def text_deltas(
    lines: AsyncIterator[str], kind: Kind, *, endpoint: str = ""
) -> AsyncGenerator[str, None]:
    """Yield the non-empty text deltas of an SSE line stream until `[DONE]`."""
    decoder = SseDecoder()
    finished = False

    def handle(event: SseEvent) -> Delta | None:
        nonlocal finished
        if event.data.strip() == DONE:
            return None
        if event.event == "error":
            try:
                payload: object = json.loads(event.data)
            except json.JSONDecodeError:
                payload = event.data
            raise error_from_payload(payload, endpoint=endpoint)
        delta = parse_chunk(event.data, kind, endpoint=endpoint)
        if delta.finish_reason is not None:
            finished = True
        return delta

    async for line in lines:
        event = decoder.feed(line)
        if event is None:
            continue
        delta = handle(event)
        if delta is None:
            return
        if delta.text:
            yield delta.text
    event = decoder.flush()
    if event is not None:
        delta = handle(event)
        if delta is None:
            return
        if delta.text:
            yield delta.text
    if not finished:
        raise BackendStreamBroken("stream ended without [DONE]", endpoint=endpoint)
