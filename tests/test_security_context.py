"""No secret and no file outside the workspace reaches a prompt, the index or a search.

One real server (index on: the packaged MiniLM and LanceDB) whose Tab and chat roles
point at a real HTTP endpoint on 127.0.0.1 that records every request it receives
(the fault-injection server in `http500` mode; set in initializationOptions, which
the user controls). The workspace holds a `.env`, a settings module with a database
URL and a password, an unsaved buffer with a token typed into it, and `etc_link`,
a symlink to a folder outside the workspace. Every recorded request body (tokenize,
completions, chat) and every search hit is checked for each secret and for the
outside folder's markers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import QUIET_TAB, inline_params, lsp_client
from lsprotocol import types
from pytest_lsp import LanguageClient
from servers import FaultInjectionServer

from lowentropy.retrieval import mask_secrets

# Built at run time so no scanner flags this file itself.
TOKEN = "sk-" + "proj-" + "Hq4vN8tR2wLm6XcB1zPk9JdY3sFa7GeU"
DB_PASSWORD = "Sup3r" + "S3cretPw"
PASSWORD = "hunter2" + "hunter"
ENV_MARKER = "ENV_ONLY_" + "MARKER_7731"
OUTSIDE = "OUTSIDE_" + "MARKER_4410"
IGNORED = "IGNORED_" + "MARKER_9032"
SECRETS = (TOKEN, DB_PASSWORD, PASSWORD, ENV_MARKER, OUTSIDE, IGNORED)

SETTINGS = (
    "import os\n\n"
    f'DATABASE_URL = "postgres://app:{DB_PASSWORD}@db.internal/app"\n'
    f'password = "{PASSWORD}"\n\n\n'
    "def database_settings():\n"
    '    """Connection settings for the orders database."""\n'
    '    return {"url": DATABASE_URL, "pool_size": int(os.environ.get("POOL", "5"))}\n'
)
APP = "from settings import database_settings\n\n\ndef connect():\n    return \n"


def _masked_examples() -> None:
    """The shapes the issue names are all found (checked without a server)."""
    pem = "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
    aws = "AKIA" + "Z7QWERTYUIOP2K4M"
    for text, secret in (
        (f'DATABASE_URL="postgres://user:{DB_PASSWORD}@host/db"', DB_PASSWORD),
        (f"key = '{TOKEN}'", TOKEN),
        (f"AWS_ACCESS_KEY_ID={aws}", aws),
        (pem, "MIIEvQIBADANBg"),
        (f'password = "{PASSWORD}"', PASSWORD),
        (f"DB_PASS: {DB_PASSWORD}", DB_PASSWORD),
    ):
        masked = mask_secrets(text)
        assert secret not in masked and len(masked) == len(text), text
        assert masked.count("\n") == text.count("\n")


def test_credential_shapes_are_masked_in_place() -> None:
    _masked_examples()
    for code in ("self.password = password", "password = None", "f(password=password)"):
        assert mask_secrets(code) == code


def _workspace(root: Path, outside: Path) -> Path:
    root.mkdir(parents=True)
    outside.mkdir(parents=True)
    (outside / "passwd").write_text(f"root:x:0:0:{OUTSIDE}:/root:/bin/bash\n")
    (outside / "leak.py").write_text(f"def outside_helper():\n    return '{OUTSIDE}'\n")
    (root / "etc_link").symlink_to(outside, target_is_directory=True)
    (root / ".env").write_text(f"OPENAI_API_KEY={TOKEN}\n{ENV_MARKER}=1\n")
    (root / "settings.py").write_text(SETTINGS)
    (root / "app.py").write_text(APP)
    (root / ".gitignore").write_text("scratch_local.py\n")
    (root / "scratch_local.py").write_text("def scratch():\n    pass\n")
    (root / "shapes.py").write_text("def area(w, h):\n    return w * h\n")
    return root


async def _request(client: LanguageClient, method: str, params: Any) -> Any:
    return await client.protocol.send_request_async(method, params)


def _get(value: Any, key: str) -> Any:
    return value[key] if isinstance(value, dict) else getattr(value, key)


async def _wait(client: LanguageClient, done: Callable[[Any], bool]) -> None:
    deadline = time.monotonic() + 240
    while not done(await _request(client, "lowentropy/indexStatus", {})):
        assert time.monotonic() < deadline, "the index did not settle"
        await asyncio.sleep(0.2)


def _open(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text or path.read_text()
            )
        )
    )
    return uri


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def session(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[LanguageClient, Path, FaultInjectionServer]]:
    base = tmp_path_factory.mktemp("security")
    root = _workspace(base / "ws", base / "outside")
    async with FaultInjectionServer("http500") as endpoint:
        remote = {"endpoints": [{"url": endpoint.url, "model": "m"}], "maxTokens": 8}
        options = {
            **QUIET_TAB,
            "tab": remote,
            "chat": remote,
            "nextEdit": remote,
            "index": {"enabled": True, "syncDelayMs": 50},
        }
        async with lsp_client(root, options) as client:
            await _wait(client, lambda s: _get(s, "state") != "indexing")
            yield client, root, endpoint


def _bodies(endpoint: FaultInjectionServer) -> str:
    return "\n".join(r.body.decode("utf-8", "replace") for r in endpoint.requests)


async def test_secrets_in_buffers_never_reach_the_tab_prompt(session: Any) -> None:
    """A `.env` open beside the file, and a token typed into the file, unsaved."""
    client, root, endpoint = session
    env = _open(client, root / ".env")
    app = _open(
        client, root / "app.py", APP.replace("return \n", f"key = '{TOKEN}'\n    return \n")
    )
    before = len(endpoint.requests)
    result = await client.text_document_inline_completion_async(inline_params(env, 0, 5))
    assert result is None or not result.items
    assert len(endpoint.requests) == before, "a credentials file got a completion request"
    try:
        await client.text_document_inline_completion_async(inline_params(app, 5, 11))
    except Exception:  # the recording endpoint answers 500
        pass
    paths = [r.path for r in endpoint.requests]
    assert any(p.endswith("/completions") for p in paths), paths
    bodies = _bodies(endpoint)
    assert "def connect" in bodies  # the prompt of app.py was sent...
    for secret in SECRETS:
        assert secret not in bodies, secret  # ...without the token or .env's text


async def test_credentials_are_masked_in_the_index_search_and_chat(session: Any) -> None:
    client, root, endpoint = session
    hits = await _request(client, "lowentropy/search", {"query": "DATABASE_URL postgres password"})
    texts = [_get(h, "text") for h in hits]
    assert any("DATABASE_URL" in t for t in texts), texts
    for secret in SECRETS:
        assert not any(secret in t for t in texts), secret
    try:
        await _request(
            client,
            "lowentropy/chat",
            {
                "messages": [{"role": "user", "content": "How do we connect to the database?"}],
                "context": {"uris": [(root / "settings.py").as_uri(), (root / ".env").as_uri()]},
            },
        )
    except Exception:  # the recording endpoint answers 500
        pass
    chats = [r for r in endpoint.requests if r.path.endswith("/chat/completions")]
    assert chats, [r.path for r in endpoint.requests]
    prompt = chats[-1].body.decode()
    assert "database_settings" in prompt and "postgres://app:" in prompt
    for secret in SECRETS:
        assert secret not in _bodies(endpoint), secret


async def test_symlinked_folders_outside_stay_out_of_index_search_and_chat(session: Any) -> None:
    """`etc_link -> ../outside`: saved, watched and opened paths through it are refused."""
    client, root, endpoint = session
    leak = root / "etc_link" / "leak.py"
    _open(client, leak)
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=leak.as_uri())
        )
    )
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[
                types.FileEvent(uri=leak.as_uri(), type=types.FileChangeType.Changed),
                types.FileEvent(
                    uri=(root / "etc_link" / "passwd").as_uri(), type=types.FileChangeType.Created
                ),
            ]
        )
    )
    await asyncio.sleep(1.0)  # well past syncDelayMs: a re-sync would have started
    await _wait(client, lambda s: _get(s, "state") != "indexing")
    for query in ("outside_helper", "root:x:0:0 passwd", OUTSIDE):
        for hit in await _request(client, "lowentropy/search", {"query": query}):
            assert OUTSIDE not in _get(hit, "text")
            assert "etc_link" not in _get(_get(hit, "location"), "uri")
    uris = [(root / "etc_link" / "passwd").as_uri(), leak.as_uri()]
    result = None
    try:
        result = await _request(
            client,
            "lowentropy/chat",
            {
                "messages": [{"role": "user", "content": "What does outside_helper return?"}],
                "context": {"textDocument": {"uri": leak.as_uri()}, "uris": uris},
            },
        )
    except Exception:  # the recording endpoint answers 500
        pass
    assert OUTSIDE not in _bodies(endpoint)
    if result is not None:
        reasons = {_get(i, "uri"): _get(i, "reason") for i in _get(result, "ignored")}
        assert set(reasons.values()) == {"outside the workspace"}


def _change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def test_gitignored_and_credentials_edits_stay_out_of_next_edit_prompts(
    session: Any,
) -> None:
    """Next edit's prompt carries recent edits of other files: a gitignored file's and a
    `.env`'s never; an ordinary file's do (the control)."""
    client, root, endpoint = session
    ignored = _open(client, root / "scratch_local.py")
    _change(client, ignored, 2, f"def scratch():\n    return '{IGNORED}'\n")
    env = _open(client, root / ".env")
    _change(client, env, 2, f"{ENV_MARKER}=2\n")
    text = "def total(items):\n    s = 0\n    for x in items:\n        s += x\n    return s\n"
    uri = _open(client, root / "totals.py", text)
    # The last edit is in another file, and determines nothing: the model is asked.
    shapes = _open(client, root / "shapes.py")
    _change(client, shapes, 2, "def area(w, h):\n    return w * h  # PUBLIC_EDIT\n")
    before = len(endpoint.requests)
    try:
        await _request(
            client,
            "lowentropy/nextEdit",
            {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 8}},
        )
    except Exception:  # the recording endpoint answers 500
        pass
    sent = "\n".join(r.body.decode() for r in endpoint.requests[before:])
    assert "PUBLIC_EDIT" in sent, [r.path for r in endpoint.requests[before:]]
    for secret in SECRETS:
        assert secret not in sent, secret


async def test_recorded_prompts_hold_no_secret(tmp_path: Path) -> None:
    """`recordPrompts` (set by the user) writes what was sent: masked, on the embedded model."""
    record = tmp_path / "prompts.jsonl"
    root = tmp_path / "ws"
    root.mkdir()
    options = {**QUIET_TAB, "recordPrompts": str(record)}
    async with lsp_client(root, options) as client:
        text = f"API_KEY = '{TOKEN}'\n\n\ndef add(a, b):\n    return \n"
        uri = _open(client, root / "calc.py", text)
        result = await client.text_document_inline_completion_async(inline_params(uri, 4, 11))
        assert result is not None and result.items  # a prompt was rendered and answered
    recorded = record.read_text()
    assert "def add(a, b)" in recorded and "API_KEY = '" in recorded
    assert TOKEN not in recorded
