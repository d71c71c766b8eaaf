"""Configuration over LSP: a broken document is reported by key and the last good one stays."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import QUIET_TAB, Docs, first_text, inline_params, lsp_client, stats
from lsprotocol import types

FIB = (Path(__file__).parent / "data" / "tab" / "fib.py").read_text(encoding="utf-8")


async def test_broken_configuration_is_named_and_previous_kept(tmp_path: Path) -> None:
    """Data: tests/data/tab/fib.py. A typo'd key and a wrong type each get a showMessage."""
    (tmp_path / "lowentropy.toml").write_text("[completion]\nmaxLines = 3\n")
    async with lsp_client(
        tmp_path, {"lowentropy": {**QUIET_TAB, "tab": {"maxTokens": 24}}}
    ) as client:
        docs = Docs(client, tmp_path)
        uri = docs.open(FIB)
        assert first_text(await docs.inline(uri, 4, 11))
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"lowentropy": {"tab": {"maxTokenz": 5}}})
        )
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"lowentropy": {"completion": {"prefetch": "yes please"}}}
            )
        )
        for _ in range(50):
            if len(client.messages) >= 2:
                break
            await asyncio.sleep(0.05)
        messages = [m.message for m in client.messages]
        assert any("maxTokenz" in m for m in messages), messages
        assert any("prefetch" in m for m in messages), messages
        assert all(m_type.type == types.MessageType.Error for m_type in client.messages)
        # The server still completes with the last good configuration.
        assert first_text(await docs.inline(docs.open(FIB), 4, 11))
        assert (await stats(client)).tab.errors == 0


async def test_broken_initialization_options_keep_defaults(tmp_path: Path) -> None:
    async with lsp_client(
        tmp_path, {"lowentropy": {"tab": {"endpoints": "not a list"}, **QUIET_TAB}}
    ) as client:
        for _ in range(50):
            if client.messages:
                break
            await asyncio.sleep(0.05)
        assert client.messages and "endpoints" in client.messages[0].message
        docs = Docs(client, tmp_path)
        # The defaults include the 1.2 s keystroke budget, which a loaded machine's cold
        # model can miss; an invoked request waits for the answer (latency is not tested).
        params = inline_params(docs.open(FIB), 4, 11)
        params.context.trigger_kind = types.InlineCompletionTriggerKind.Invoked
        result = await client.text_document_inline_completion_async(params)
        assert isinstance(result, types.InlineCompletionList) and first_text(result)
