"""Malformed traffic and the process's end (issue 17 items 8, 9, 10), through `lowentropy.server serve`.

Each test is one finding of the issue, written at the real server process over raw
pipes (`raw_lsp.RawServer`): wrong Content-Lengths, requests pygls dropped without an
answer, a traceback per superseded request, and the abort on exit after a search.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from raw_lsp import NO_MODEL, RawServer, frame, message

STATS = "lowentropy/stats"
METHODS = ["textDocument/inlineCompletion", "textDocument/completion", "textDocument/codeAction"]


def _request(msg_id: int, method: str = STATS, params: Any = None, **extra: Any) -> bytes:
    body = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}, **extra}
    return json.dumps(body, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawServer]:
    """One server for the malformed traffic; after it all, it exits cleanly, no traceback."""
    s = RawServer(tmp_path_factory.mktemp("wire"))
    s.initialize()
    yield s
    assert s.close() == 0
    assert b"Traceback" not in s.stderr, s.stderr.decode()[-3000:]


def test_a_wrong_content_length_costs_no_message(server: RawServer) -> None:
    """Too small, too large (with the next frame behind it, or the client waiting) and
    counted in characters: each misframed request and the one after it are answered."""
    uri = server.open("ü ✓ 🎉 e\u0301.py", "x = 'ü ✓ 🎉 e\u0301'\n")
    position = {"line": 0, "character": 3}
    params = {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}}
    non_ascii = _request(3, "textDocument/inlineCompletion", params)
    cases = [
        frame(_request(1), 10) + message({"jsonrpc": "2.0", "id": 2, "method": STATS}),
        frame(non_ascii, len(non_ascii.decode())) + frame(_request(4)),  # characters
        frame(_request(5), 5000) + frame(_request(6)),  # too large, the next frame behind
        frame(_request(7), 5000),  # too large, and the client waits for the answer
        frame(_request(8), 0) + frame(_request(9)),
    ]
    for raw in cases:
        server.send(raw)
    for msg_id in range(1, 10):
        assert "result" in server.response(msg_id, timeout=10), msg_id
    assert server.alive()
    assert server.request(STATS, {})["result"]["tab"]["requests"] >= 1  # request 3 reached Tab


def test_junk_between_frames_is_skipped(server: RawServer) -> None:
    server.send(b"\xff\xfe garbage\r\n\r\nContent-Type: x\r\n\r\n" + frame(_request(1)))
    server.send(b"Content-Length: abc\r\n\r\n{}" + frame(_request(2)))
    server.send(b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + frame(_request(3)))
    for msg_id in (1, 2, 3):
        assert "result" in server.response(msg_id, timeout=10)


def test_invalid_utf8_with_junk_right_behind_it_keeps_its_id(server: RawServer) -> None:
    """A rightly framed body with an undecodable byte, then junk before the next frame in
    the same write (found by the fuzz test): the body is answered -32700 under its id."""
    broken = _request(1).replace(b'"jsonrpc"', b'"json\xffrpc"')
    server.send(frame(broken) + b"\x00" + frame(_request(2)))
    assert server.response(1, timeout=10)["error"]["code"] == -32700
    assert "result" in server.response(2, timeout=10)


def test_invalid_positions_get_invalid_params(server: RawServer) -> None:
    """null, negative and >= 2^31 positions on the three position requests: -32602 each."""
    uri = server.open("a.py", "x = 1\n")
    for method in METHODS:
        for bad in (None, -1, 2**31, 2**40):
            pos = {"line": 0, "character": bad}
            if method == "textDocument/codeAction":
                params: dict[str, Any] = {
                    "textDocument": {"uri": uri},
                    "range": {"start": {"line": 0, "character": 0}, "end": pos},
                    "context": {"diagnostics": []},
                }
            else:
                params = {"textDocument": {"uri": uri}, "position": pos}
                if method == "textDocument/inlineCompletion":
                    params["context"] = {"triggerKind": 1}
            error = server.request(method, params, timeout=10)["error"]
            assert error["code"] == -32602, (method, bad)
            assert "position" in error["message"] or "range" in error["message"]


def test_bodies_that_are_not_json_rpc_are_answered(server: RawServer) -> None:
    server.send(frame(b'{"jsonrpc": "2.0", "id": 1, "method": '))  # invalid JSON
    server.send(frame(b"[" + _request(2) + b"]"))  # a batch
    server.send(frame(_request(3).replace(b"stats", b"st\xffts")))  # invalid UTF-8
    server.send(frame(_request(4, x="PLACEHOLDER").replace(b"PLACEHOLDER", rb"\ud800")))
    server.send(frame(b"42"))
    assert server.response(None, timeout=10)["error"]["code"] == -32700
    assert server.response(2, timeout=10)["error"]["code"] == -32600
    assert server.response(3, timeout=10)["error"]["code"] == -32700
    answer = server.response(4, timeout=10)
    assert answer["error"]["code"] == -32602 and "surrogate" in answer["error"]["message"]
    assert server.response(None, timeout=10)["error"]["code"] == -32600
    assert "result" in server.request(STATS, {})


def test_a_lone_surrogate_in_a_notification_keeps_the_document_in_step(server: RawServer) -> None:
    uri = server.open("b.py", "x = 1\n")
    change = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}}
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [{**change, "text": "PLACEHOLDER"}],
            },
        }
    ).encode()
    server.send(frame(body.replace(b"PLACEHOLDER", rb"\udc80")))
    answer = server.request(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": 0, "character": 1},
            "context": {"triggerKind": 1},
        },
    )
    assert "result" in answer
    assert b"Traceback" not in server.stderr


def test_superseded_requests_write_one_line_each(tmp_path: Path) -> None:
    """A Tab endpoint that never answers (a socket that listens and never accepts: fault
    injection) keeps each completion in flight until the next one supersedes it."""
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(64)
        port = stalled.getsockname()[1]
        options = {**NO_MODEL, "tab": {"endpoints": [{"url": f"http://127.0.0.1:{port}/v1"}]}}
        s = RawServer(tmp_path, options)
        try:
            s.initialize()
            uri = s.open("a.py", "def add(a, b):\n    return \n")
            params = {
                "textDocument": {"uri": uri},
                "position": {"line": 1, "character": 11},
                "context": {"triggerKind": 1},
            }
            ids = list(range(1, 41))
            for msg_id in ids:
                s.send(
                    message(
                        {
                            "jsonrpc": "2.0",
                            "id": msg_id,
                            "method": "textDocument/inlineCompletion",
                            "params": params,
                        }
                    )
                )
            codes = [
                s.response(msg_id, timeout=20).get("error", {}).get("code") for msg_id in ids[:-1]
            ]
            assert codes == [-32802] * (len(ids) - 1)
        finally:
            s.close()
    assert b"Traceback" not in s.stderr
    assert len(s.stderr) < 20_000, len(s.stderr)  # was ~5 KB of traceback per request


def test_exit_right_after_a_search_is_clean(tmp_path: Path) -> None:
    """A search starts the ONNX export of the query encoder on a native thread; exiting
    while it runs aborted the server (status -6, "terminate called without an active
    exception")."""
    (tmp_path / "greet.py").write_text("def greet(name):\n    return f'hello {name}'\n")
    s = RawServer(tmp_path, {**NO_MODEL, "index": {"enabled": True}})
    s.initialize()
    for _ in range(600):
        status = s.request("lowentropy/indexStatus", {}, timeout=30)["result"]
        if status["files"] and not status["pendingEmbeddings"]:
            break
        time.sleep(0.2)
    hits = s.request("lowentropy/search", {"query": "greeting", "limit": 1}, timeout=60)
    assert hits["result"], hits
    assert s.close(timeout=60) == 0
    assert b"terminate called" not in s.stderr


def test_exit_without_shutdown_ends_with_status_1(tmp_path: Path) -> None:
    """LSP: 0 when shutdown came first, else 1 (pygls asked for it; its loop swallowed it)."""
    s = RawServer(tmp_path)
    s.initialize()
    s.notify("exit", None)
    assert s.proc.wait(timeout=30) == 1
    s.close()
