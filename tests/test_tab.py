"""Tab over LSP with the embedded engine (packaged SmolLM2-135M, greedy).

Data: tests/data/tab/fib.py (cursor after the final `return `).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import Docs, first_text, inline_params, stats
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

DATA = Path(__file__).parent / "data" / "tab"
FIB = (DATA / "fib.py").read_text(encoding="utf-8")
FIB_LINE = 4
FIB_COL = len("    return ")


async def test_inline_completion_is_advertised_and_answers(
    client: LanguageClient, docs: Docs
) -> None:
    """fib.py: the server advertises inline completion and suggests something non-empty."""
    assert client.capabilities is not None
    uri = docs.open(FIB)
    result = await docs.inline(uri, FIB_LINE, FIB_COL)
    text = first_text(result)
    assert text.strip(), "the embedded model should suggest a continuation"
    item = result.items[0]
    assert item.range is not None
    assert item.range.start == types.Position(line=FIB_LINE, character=FIB_COL)
    assert item.command is not None and item.command.command == "lowentropy.acceptCompletion"


async def test_greedy_suggestion_is_reproducible(client: LanguageClient, docs: Docs) -> None:
    """fib.py opened, closed (the cache forgets it) and opened again: two model calls, the same text."""
    before = (await stats(client)).tab.backendCalls
    uri = docs.open(FIB)
    first = first_text(await docs.inline(uri, FIB_LINE, FIB_COL))
    second = first_text(await docs.inline(docs.open(FIB), FIB_LINE, FIB_COL))
    after = (await stats(client)).tab.backendCalls
    assert after - before == 2
    assert first and first == second


async def test_typing_through_calls_no_model(client: LanguageClient, docs: Docs) -> None:
    """fib.py: typing the first characters of a suggestion answers the remainder from the cache."""
    uri = docs.open(FIB)
    suggestion = first_text(await docs.inline(uri, FIB_LINE, FIB_COL))
    assert len(suggestion) >= 3
    before = (await stats(client)).tab
    col = FIB_COL
    for i, ch in enumerate(suggestion[:3]):
        docs.insert(uri, FIB_LINE, col, ch)
        col += 1
        remainder = first_text(await docs.inline(uri, FIB_LINE, col))
        assert remainder == suggestion[i + 1 :]
    after = (await stats(client)).tab
    assert after.backendCalls == before.backendCalls
    assert after.typedThrough - before.typedThrough == 3


async def test_typing_something_else_calls_the_model_again(
    client: LanguageClient, docs: Docs
) -> None:
    """fib.py: a character that diverges from the suggestion is not answered from the cache."""
    uri = docs.open(FIB)
    suggestion = first_text(await docs.inline(uri, FIB_LINE, FIB_COL))
    odd = "#" if not suggestion.startswith("#") else "@"
    before = (await stats(client)).tab.backendCalls
    docs.insert(uri, FIB_LINE, FIB_COL, odd)
    await docs.inline(uri, FIB_LINE, FIB_COL + 1)
    assert (await stats(client)).tab.backendCalls == before + 1


async def test_utf16_columns_with_non_ascii_before_the_cursor(
    client: LanguageClient, docs: Docs
) -> None:
    """Inline text: an emoji (2 UTF-16 units) and accents before the cursor, real text after it."""
    line = 'greeting = "héllo 😀 wörld"; size = len(greeting) + '
    text = f"{line}0\n"
    uri = docs.open(text, name="utf16.py")
    utf16_col = len(line.encode("utf-16-le")) // 2
    assert utf16_col == len(line) + 1  # the emoji counts twice
    result = await docs.inline(uri, 0, utf16_col)
    if result.items:  # mid-line suggestions may be empty; when there is one it sits at the cursor
        assert result.items[0].range is not None
        assert result.items[0].range.start == types.Position(line=0, character=utf16_col)
    # Typing through works in UTF-16 columns too.
    uri2 = docs.open(f"# 😀 héllo\n{FIB}", name="emoji.py")
    suggestion = first_text(await docs.inline(uri2, FIB_LINE + 1, FIB_COL))
    assert suggestion
    docs.insert(uri2, FIB_LINE + 1, FIB_COL, suggestion[0])
    assert first_text(await docs.inline(uri2, FIB_LINE + 1, FIB_COL + 1)) == suggestion[1:]


async def test_completion_fallback_offers_the_same_suggestion(
    client: LanguageClient, docs: Docs
) -> None:
    """fib.py: textDocument/completion (for Helix) carries the Tab suggestion as a text edit."""
    uri = docs.open(FIB)
    inline = first_text(await docs.inline(uri, FIB_LINE, FIB_COL))
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=FIB_LINE, character=FIB_COL),
        )
    )
    assert isinstance(result, types.CompletionList)
    assert result.items and result.items[0].text_edit is not None
    assert result.items[0].text_edit.new_text == inline


async def test_newer_request_supersedes_older(client: LanguageClient, docs: Docs) -> None:
    """fib.py: 20 requests in quick succession: the last one generates, the others end cancelled."""
    uri = docs.open(FIB)
    before = (await stats(client)).tab
    futures = [
        client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, FIB_LINE, FIB_COL)
        )
        for _ in range(20)
    ]
    results = await asyncio.gather(*futures, return_exceptions=True)
    errors = [r for r in results[:-1] if isinstance(r, Exception)]
    assert len(errors) == 19, results
    assert all("superseded" in str(e) for e in errors)
    last = results[-1]
    assert isinstance(last, types.InlineCompletionList) and first_text(last)
    after = (await stats(client)).tab
    assert after.superseded - before.superseded == 19
    assert after.completed - before.completed == 1


async def test_cancel_request_stops_generation(client: LanguageClient, docs: Docs) -> None:
    """fib.py: $/cancelRequest ends the request as cancelled and the server keeps answering."""
    uri = docs.open(FIB)
    before = (await stats(client)).tab
    pending = asyncio.ensure_future(
        client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            inline_params(uri, FIB_LINE, FIB_COL),
            msg_id="cancel-me",
        )
    )
    await asyncio.sleep(0.1)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
    with pytest.raises(JsonRpcException) as raised:
        await asyncio.wait_for(pending, 30)
    assert raised.value.code == int(types.LSPErrorCodes.RequestCancelled), raised.value
    after = (await stats(client)).tab
    assert after.cancelled - before.cancelled == 1
    assert first_text(await docs.inline(docs.open(FIB), FIB_LINE, FIB_COL))


async def test_accept_command_and_copilot_notifications_are_counted(
    client: LanguageClient, docs: Docs
) -> None:
    uri = docs.open(FIB)
    result = await docs.inline(uri, FIB_LINE, FIB_COL)
    item = result.items[0]
    before = (await stats(client)).tab
    client.protocol.notify(
        "textDocument/didShowCompletion", {"item": {"insertText": item.insert_text}}
    )
    client.protocol.notify(
        "textDocument/didPartiallyAcceptCompletion",
        {"item": {"insertText": item.insert_text}, "acceptedLength": 1},
    )
    assert item.command is not None
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
    )
    after = (await stats(client)).tab
    assert after.shown - before.shown == 1
    assert after.partiallyAccepted - before.partiallyAccepted == 1
    assert after.accepted - before.accepted == 1


@pytest.mark.parametrize(
    ("line", "character"),
    [(4, 500), (9999, 0)],
    ids=["past-end-of-line", "past-end-of-file"],
)
async def test_positions_out_of_range_give_a_result_not_a_crash(
    client: LanguageClient, docs: Docs, line: int, character: int
) -> None:
    uri = docs.open(FIB)
    result = await docs.inline(uri, line, character)
    assert isinstance(result, types.InlineCompletionList)
    if line == 9999:
        assert not result.items
    # still alive
    assert (await stats(client)).tab.requests > 0


async def test_unknown_uri_is_a_clear_error(client: LanguageClient, workspace: Path) -> None:
    uri = (workspace / "never-opened.py").as_uri()
    with pytest.raises(Exception, match="unknown document"):
        await client.text_document_inline_completion_async(inline_params(uri, 0, 0))


async def test_huge_and_binary_documents_get_empty_results(
    client: LanguageClient, docs: Docs
) -> None:
    huge = "x = 1\n" * (20 * 1024 * 1024 // 6)
    uri = docs.open(huge, name="huge.py")
    result = await asyncio.wait_for(docs.inline(uri, 10, 0), 30)
    assert not result.items
    binary = docs.open("\x00\x01\x02binary\x00data\n", name="blob.bin", language="plaintext")
    assert not (await docs.inline(binary, 0, 3)).items
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
