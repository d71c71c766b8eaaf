"""The `lowentropy` command: version, complete, TCP on loopback, and a clean stdio stream.

Data: tests/data/tab/fib.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from servers import free_port

from lowentropy.server.cli import parse_host_port, parse_location

FIB = Path(__file__).parent / "data" / "tab" / "fib.py"
CLI = [sys.executable, "-m", "lowentropy.server"]


def test_version() -> None:
    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("lowentropy ")


def test_tcp_address_defaults_to_loopback() -> None:
    assert parse_host_port("8123") == ("127.0.0.1", 8123)
    assert parse_host_port("0.0.0.0:8123") == ("0.0.0.0", 8123)
    assert parse_host_port("[::1]:8123") == ("::1", 8123)
    with pytest.raises(Exception, match="PORT"):
        parse_host_port("localhost:http")
    assert parse_location("a/b.py:3:7") == (Path("a/b.py"), 3, 7)


def test_complete_prints_the_suggestion(tmp_path: Path) -> None:
    """`complete fib.py:5:12` runs the server in-process and prints a suggestion."""
    path = tmp_path / "fib.py"
    path.write_text(FIB.read_text())
    done = subprocess.run(
        [*CLI, "--log-level", "WARNING", "complete", f"{path}:5:12"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    bad = subprocess.run(
        [*CLI, "complete", f"{path}:99:1"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "outside" in bad.stderr


async def test_serve_tcp_listens_on_loopback_and_answers(tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "token"
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        "--tcp",
        str(port),
        "--token-file",
        str(token_file),
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            listening = Path("/proc/net/tcp").read_text()
            if f":{port:04X} " in listening:
                break
            await asyncio.sleep(0.1)
        # 0100007F is 127.0.0.1: nothing listens on other addresses.
        rows = [r.split() for r in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = [r[1] for r in rows if r[1].endswith(f":{port:04X}") and r[3] == "0A"]
        assert local == [f"0100007F:{port:04X}"]
        client = LanguageClient("test", "0")
        await client.start_tcp("127.0.0.1", port)
        # The session opens with the token the server wrote (tests/test_security_tcp.py).
        result = await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=tmp_path.as_uri(),
                initialization_options={"tcpToken": token_file.read_text().strip()},
            )
        )
        assert result.capabilities.inline_completion_provider is not None
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    finally:
        proc.kill()
        await proc.wait()


def _frames(data: bytes) -> list[dict[str, object]]:
    """Parse a stdio LSP byte stream strictly: any stray byte fails."""
    frames = []
    while data:
        header, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"stray bytes on stdout: {data[:80]!r}"
        fields = dict(line.split(b": ", 1) for line in header.split(b"\r\n"))
        assert set(fields) <= {b"Content-Length", b"Content-Type"}, (
            f"stray bytes on stdout: {header[:80]!r}"
        )
        length = int(fields[b"Content-Length"])
        frames.append(json.loads(rest[:length]))
        data = rest[length:]
    return frames


def test_stdout_carries_only_lsp_while_the_model_loads(tmp_path: Path) -> None:
    """llama.cpp prints while loading; none of it may reach the protocol stream."""

    def frame(obj: dict[str, object]) -> bytes:
        body = json.dumps(obj).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    uri = (tmp_path / "fib.py").as_uri()
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "capabilities": {},
                "rootUri": tmp_path.as_uri(),
                # The stream is under test, not the latency: a loaded machine may take
                # longer than the keystroke budget for the model's first answer.
                "initializationOptions": {"completion": {"budgetMs": 60000}},
            },
        },
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {
                    "uri": uri,
                    "languageId": "python",
                    "version": 1,
                    "text": FIB.read_text(),
                }
            },
        },
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "textDocument/inlineCompletion",
            "params": {
                "textDocument": {"uri": uri},
                "position": {"line": 4, "character": 11},
                "context": {"triggerKind": 2},
            },
        },
    ]
    proc = subprocess.Popen(
        [*CLI, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdin is not None and proc.stdout is not None
    for message in messages:
        proc.stdin.write(frame(message))
    proc.stdin.flush()
    # Read until the completion's answer arrives, then shut down.
    buffer = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not select.select([proc.stdout], [], [], 1.0)[0]:
            continue
        chunk = proc.stdout.read1(65536)
        assert chunk, "server closed stdout early"
        buffer += chunk
        if b'"id": 2' in buffer or b'"id":2' in buffer:
            try:
                if any(f.get("id") == 2 for f in _frames(buffer)):
                    break
            except (AssertionError, json.JSONDecodeError, ValueError):
                continue  # a frame still arriving
    proc.stdin.write(
        frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
        + frame({"jsonrpc": "2.0", "method": "exit"})
    )
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=30)
    frames = _frames(buffer + out)
    answer = next(f for f in frames if f.get("id") == 2)
    assert answer["result"]["items"], answer  # type: ignore[index]


def test_doctor_reports_each_backend(tmp_path: Path, refused_url: str) -> None:
    """A chat role pointed at a dead endpoint (in the user's config: endpoints never come from
    an untrusted workspace) is reported; the embedded roles answer."""
    (tmp_path / "user.toml").write_text(
        f'[chat]\nendpoints = [{{ url = "{refused_url}" }}]\ntimeouts = {{ connect = 1.0, total = 3.0 }}\n'
    )
    done = subprocess.run(
        [*CLI, "--log-level", "ERROR", "doctor", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "250", "LOWENTROPY_CONFIG": str(tmp_path / "user.toml")},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {
        line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") > 3
    }
    assert "first token" in rows["tab"]
    assert "cannot connect" in rows["chat"] or "connect" in rows["chat"].lower()
    assert "384 dimensions" in rows["embed"]
    assert "queries through ONNX Runtime" in rows["embed"], done.stdout


def test_index_then_search_from_the_terminal(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "shipping.py").write_text(
        "def estimate_parcel_postage(weight_grams, destination):\n"
        "    return 2.5 + weight_grams * 0.01\n",
        encoding="utf-8",
    )
    (root / ".env").write_text("SECRET_TOKEN=estimate_parcel_postage\n", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "200"}
    indexed = subprocess.run(
        [*CLI, "index", str(root), "--no-vectors"], capture_output=True, text=True, env=env
    )
    assert indexed.returncode == 0, indexed.stderr
    assert "1 files, 1 chunks" in indexed.stdout
    found = subprocess.run(
        [*CLI, "search", "parcel postage", "--root", str(root), "--mode", "fulltext"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert found.returncode == 0, found.stderr
    assert "shipping.py:1-2" in found.stdout and "estimate_parcel_postage" in found.stdout
    assert ".env" not in found.stdout
    missing = subprocess.run(
        [*CLI, "search", "x", "--root", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_apply_prints_the_diff_of_a_chat_answer_and_writes_with_write(tmp_path: Path) -> None:
    """`lowentropy apply FILE < answer.md`: a chat answer (prose, a fenced block with a marker)
    on a real stdlib file; the diff on stdout, the file untouched until --write."""
    import textwrap as stdlib_textwrap

    source = Path(stdlib_textwrap.__file__).read_text(encoding="utf-8")
    assert source.count("        i = 0\n        patsearch") == 1
    path = tmp_path / "textwrap.py"
    path.write_text(source, encoding="utf-8")
    answer = (
        "Return early when there is nothing to fix:\n\n```python textwrap.py\n"
        "class TextWrapper:\n    # ... existing code ...\n"
        "    def _fix_sentence_endings(self, chunks):\n"
        '        """..."""\n        if not chunks:\n            return\n'
        "        i = 0\n        # ... existing code ...\n```\n\nThat is all.\n"
    )
    command = [*CLI, "apply", str(path)]
    shown = subprocess.run(command, input=answer, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("--- a/textwrap.py\n+++ b/textwrap.py\n")
    assert "+        if not chunks:" in shown.stdout.split("\n")
    assert path.read_text(encoding="utf-8") == source  # printing writes nothing
    written = subprocess.run(
        [*command, "--write"], input=answer, capture_output=True, text=True, timeout=120
    )
    assert written.returncode == 0, written.stderr
    new = "        if not chunks:\n            return\n        i = 0\n"
    assert path.read_text(encoding="utf-8") == source.replace(
        "        i = 0\n        patsearch", new + "        patsearch", 1
    )
    nowhere = "```python\ndef unrelated(q):\n    return q\n```\n"
    refused = subprocess.run(
        [*command, "--write"], input=nowhere, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1 and "nothing applied" in refused.stderr
    assert "unrelated" in refused.stderr  # the reason names the lines that fit nowhere
    assert refused.stdout == ""  # no diff for an edit that is not verified
    empty = subprocess.run(command, input="  \n", capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "empty" in empty.stderr
