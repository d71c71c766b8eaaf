"""Next edit over LSP with the embedded engine (packaged SmolLM2-135M, greedy).

Data: tests/data/next_edit/ (totals.py: a local rename; shapes.py + use_shapes.py: a
signature change with a call in another file; calls.py: an argument deleted in one
call; notes.py: an unrelated edit, and a call replaced). Each test copies what it needs into its own
workspace, so files on disk are the only other files the server can find.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import QUIET_TAB, inline_params, lsp_client, raw_request
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

DATA = Path(__file__).parent / "data" / "next_edit"
NEXT_EDIT = "lowentropy/nextEdit"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("next_edit")
    for f in DATA.iterdir():
        shutil.copy(f, root / f.name)
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ne_client(root: Path) -> AsyncIterator[LanguageClient]:
    async with lsp_client(root, QUIET_TAB) as c:
        yield c


class Editor:
    """One open document, edited by replacing ranges like an editor (versions counted)."""

    def __init__(self, client: LanguageClient, root: Path, name: str) -> None:
        self.client = client
        self.uri = (root / name).as_uri()
        self.text = (root / name).read_text(encoding="utf-8")
        self.version = 1
        self.held: list[types.DidChangeTextDocumentParams] | None = None
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=self.uri, language_id="python", version=1, text=self.text
                )
            )
        )

    def close(self) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri)
            )
        )

    def position(self, offset: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, offset)
        return line, offset - (self.text.rfind("\n", 0, offset) + 1)

    def offset(self, line: int, character: int) -> int:
        starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]
        return starts[line] + character

    def replace(self, start: int, end: int, new: str) -> None:
        (sl, sc), (el, ec) = self.position(start), self.position(end)
        self.version += 1
        change = types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=sl, character=sc),
                        end=types.Position(line=el, character=ec),
                    ),
                    text=new,
                )
            ],
        )
        if self.held is not None:
            self.held.append(change)  # sent later, in an order the test picks
        else:
            self.client.text_document_did_change(change)
        self.text = self.text[:start] + new + self.text[end:]

    def apply(self, edit: dict[str, Any]) -> None:
        r = edit["range"]
        start = self.offset(r["start"]["line"], r["start"]["character"])
        end = self.offset(r["end"]["line"], r["end"]["character"])
        self.replace(start, end, edit["text"])

    def params(self, offset: int, version: int | None = None) -> dict[str, Any]:
        line, character = self.position(offset)
        return {
            "textDocument": {"uri": self.uri, "version": version or self.version},
            "position": {"line": line, "character": character},
        }

    async def next_edit(self, offset: int, method: str = NEXT_EDIT) -> dict[str, Any]:
        result = await self.client.protocol.send_request_async(method, self.params(offset))
        return _plain(result)


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def ne_stats(client: LanguageClient) -> dict[str, Any]:
    return _plain(await client.protocol.send_request_async("lowentropy/nextEditStats", {}))


def _nth(text: str, word: str, n: int) -> int:
    at = -1
    for _ in range(n + 1):
        at = text.index(word, at + 1)
    return at


async def test_rename_predicts_the_next_site_and_the_one_after(
    ne_client: LanguageClient, root: Path
) -> None:
    """totals.py: `count` -> `total` at its definition -> the next use, then the one after;
    the module-level `count` (another scope) is never touched."""
    ed = Editor(ne_client, root, "totals.py")
    first = _nth(ed.text, "count", 0)
    ed.replace(first, first + len("count"), "total")
    result = await ed.next_edit(first + len("total"))
    assert len(result["edits"]) == 1
    edit = result["edits"][0]
    assert edit["text"] == "total"
    assert edit["textDocument"]["uri"] == ed.uri
    assert edit["range"]["start"] == {"line": 3, "character": 8}
    assert edit["range"]["end"] == {"line": 3, "character": 13}
    assert result["jump"]["uri"] == ed.uri
    assert result["jump"]["range"]["start"]["line"] == 4

    # Accept it, as an editor applies the edit: the following one was prefetched.
    before = await ne_stats(ne_client)
    ed.apply(edit)
    await asyncio.sleep(0.2)
    second = await ed.next_edit(ed.offset(3, 13))
    after = await ne_stats(ne_client)
    assert after["accepted"] == before["accepted"] + 1
    assert after["prefetchHits"] == before["prefetchHits"] + 1
    assert second["edits"][0]["text"] == "total"
    assert second["edits"][0]["range"]["start"]["line"] == 4
    ed.apply(second["edits"][0])
    third = await ed.next_edit(ed.offset(4, 30))
    ed.apply(third["edits"][0])
    assert ed.text.count("total") == 4
    assert "count = 99" in ed.text  # the module-level name is another variable
    fourth = await ed.next_edit(ed.offset(5, 16))
    assert fourth["edits"] == [] and fourth["jump"] is None
    ed.close()


async def _renamed_count_action(client: LanguageClient, ed: Editor, at: int) -> dict[str, Any]:
    """The one next-edit code action at `at` after `count` became `total` on line 3:
    it carries the versioned edit of the next `count` (line 3, character 8)."""
    line, character = ed.position(at)
    here = types.Position(line=line, character=character)
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=ed.uri),
        range=types.Range(start=here, end=here),
        context=types.CodeActionContext(diagnostics=[]),
    )
    actions = await raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, params)
    ours = [a for a in actions if a["title"].startswith("lowentropy: Next edit")]
    assert len(ours) == 1, [a["title"] for a in actions]
    (change,) = ours[0]["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": ed.uri, "version": ed.version}
    assert [e["newText"] for e in change["edits"]] == ["total"]
    assert change["edits"][0]["range"]["start"] == {"line": 3, "character": 8}
    action: dict[str, Any] = ours[0]
    return action


async def test_the_next_edit_is_a_code_action_with_its_edit(
    ne_client: LanguageClient, root: Path
) -> None:
    """For editors with no next-edit UI (Helix, eglot): after a rename at one site, the
    code actions at the cursor carry the propagated edit, versioned."""
    ed = Editor(ne_client, root, "totals.py")
    first = _nth(ed.text, "count", 0)
    ed.replace(first, first + len("count"), "total")
    ours = await _renamed_count_action(ne_client, ed, first + len("total"))
    assert ours["command"]["command"] == "lowentropy.acceptNextEdit"
    ed.close()


async def test_changes_sent_out_of_order_are_applied_in_version_order(
    ne_client: LanguageClient, root: Path
) -> None:
    """Helix 25.01 can send a typed word's didChanges out of order (its log showed
    versions 2, 5, 6, 3, 4); applied as they arrive, they garble the server's copy and the
    propagated rename is wrong or missing. The server puts each late one in its place."""
    ed = Editor(ne_client, root, "totals.py")
    first = _nth(ed.text, "count", 0)
    ed.held = []
    ed.replace(first, first + len("count"), "")
    for i, ch in enumerate("total"):
        ed.replace(first + i, first + i, ch)
    sent = ed.held
    ed.held = None
    # The last, a duplicate of a version already applied, must not be applied twice.
    for change in [sent[0], sent[1], sent[4], sent[5], sent[2], sent[3], sent[2]]:
        ne_client.text_document_did_change(change)
    await _renamed_count_action(ne_client, ed, first + len("total"))
    ed.close()


async def test_signature_change_jumps_to_a_call_in_another_file(
    ne_client: LanguageClient, root: Path
) -> None:
    """shapes.py + use_shapes.py (on disk, not open): a new required parameter makes both
    calls in use_shapes.py wrong; the first is the jump target (the argument is not known)."""
    ed = Editor(ne_client, root, "shapes.py")
    at = ed.text.index("height)") + len("height")
    ed.replace(at, at, ", depth")
    result = await ed.next_edit(at + len(", depth"))
    assert result["edits"] == []
    jump = result["jump"]
    assert jump["uri"] == (root / "use_shapes.py").as_uri()
    assert jump["range"]["start"]["line"] == 2  # `small = area(1, 2)`
    ed.close()


async def test_removed_parameter_edits_the_call_in_another_file(
    ne_client: LanguageClient, root: Path
) -> None:
    """shapes.py + use_shapes.py: removing `height` determines the edit at each call there."""
    ed = Editor(ne_client, root, "shapes.py")
    at = ed.text.index(", height")
    ed.replace(at, at + len(", height"), "")
    result = await ed.next_edit(at)
    other = (root / "use_shapes.py").as_uri()
    (edit,) = result["edits"]
    assert edit["textDocument"]["uri"] == other
    assert edit["text"] == ""
    assert edit["range"]["start"] == {"line": 2, "character": 14}  # `small = area(1, 2)`
    assert edit["range"]["end"] == {"line": 2, "character": 17}
    assert result["jump"]["uri"] == other
    ed.close()


async def test_deleting_an_argument_predicts_the_next_matching_call(
    ne_client: LanguageClient, root: Path
) -> None:
    """calls.py: `VERBOSE, ` deleted from the first `report(...)` call -> the same argument
    of the next call goes; the answer comes from propagation, without the model."""
    ed = Editor(ne_client, root, "calls.py")
    at = ed.text.index("VERBOSE, ")
    ed.replace(at, at + len("VERBOSE, "), "")
    before = await ne_stats(ne_client)
    result = await ed.next_edit(at)
    (edit,) = result["edits"]
    line = ed.text.count("\n", 0, ed.text.index('report("bob"'))
    assert edit["range"]["start"]["line"] == line
    ed.apply(edit)
    assert 'report("bob", "second")' in ed.text
    assert (await ne_stats(ne_client))["modelCalls"] == before["modelCalls"]
    assert result["jump"]["range"]["start"]["line"] == line + 1
    ed.close()


async def test_unrelated_edit_gives_no_suggestion(ne_client: LanguageClient, root: Path) -> None:
    """notes.py: a new comment line points nowhere: no candidate place is strong enough,
    so the answer is empty at once (silence), without asking the model."""
    ed = Editor(ne_client, root, "notes.py")
    at = ed.text.index("def config_dir")
    ed.replace(at, at, "# Where the user's settings live.\n")
    before = await ne_stats(ne_client)
    result = await ed.next_edit(at + 10)
    after = await ne_stats(ne_client)
    assert after["modelCalls"] == before["modelCalls"]
    assert after["silent"] == before["silent"] + 1
    assert result["edits"] == [] and result["jump"] is None
    ed.close()


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_client(root: Path) -> AsyncIterator[LanguageClient]:
    """A server of its own: one whose model has not yet been found too slow for the
    window's budget (then it is not asked, and nothing would be in flight)."""
    async with lsp_client(root, QUIET_TAB) as c:
        yield c


async def test_edits_in_flight_never_produce_a_stale_edit(
    fresh_client: LanguageClient, root: Path
) -> None:
    """notes.py: the document changes while a prediction is being computed (the model is
    thinking about `def home():` after its one call was replaced): the answer is empty. A
    request naming an old version is empty at once."""
    ed = Editor(fresh_client, root, "notes.py")
    at = ed.text.index("home(), ")
    ed.replace(at, at + len("home()"), "os.getcwd()")
    pending = asyncio.ensure_future(
        fresh_client.protocol.send_request_async(NEXT_EDIT, ed.params(at + 1))
    )
    await asyncio.sleep(0.05)
    first = ed.text.index("import os") + len("import os")
    ed.replace(first, first, "_")  # a rename: would determine an edit...
    result = _plain(await pending)
    assert result["edits"] == [] and result["jump"] is None  # ...but not for the old text
    old = await fresh_client.protocol.send_request_async(
        NEXT_EDIT, ed.params(first, ed.version - 1)
    )
    assert _plain(old)["edits"] == []
    fresh = await ed.next_edit(first)
    assert fresh["edits"], "the current version does get its edit"
    assert (await ne_stats(fresh_client))["stale"] >= 2
    ed.close()


async def test_newer_request_supersedes_older(fresh_client: LanguageClient, root: Path) -> None:
    """notes.py: two requests for one document while the model works (`home()` replaced in
    its one call: the place is `def home():`, whose edit the model is asked for): the
    older ends with ServerCancelled (-32802), the newer answers."""
    ed = Editor(fresh_client, root, "notes.py")
    at = ed.text.index("home(), ")
    ed.replace(at, at + len("home()"), "os.getcwd()")
    older = asyncio.ensure_future(
        fresh_client.protocol.send_request_async(NEXT_EDIT, ed.params(at + 1))
    )
    await asyncio.sleep(0.05)
    newer = await ed.next_edit(at + 1)
    assert "edits" in newer
    with pytest.raises(JsonRpcException) as exc:
        await older
    assert exc.value.code == -32802
    ed.close()


async def test_copilot_alias_and_inline_completion(ne_client: LanguageClient, root: Path) -> None:
    """totals.py: `textDocument/copilotInlineEdit` answers like nextEdit (plus a command),
    `didShowInlineEdit` is accepted, and inline completion offers the nearby replacement
    with its range."""
    ed = Editor(ne_client, root, "totals.py")
    first = _nth(ed.text, "count", 1)  # `count += item.size`
    ed.replace(first, first + len("count"), "total")
    result = await ed.next_edit(first, "textDocument/copilotInlineEdit")
    edit = result["edits"][0]
    assert edit["text"] == "total" and edit["command"]["command"] == "lowentropy.acceptNextEdit"
    ne_client.protocol.notify("textDocument/didShowInlineEdit", {"item": edit})
    line, _ = ed.position(first)
    # Propagation for inline completion runs off the keystroke path once typing pauses:
    # the first request may come before it is ready; a later one offers it.
    for _ in range(40):
        inline = await ne_client.text_document_inline_completion_async(
            inline_params(ed.uri, line, 13)
        )
        assert isinstance(inline, types.InlineCompletionList)
        if inline.items and inline.items[0].insert_text == "total":
            break
        await asyncio.sleep(0.05)
    item = inline.items[0]
    assert item.insert_text == "total" and item.range is not None
    assert item.range.start.line == edit["range"]["start"]["line"]
    assert (await ne_stats(ne_client))["shown"] >= 1
    ed.close()


async def test_bad_params_are_an_error(ne_client: LanguageClient, root: Path) -> None:
    """An unknown document, a missing position and a negative line are InvalidParams."""
    bad = [
        {
            "textDocument": {"uri": (root / "nope.py").as_uri()},
            "position": {"line": 0, "character": 0},
        },
        {"textDocument": {"uri": (root / "totals.py").as_uri()}},
        {
            "textDocument": {"uri": (root / "totals.py").as_uri()},
            "position": {"line": -1, "character": 0},
        },
    ]
    ed = Editor(ne_client, root, "totals.py")
    for params in bad:
        with pytest.raises(JsonRpcException) as exc:
            await ne_client.protocol.send_request_async(NEXT_EDIT, params)
        assert exc.value.code == -32602
    ed.close()
