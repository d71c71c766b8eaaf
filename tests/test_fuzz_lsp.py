"""Fuzzing the real server over pipes (issue 17): frames, params and document edits.

Hypothesis writes at the server (`raw_lsp.InProcessServer`: the real server on a
thread, real OS pipes, the same framing, protocol and document model as `serve`):

- document edits with LSP's line breaks, the ones it does not count (U+2028, form
  feed, NEL...), astral and combining characters, and ranges past the ends: after each
  change the server's copy equals `reference_apply`, written here from the LSP
  specification independently of `server/positions.py`;
- frames with right and wrong Content-Lengths, junk, broken bodies and invalid params:
  every request whose body is JSON gets its answer within `ANSWER_S`, and the server
  stays alive.

Derandomized with a fixed number of examples, so CI runs the same cases in ~1 minute;
Tab points at a refused endpoint (`raw_lsp.NO_MODEL`), so no model runs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_lsp import InProcessServer, frame, in_process_server, message, reference_apply

ANSWER_S = 10.0
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PIECES = [
    "a", "b", "x", " ", "=", "(", ")", "\t",
    "\n", "\r", "\r\n",  # the line breaks LSP counts
    "\u2028", "\u2029", "\x0c", "\x0b", "\x85", "\x1c",  # ones it does not
    "é", "e\u0301", "ü", "✓", "🎉", "𝔘",  # two-byte, combining, BMP, astral
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with in_process_server(tmp_path_factory.mktemp("fuzz")) as s:
        yield s
    assert not s.alive()


def _position() -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({"line": st.integers(0, 9), "character": st.integers(0, 14)})


changes = st.one_of(
    st.fixed_dictionaries(
        {"range": st.fixed_dictionaries({"start": _position(), "end": _position()}), "text": texts}
    ),
    st.fixed_dictionaries({"text": texts}),
)

_opened = [0]


@FUZZ
@given(initial=texts, edits=st.lists(changes, min_size=1, max_size=8))
def test_document_model_matches_the_lsp_reference_after_each_change(
    server: InProcessServer, initial: str, edits: list[dict[str, Any]]
) -> None:
    _opened[0] += 1
    uri = (server.root / f"doc{_opened[0]}.txt").as_uri()
    server.open(f"doc{_opened[0]}.txt", initial, language="plaintext")
    expected = initial
    for version, change in enumerate(edits, start=2):
        server.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
        )
        expected = reference_apply(expected, change)
        server.request("lowentropy/stats", {}, timeout=ANSWER_S)  # every change is in
        assert server.text(uri) == expected, (initial, edits[: version - 1])
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


# ---- frames ------------------------------------------------------------------------------

INVALID_NUMBERS = st.sampled_from([None, -1, -(2**31), 2**31, 2**53, 1.5, "3", True])
positions = st.one_of(
    _position(),
    st.fixed_dictionaries(
        {"line": INVALID_NUMBERS | st.integers(0, 3), "character": INVALID_NUMBERS}
    ),
)
_ids = itertools.count(1)
METHODS = ["textDocument/inlineCompletion", "textDocument/completion", "textDocument/codeAction"]


def _params(method: str, uri: str, pos: dict[str, Any]) -> dict[str, Any]:
    doc = {"uri": uri}
    if method == "textDocument/codeAction":
        return {
            "textDocument": doc,
            "range": {"start": pos, "end": pos},
            "context": {"diagnostics": []},
        }
    if method == "textDocument/inlineCompletion":
        return {"textDocument": doc, "position": pos, "context": {"triggerKind": 1}}
    return {"textDocument": doc, "position": pos}


@st.composite
def segments(draw: st.DrawFn, uri: str) -> tuple[bytes, list[int], int]:
    """One piece of traffic: its bytes, the ids it must be answered under, and how many
    answers with id null it may draw (bodies that are not JSON)."""
    kind = draw(
        st.sampled_from(
            ["good", "short", "long", "chars", "junk+good", "not json", "array", "bad utf8"]
        )
    )
    msg_id = next(_ids)
    method = draw(st.sampled_from([*METHODS, "lowentropy/stats"]))
    params = {} if method == "lowentropy/stats" else _params(method, uri, draw(positions))
    request = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
    if draw(st.booleans()):  # non-ASCII in the body: its length in characters is not in bytes
        request["x"] = "ü🎉"
    body = json.dumps(request, ensure_ascii=False).encode()
    length = len(body)
    if kind == "good":
        return frame(body), [msg_id], 0
    if kind == "short":
        return frame(body, max(0, length - draw(st.integers(1, 300)))), [msg_id], 0
    if kind == "long":
        return frame(body, length + draw(st.integers(1, 5000))), [msg_id], 0
    if kind == "chars":
        return frame(body, len(body.decode())), [msg_id], 0
    if kind == "junk+good":
        junk = draw(st.binary(max_size=40)).replace(b"Content-Length", b"")
        return junk + frame(body), [msg_id], 0
    if kind == "not json":
        return frame(body[: max(1, length // 2)] + b"}}"), [], 1
    if kind == "array":
        return frame(b"[" + body + b"]"), [msg_id], 0
    broken = body.replace(b'"jsonrpc"', b'"json\xffrpc"')  # invalid UTF-8, id still readable
    return frame(broken), [msg_id], 0


@FUZZ
@given(data=st.data())
def test_every_request_is_answered_whatever_the_frames(
    server: InProcessServer, data: st.DataObject
) -> None:
    server.drain()
    uri = server.open("frames.py", "x = 'ü ✓ 🎉'\rn = 1\r\ndef f():\n    return n\n")
    pieces = data.draw(st.lists(segments(uri), min_size=1, max_size=6))
    expected: list[int] = []
    for raw, ids, _ in pieces:
        server.send(raw)
        expected += ids
    # A last good request: when it is answered, everything before it has been read.
    server.send(message({"jsonrpc": "2.0", "id": 0, "method": "lowentropy/stats", "params": {}}))
    for msg_id in [*expected, 0]:
        answer = server.response(msg_id, timeout=ANSWER_S)
        # -32802: a newer completion for the same document superseded this one
        assert "result" in answer or answer["error"]["code"] in (-32600, -32602, -32700, -32802)
    assert server.alive()
    nulls = [m for m in server.pending if m.get("id") is None]
    assert len(nulls) <= sum(n for _, _, n in pieces)  # only bodies that are not JSON
