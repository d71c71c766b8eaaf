"""Apply over LSP: the real server, real standard-library files, versioned and verified edits."""

from __future__ import annotations

import asyncio
import contextlib
import shelve
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from conftest import QUIET_TAB, Docs, lsp_client, raw_request
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

STDLIB_FILE = Path(textwrap.__file__)


def _ns(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _ns(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return [_ns(v) for v in value]
    return value


def _apply_edits(text: str, edits: list[Any]) -> str:
    """Apply LSP TextEdits (UTF-16 columns; these texts are ASCII or BMP) like an editor."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(pos: Any) -> int:
        return starts[pos.line] + pos.character

    out = text
    for edit in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        out = out[: offset(edit.range.start)] + edit.newText + out[offset(edit.range.end) :]
    return out


def _edits_of(edit: Any, uri: str) -> list[Any]:
    if getattr(edit, "documentChanges", None):
        (change,) = edit.documentChanges
        assert change.textDocument.uri == uri
        return list(change.edits)
    changes = vars(edit.changes) if isinstance(edit.changes, SimpleNamespace) else {}
    return list(changes.get(uri, []))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def applier(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("apply")
    async with lsp_client(root, QUIET_TAB) as client:
        received: list[types.ApplyWorkspaceEditParams] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            received.append(params)
            return types.ApplyWorkspaceEditResult(applied=True)

        yield client, Docs(client, root), received


@contextlib.contextmanager
def _partials(client: LanguageClient, token: str) -> Iterator[list[Any]]:
    """Collect the `$/progress` values sent for `token` (partial results) while inside."""
    partials: list[Any] = []
    features = client.protocol.fm.features
    original = features[types.PROGRESS]

    def progress(params: types.ProgressParams) -> Any:
        if params.token == token:
            partials.append(params.value)
            return None
        return original(params)

    features[types.PROGRESS] = progress
    try:
        yield partials
    finally:
        features[types.PROGRESS] = original


async def _command(
    client: LanguageClient, name: str, uri: str, version: int, sketch: str, wait: bool = False
) -> Any:
    params = {"textDocument": {"uri": uri, "version": version}, "sketch": sketch, "wait": wait}
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=[params])
    )


async def _apply(client: LanguageClient, params: dict[str, Any]) -> Any:
    return _ns(await client.protocol.send_request_async("lowentropy/apply", params))


def _function(source: str, name: str) -> str:
    start = source.index(f"\ndef {name}(") + 1
    end = source.index("\n\n\n", start) + 1
    return source[start:end]


async def test_a_marker_sketch_becomes_a_minimal_verified_edit(applier: Any) -> None:
    client, docs, _ = applier
    source = STDLIB_FILE.read_text(encoding="utf-8")
    uri = docs.open(source, "textwrap_copy.py")
    body = _function(source, "indent")
    old = "            yield (prefix + line if predicate(line) else line)\n"
    new = "            yield prefix + line if predicate(line) else line\n"
    assert old in body
    sketch = (
        "def indent(text, prefix, predicate=None):\n"
        "    # ... existing code ...\n"
        "        for line in text.splitlines(True):\n"
        f"{new}"
        "    return ''.join(prefixed_lines())\n"
    )
    result = await _apply(client, {"textDocument": {"uri": uri, "version": 1}, "sketch": sketch})
    assert result.verified, getattr(result, "reason", None)
    assert result.stats.path == "deterministic"
    edits = _edits_of(result.edit, uri)
    assert len(edits) == 1 and edits[0].range.start.line == edits[0].range.end.line
    assert _apply_edits(source, edits) == source.replace(old, new)
    assert "+" + new.rstrip("\n") in result.diff
    assert result.diff.startswith("--- a/textwrap_copy.py")


@pytest.mark.parametrize(
    ("sketch", "said"),
    [
        (
            "def completely_unrelated(x):\n    # ... existing code ...\n    return x * 42\n",
            # which lines did not fit, for a chat panel to ask the model again
            ["matches nowhere", "sketch lines 1 ('def completely_unrelated(x):'), 3 ("],
        ),
        (
            "Change `shlex.py`:\n\n```python shlex.py\ndef split(s):\n    return s.split()\n```\n",
            ["no code block for this file", "shlex.py"],
        ),
    ],
)
async def test_a_sketch_that_fits_nowhere_is_refused_with_a_reason(
    applier: Any, sketch: str, said: list[str]
) -> None:
    client, docs, _ = applier
    source = STDLIB_FILE.read_text(encoding="utf-8")
    uri = docs.open(source, "textwrap_copy.py")
    result = await _apply(client, {"textDocument": {"uri": uri, "version": 1}, "sketch": sketch})
    assert not result.verified
    assert all(part in result.reason for part in said), result.reason
    assert _edits_of(result.edit, uri) == []


async def test_a_stale_version_is_refused(applier: Any) -> None:
    client, docs, _ = applier
    uri = docs.open("def f(a):\n    return a\n", "stale.py")
    docs.insert(uri, 1, 12, " + 1")
    with pytest.raises(JsonRpcException) as err:
        await _apply(
            client,
            {"textDocument": {"uri": uri, "version": 1}, "sketch": "def f(a):\n    return a - 1\n"},
        )
    assert err.value.code == types.LSPErrorCodes.ContentModified
    assert "version 1" in str(err.value)


async def test_bad_params_are_invalid_params(applier: Any) -> None:
    client, docs, _ = applier
    uri = docs.open("x = 1\n", "bad.py")
    for params in (
        {"textDocument": {"uri": uri}, "sketch": "   "},
        {"textDocument": {"uri": uri}},
        {"textDocument": {"uri": "file:///nowhere/never_opened.py"}, "sketch": "x = 2\n"},
        {"textDocument": {"uri": uri}, "sketch": "x = 2\n", "partialResultToken": 1.5},
    ):
        with pytest.raises(JsonRpcException) as err:
            await _apply(client, params)
        assert err.value.code == types.ErrorCodes.InvalidParams, params


async def test_crlf_and_non_ascii_survive(applier: Any) -> None:
    client, docs, _ = applier
    source = (
        "def grüße(name):\r\n    text = 'hallo ' + name\r\n    return text\r\n\r\nX = '✓ 🎉'\r\n"
    )
    uri = docs.open(source, "crlf.py")
    sketch = "def grüße(name):\n    text = 'grüß dich, ' + name\n    return text\n"
    result = await _apply(client, {"textDocument": {"uri": uri, "version": 1}, "sketch": sketch})
    assert result.verified, getattr(result, "reason", None)
    edits = _edits_of(result.edit, uri)
    new = _apply_edits(source, edits)
    assert new == source.replace("'hallo '", "'grüß dich, '")
    assert "\r\n" in new and "\n" not in new.replace("\r\n", "")


async def test_the_apply_command_writes_through_apply_edit(applier: Any) -> None:
    client, docs, received = applier
    source = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"
    uri = docs.open(source, "shapes.py")
    sketch = "def perimeter(w, h):\n    return 2 * w + 2 * h\n"
    before = len(received)
    result = _ns(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="lowentropy.applySketch",
                arguments=[{"textDocument": {"uri": uri, "version": 1}, "sketch": sketch}],
            )
        )
    )
    assert result.applied and result.verified
    assert len(received) == before + 1
    edit = received[-1].edit
    changes = edit.document_changes
    assert changes is not None and changes[0].text_document.version == 1
    edits = [
        _ns({"range": _ns(client.protocol._converter.unstructure(e.range)), "newText": e.new_text})
        for e in changes[0].edits
    ]
    assert _apply_edits(source, edits) == source.replace("2 * (w + h)", "2 * w + 2 * h")


async def test_a_failing_command_writes_nothing(applier: Any) -> None:
    client, docs, received = applier
    uri = docs.open("def f():\n    return 1\n", "nothing.py")
    before = len(received)
    shown = asyncio.ensure_future(client.wait_for_notification(types.WINDOW_SHOW_MESSAGE))
    result = _ns(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="lowentropy.applySketch",
                arguments=[
                    {"textDocument": {"uri": uri}, "sketch": "class Z:\n    # ...\n    q = 9\n"}
                ],
            )
        )
    )
    assert not result.applied and not result.verified
    message = await asyncio.wait_for(shown, 10)
    assert "nothing applied" in message.message
    assert len(received) == before


async def test_a_result_python_cannot_compile_is_never_written(applier: Any) -> None:
    """Issue 17 item 7: `def get(...):` with its body at the header's depth parses for
    tree-sitter but raises IndentationError; it was verified and written. The deterministic
    path must refuse it (the model may then try); whatever is written compiles."""
    client, docs, received = applier
    source = Path(shelve.__file__).read_text(encoding="utf-8")
    uri = docs.open(source, "shelve_copy.py")
    sketch = "def get(self, key, default=None):\nreturn default\n"
    before = len(received)
    result = _ns(await _command(client, "lowentropy.applySketch", uri, 1, sketch, wait=True))
    assert result.stats.path == "model", "the deterministic merge passed verification"
    if result.verified:  # the model re-indented it: what was written compiles
        edits = _edits_of(_ns(client.protocol._converter.unstructure(received[-1].edit)), uri)
        compile(_apply_edits(source, edits), "shelve_copy.py", "exec")
    else:  # refused (or the model's rewrite changed nothing): nothing written, and why
        assert result.reason and len(received) == before


async def _code_actions(client: LanguageClient, uri: str, rng: types.Range) -> list[Any]:
    """The code actions as the server sent them: [{title, kind, command{command, arguments}}]."""
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=rng,
        context=types.CodeActionContext(diagnostics=[]),
    )
    actions = await raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, params)
    assert actions is not None
    return [_ns(a) for a in actions]


async def test_code_actions_offer_edit_selection_for_a_selection_only(applier: Any) -> None:
    client, docs, received = applier
    uri = docs.open("def f(a):\n    return a\n", "actions.py")
    rng = types.Range(
        start=types.Position(line=0, character=0), end=types.Position(line=1, character=12)
    )
    (edit,) = [a for a in await _code_actions(client, uri, rng) if "Edit selection" in a.title]
    assert edit.command is not None and edit.command.command == "lowentropy.editSelection"
    (args,) = edit.command.arguments
    assert vars(args.textDocument) == {"uri": uri, "version": 1}
    assert vars(args.range.start) == {"line": 0, "character": 0}
    assert vars(args.range.end) == {"line": 1, "character": 12}
    assert args.instruction == ""
    raw_args = {
        "textDocument": vars(args.textDocument),
        "range": {"start": vars(args.range.start), "end": vars(args.range.end)},
        "instruction": "",
    }
    # the client fills in the instruction; without one the command refuses and writes nothing
    before = len(received)
    with pytest.raises(JsonRpcException) as err:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=edit.command.command, arguments=[raw_args])
        )
    assert err.value.code == types.ErrorCodes.InvalidParams and "instruction" in str(err.value)
    assert len(received) == before
    # at a bare cursor there is nothing to edit
    cursor = types.Range(start=rng.start, end=rng.start)
    assert not [a for a in await _code_actions(client, uri, cursor) if "Edit" in a.title]


async def test_show_diff_returns_the_diff_and_writes_nothing(applier: Any) -> None:
    client, docs, received = applier
    source = "def area(w, h):\n    return w * h\n"
    uri = docs.open(source, "diff_only.py")
    before = len(received)
    sketch = "def area(w, h):\n    return abs(w * h)\n"
    result = _ns(await _command(client, "lowentropy.showDiff", uri, 1, sketch))
    assert result.verified
    assert "-    return w * h" in result.diff and "+    return abs(w * h)" in result.diff
    assert len(received) == before  # nothing written


async def test_a_command_for_a_stale_version_writes_nothing(applier: Any) -> None:
    client, docs, received = applier
    uri = docs.open("def f(a):\n    return a\n", "stale_command.py")
    docs.insert(uri, 1, 12, " + 1")
    before = len(received)
    with pytest.raises(JsonRpcException) as err:
        await _command(client, "lowentropy.applySketch", uri, 1, "def f(a):\n    return a - 1\n")
    assert err.value.code == types.LSPErrorCodes.ContentModified
    assert len(received) == before


async def test_a_ten_thousand_line_file(applier: Any) -> None:
    client, docs, _ = applier
    blocks = [f"def f{k}(x):\n    return x + {k}\n\n\n" for k in range(2500)]
    source = "".join(blocks)
    assert source.count("\n") == 10000
    uri = docs.open(source, "big.py")
    sketch = "def f1234(x):\n    return x * 1234\n"
    result = await _apply(client, {"textDocument": {"uri": uri, "version": 1}, "sketch": sketch})
    assert result.verified and result.stats.path == "deterministic"
    edits = _edits_of(result.edit, uri)
    assert len(edits) == 1 and edits[0].range.start.line == 1234 * 4 + 1
    assert _apply_edits(source, edits) == source.replace(
        "    return x + 1234\n", "    return x * 1234\n"
    )


async def test_a_typescript_file(applier: Any) -> None:
    client, docs, _ = applier
    source = (Path(__file__).parent / "data" / "apply" / "queue.ts").read_text(encoding="utf-8")
    uri = docs.open(source, "queue.ts", language="typescript")
    old = "            lastError = String(err);\n"
    new = "            lastError = err instanceof Error ? err.message : String(err);\n"
    assert source.count(old) == 1
    head = next(line for line in source.split("\n") if "function runWithRetry" in line)
    sketch = (
        f"{head}\n"
        "    // ... existing code ...\n"
        "        } catch (err) {\n"
        f"{new}"
        "        }\n"
        "    // ... existing code ...\n"
    )
    result = await _apply(client, {"textDocument": {"uri": uri, "version": 1}, "sketch": sketch})
    assert result.verified, getattr(result, "reason", None)
    assert result.stats.path == "deterministic"
    assert _apply_edits(source, _edits_of(result.edit, uri)) == source.replace(old, new)


async def test_edit_selection_rewrites_only_the_selection_or_says_why(applier: Any) -> None:
    """Cmd-K with the embedded chat model (greedy): a verified edit stays inside the selection."""
    client, docs, _ = applier
    source = "def area(w, h):\n    return w * h\n\n\ndef keep(x):\n    return x\n"
    uri = docs.open(source, "cmdk.py")
    with _partials(client, "edit-1") as partials:
        result = _ns(
            await client.protocol.send_request_async(
                "lowentropy/editSelection",
                {
                    "textDocument": {"uri": uri, "version": 1},
                    "range": {
                        "start": {"line": 0, "character": 0},
                        "end": {"line": 1, "character": 16},
                    },
                    "instruction": "Rename the parameter w to width.",
                    "partialResultToken": "edit-1",
                },
            )
        )
    assert result.stats.path in ("deterministic", "model")
    assert not partials or result.stats.path == "model"  # only the apply model streams
    edits = _edits_of(result.edit, uri)
    if result.verified:
        assert edits and all(e.range.end.line <= 2 for e in edits)
        new = _apply_edits(source, edits)
        assert new.endswith("def keep(x):\n    return x\n")
        assert new != source
    else:
        assert edits == [] and result.reason


async def test_a_sketch_the_merge_cannot_place_goes_to_the_model_and_streams(
    applier: Any,
) -> None:
    client, docs, _ = applier
    source = (
        "class Store:\n    def get(self, key, default=None):\n"
        "        return self.data.get(key, default)\n\n    def size(self):\n        return 1\n"
    )
    uri = docs.open(source, "store.py")
    with _partials(client, "apply-1") as partials:
        result = await _apply(
            client,
            {
                "textDocument": {"uri": uri, "version": 1},
                # its body at the header's depth: the merge does not compile, the model may
                "sketch": "def get(self, key, default=None):\nreturn default\n",
                "partialResultToken": "apply-1",
                "wait": True,  # however long the model takes (else refused by the budget)
            },
        )
    assert result.stats.path == "model"
    assert result.stats.tokens > 0
    assert partials and all(set(p) == {"text", "region", "startLine", "endLine"} for p in partials)
    # the pieces are code only (no tags), for the region the model rewrites
    streamed = "".join(p["text"] for p in partials)
    assert streamed.strip() and "updated-code>" not in streamed
    assert {(p["region"], p["startLine"]) for p in partials} == {(0, partials[0]["startLine"])}
    edits = _edits_of(result.edit, uri)
    if result.verified:
        new = _apply_edits(source, edits)
        assert "        return default\n" in new and "return 1\n" in new
    else:  # the tiny model's rewrite did not hold up: nothing is offered, and it says why
        assert edits == [] and result.reason


async def test_a_sketch_that_fits_twins_equally_is_refused_before_any_model(
    applier: Any,
) -> None:
    """Which of two tied places a sketch means, nothing can prove: a model's pick was verified
    and could be the wrong one. Refused at once, with the places, and a selection decides."""
    client, docs, _ = applier
    source = (
        "class Small:\n    def size(self):\n        return 1\n\n\n"
        "class Large:\n    def size(self):\n        return 100\n"
    )
    uri = docs.open(source, "sizes.py")
    params: dict[str, Any] = {
        "textDocument": {"uri": uri, "version": 1},
        "sketch": "def size(self):\n    return 1000\n",
    }
    result = await _apply(client, params)
    assert not result.verified and result.stats.path == "deterministic"
    assert result.stats.tokens == 0 and _edits_of(result.edit, uri) == []
    assert "fits equally well" in result.reason and "select the code" in result.reason
    params["range"] = {"start": {"line": 6, "character": 0}, "end": {"line": 8, "character": 0}}
    result = await _apply(client, params)
    assert result.verified
    assert _apply_edits(source, _edits_of(result.edit, uri)) == source.replace("100", "1000")


# -- sketches as chat models write them (data: apply_chat_devset.py, stdlib functions) -----
def _chat_case(form: str) -> Any:
    """The first chat-style case of `form` that the deterministic path places: over LSP it
    must come back verified and exact (no model involved)."""
    from apply_chat_devset import chat_cases

    from lowentropy.server.apply import plan_apply

    for case in chat_cases("dev"):
        if case.tags[1] != form:
            continue
        plan = plan_apply(case.original, case.sketch, language="python", path=case.path)
        if plan.result == case.expected:
            return case
    raise AssertionError(f"no deterministic case of {form}")


@pytest.mark.parametrize(
    "form",
    [
        "md:fence", "md:path", "md:tilde", "md:two-blocks", "md:prose-between",
        "abbrev:signature", "abbrev:docstring", "abbrev:string", "abbrev:comment",
        "ws:trailing", "ws:blanks", "depth:0", "depth:header", "depth:deep", "tail:body",
        "whole",
    ],
)  # fmt: skip
async def test_each_chat_sketch_form_applies_exactly(applier: Any, form: str) -> None:
    client, docs, _ = applier
    case = _chat_case(form)
    uri = docs.open(case.original, case.path)
    result = await _apply(
        client, {"textDocument": {"uri": uri, "version": 1}, "sketch": case.sketch}
    )
    assert result.verified, getattr(result, "reason", None)
    assert result.stats.path == "deterministic"
    assert _apply_edits(case.original, _edits_of(result.edit, uri)) == case.expected
