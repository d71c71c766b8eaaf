"""Verified edits that corrupted (issue 17 items 5, 6), through the real server.

- Position encoding: a client offering UTF-8 or UTF-32 first got it from pygls while
  every feature counted UTF-16; apply turned `n = 1` on a line with `ü ✓ 🎉` into
  `…🎉'2 n = 1`. Now UTF-16 is negotiated whatever the offer, and the positions
  apply, next edit and Tab send are UTF-16 on lines with astral and combining characters.
- Line splitting: the document model broke lines at U+2028, form feed and NEL, and a
  later edit produced `return 3\\n4`; CR-only files got no completions.

Edits are checked with `raw_lsp.apply_text_edits`, an applier written from the LSP
specification. The Tab tests run the packaged SmolLM2 (greedy) through pytest-lsp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import QUIET_TAB, inline_params, lsp_client
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from raw_lsp import InProcessServer, RawServer, apply_text_edits, in_process_server

# ü: two UTF-8 bytes; ✓: three; 🎉: four bytes, two UTF-16 units; e + U+0301: combining
LINE = "label = 'ü ✓ 🎉 e\u0301'; n = 1"
OFFERS = [["utf-8"], ["utf-32"], ["utf-8", "utf-32", "utf-16"]]


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _edits(result: dict[str, Any], uri: str) -> list[dict[str, Any]]:
    edit = result["edit"]
    for change in edit.get("documentChanges") or []:
        assert change["textDocument"]["uri"] == uri
        return list(change["edits"])
    return list((edit.get("changes") or {}).get(uri, []))


@pytest.mark.parametrize("offer", OFFERS, ids=["-".join(o) for o in OFFERS])
def test_utf16_is_negotiated_and_apply_lands_on_the_right_character(
    tmp_path: Path, offer: list[str]
) -> None:
    s = RawServer(tmp_path)
    try:
        init = s.initialize({"general": {"positionEncodings": offer}})
        assert init["result"]["capabilities"]["positionEncoding"] == "utf-16"
        text = f"{LINE}\nprint(n)\n"
        uri = s.open("emoji.py", text)
        wanted = text.replace("n = 1", "n = 2")
        params = {"textDocument": {"uri": uri, "version": 1}, "sketch": wanted}
        result = s.request("lowentropy/apply", params, timeout=60)["result"]
        assert result["verified"], result
        edits = _edits(result, uri)
        assert apply_text_edits(text, edits) == wanted
        (edit,) = edits
        assert edit["range"]["start"] == {"line": 0, "character": _utf16(LINE[: LINE.index("1")])}
    finally:
        s.close()


def test_a_next_edit_code_action_lands_after_astral_and_combining_characters(
    tmp_path: Path,
) -> None:
    """`count` renamed on line 1: the propagated edit of the next `count`, on a line with
    🎉, a combining accent and ✓ before it, is at its UTF-16 column (codepoints: 26,
    UTF-8: 32, UTF-16: 27)."""
    s = RawServer(tmp_path)
    try:
        s.initialize({"general": {"positionEncodings": ["utf-8", "utf-16"]}})
        busy = '        label = "🎉 e\u0301 ✓"; count += item'
        text = (
            f"def tally(items):\n    count = 0\n    for item in items:\n{busy}\n    return count\n"
        )
        uri = s.open("tally.py", text)
        rename = {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 9}}
        s.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [{"range": rename, "text": "total"}],
            },
        )
        here = {"line": 1, "character": 9}
        actions = s.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": {"start": here, "end": here},
                "context": {"diagnostics": []},
            },
        )["result"]
        ours = [a for a in actions if a["title"].startswith("lowentropy: Next edit")]
        assert len(ours) == 1, actions
        (change,) = ours[0]["edit"]["documentChanges"]
        (edit,) = change["edits"]
        column = _utf16(busy[: busy.index("count")])
        assert edit["range"] == {
            "start": {"line": 3, "character": column},
            "end": {"line": 3, "character": column + len("count")},
        }
        renamed = text.replace("count", "total", 1)
        assert apply_text_edits(renamed, [edit]) == renamed.replace(
            "count += item", "total += item"
        )
    finally:
        s.close()


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with in_process_server(tmp_path_factory.mktemp("lines")) as s:
        yield s


@pytest.mark.parametrize(
    ("text", "change", "expected"),
    [
        # the case: lines LSP does not break at, then an edit two lines down
        (
            "s = 'a\u2028b'\nff = 1\x0c\nnel = 2\x85 # x\nreturn 3\n",
            ((3, 8), (3, 8), "4"),
            "s = 'a\u2028b'\nff = 1\x0c\nnel = 2\x85 # x\nreturn 34\n",
        ),
        # CR-only and mixed endings: a lone CR is a line break
        ("x = 1\ry = 2\rz = 3", ((1, 4), (1, 5), "20"), "x = 1\ry = 20\rz = 3"),
        ("a\r\nb\rc\nd", ((2, 0), (3, 1), "CD"), "a\r\nb\rCD"),
        # past-the-end columns clamp to the line's end, also on a last line
        ("abc\ndef", ((1, 99), (1, 99), "!"), "abc\ndef!"),
        ("abc\r\ndef", ((0, 99), (1, 0), ""), "abcdef"),
        # astral and combining characters: columns count UTF-16 units
        (f"{LINE}\n", ((0, _utf16(LINE) - 1), (0, _utf16(LINE)), "2"), f"{LINE[:-1]}2\n"),
    ],
)
def test_the_document_model_breaks_lines_where_lsp_does(
    documents: InProcessServer, text: str, change: Any, expected: str
) -> None:
    (sl, sc), (el, ec), new = change
    uri = documents.open("doc.txt", text, language="plaintext")
    documents.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [
                {
                    "range": {
                        "start": {"line": sl, "character": sc},
                        "end": {"line": el, "character": ec},
                    },
                    "text": new,
                }
            ],
        },
    )
    documents.request("lowentropy/stats", {})
    assert documents.text(uri) == expected
    documents.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


# ---- Tab with the packaged model -----------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def utf8_first(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """A client that offers UTF-8 first, as Neovim does."""
    root = tmp_path_factory.mktemp("tab-utf8")
    caps = client_capabilities("visual-studio-code")
    caps.general = types.GeneralClientCapabilities(
        position_encodings=[
            types.PositionEncodingKind.Utf8,
            types.PositionEncodingKind.Utf32,
            types.PositionEncodingKind.Utf16,
        ]
    )
    async with lsp_client(root, QUIET_TAB, capabilities=caps) as client:
        yield client, root


def _open(client: LanguageClient, root: Path, name: str, text: str) -> str:
    uri = (root / name).as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    return uri


@pytest.mark.asyncio(loop_scope="session")
async def test_an_inline_completion_lands_after_astral_and_combining_characters(
    utf8_first: Any,
) -> None:
    client, root = utf8_first
    prefix = "    greeting = 'ü ✓ 🎉 e\u0301 ' + "
    text = f"def greet(name):\n{prefix}\n    return greeting\n"
    uri = _open(client, root, "greet.py", text)
    result = await client.text_document_inline_completion_async(
        inline_params(uri, 1, _utf16(prefix))
    )
    assert isinstance(result, types.InlineCompletionList) and result.items
    item = result.items[0]
    assert item.range is not None
    assert item.range.start == types.Position(line=1, character=_utf16(prefix))
    assert isinstance(item.insert_text, str) and item.insert_text.strip()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_cr_only_file_gets_completions(utf8_first: Any) -> None:
    client, root = utf8_first
    text = "def add(a, b):\r    return a + b\r\r\rdef sub(a, b):\r    return "
    uri = _open(client, root, "classic_mac.py", text)
    result = await client.text_document_inline_completion_async(inline_params(uri, 5, 11))
    assert isinstance(result, types.InlineCompletionList) and result.items
    item = result.items[0]
    assert item.range is not None and item.range.start == types.Position(line=5, character=11)
    assert isinstance(item.insert_text, str) and item.insert_text.strip()
