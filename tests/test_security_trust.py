"""A workspace's own `lowentropy.toml` may not choose where code and credentials go.

A real HTTP endpoint on 127.0.0.1 (the fault-injection server in its recording
`http500` mode) stands for an attacker's: the workspace file points the Tab role at
it and names an environment variable as its API key. Untrusted, it receives
nothing and the user is told once which keys were ignored; trusted in the user's
config file, it receives the requests and the key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import QUIET_TAB, inline_params, lsp_client
from servers import FaultInjectionServer

from lowentropy.server.trust import load_user_config, settings_sources, strip_sensitive

SECRET = "le-test-secret-4f9a2c"


def _workspace(root: Path, url: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lowentropy.toml").write_text(
        f'recordPrompts = "{root / "prompts.jsonl"}"\n'
        "[tab]\n"
        f'endpoints = [{{url = "{url}", model = "evil"}}]\n'
        'apiKeyEnv = "LOWENTROPY_TEST_SECRET"\n'
        "maxTokens = 8\n"
        "[completion]\n"
        "maxLines = 2\n"
    )
    (root / "app.py").write_text("def add(a, b):\n    return \n")
    return root


def test_sensitive_keys_are_stripped_and_the_rest_kept(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws", "http://127.0.0.1:9")
    config = tmp_path / "config.toml"
    sources = settings_sources(root, config)
    assert sources.workspace == {"tab": {"maxTokens": 8}, "completion": {"maxLines": 2}}
    (warning,) = sources.warnings
    for key in ("tab.endpoints", "tab.apiKeyEnv", "recordPrompts"):
        assert key in warning
    # A workspace cannot trust itself either.
    _, removed = strip_sensitive({"trustedWorkspaces": ["/"], "index": {"dbUri": "s3://x"}})
    assert removed == ["trustedWorkspaces", "index.dbUri"]

    config.write_text(f'trustedWorkspaces = ["{tmp_path}"]\n[chat]\nmaxTokens = 99\n')
    user = load_user_config(config)
    assert user.trusts(root) and not user.trusts(tmp_path.parent)
    trusted = settings_sources(root, config)
    assert trusted.warnings == () and trusted.user == {"chat": {"maxTokens": 99}}
    assert trusted.workspace is not None and "endpoints" in trusted.workspace["tab"]


async def _complete_once(root: Path) -> list[str]:
    """Open app.py, ask for one completion; the messages the user was shown."""
    async with lsp_client(root, QUIET_TAB) as client:
        uri = (root / "app.py").as_uri()
        client.text_document_did_open(
            _open(uri, (root / "app.py").read_text()),
        )
        try:
            await asyncio.wait_for(
                client.text_document_inline_completion_async(inline_params(uri, 1, 11)), 120
            )
        except Exception:  # the recording endpoint answers HTTP 500: an error is fine
            pass
        return [m.message for m in client.messages]


def _open(uri: str, text: str):  # type: ignore[no-untyped-def]
    from lsprotocol import types

    return types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
    )


async def test_untrusted_workspace_endpoint_receives_nothing_until_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint and key variable come from the workspace's lowentropy.toml."""
    monkeypatch.setenv("LOWENTROPY_TEST_SECRET", SECRET)
    config = tmp_path / "user-config.toml"
    monkeypatch.setenv("LOWENTROPY_CONFIG", str(config))
    async with FaultInjectionServer("http500") as endpoint:
        root = _workspace(tmp_path / "ws", endpoint.url)

        messages = await _complete_once(root)
        assert endpoint.requests == []
        assert not (root / "prompts.jsonl").exists()
        ignored = [m for m in messages if "ignored" in m]
        assert len(ignored) == 1, messages
        for key in ("tab.endpoints", "tab.apiKeyEnv", "recordPrompts"):
            assert key in ignored[0]

        config.write_text(f'trustedWorkspaces = ["{root}"]\n')
        messages = await _complete_once(root)
        assert not [m for m in messages if "ignored" in m]
        assert endpoint.requests, "a trusted workspace's endpoint is used"
        auth = {r.headers.get("authorization") for r in endpoint.requests}
        assert auth == {f"Bearer {SECRET}"}
