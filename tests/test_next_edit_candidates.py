"""Next edit's candidate sources through the real server (embedded engine, SmolLM2-135M).

Data: tests/data/next_edit_candidates/service.py (a small CLI module: imports, an
argument parser, a fetch function, a class of limits). Each test makes one edit
over LSP and reads the answer of `lowentropy/nextEdit`, and the evidence behind
it and the top-ranked candidate lines from `lowentropy/nextEditStats`.

Also a name moved between imports, and a substitution that reaches an import:
moved.py (imports from `collections.abc` and a parenthesized `from typing import
(...)`, a dataclass using them) and compat.py (one `from six import text_type` and its
one use); those tests apply the answer's edit.
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
from pytest_lsp import LanguageClient
from test_next_edit import Editor, ne_stats

DATA = Path(__file__).parent / "data" / "next_edit_candidates"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(shutil.copytree(DATA, tmp_path_factory.mktemp("next_edit_candidates") / "ws"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(root: Path) -> AsyncIterator[LanguageClient]:
    async with lsp_client(root, QUIET_TAB) as c:
        yield c


def _line(text: str, fragment: str) -> int:
    return text.count("\n", 0, text.index(fragment))


def _answer_line(result: dict[str, Any]) -> int | None:
    if result["edits"]:
        return int(result["edits"][0]["range"]["start"]["line"])
    if result["jump"] is not None:
        return int(result["jump"]["range"]["start"]["line"])
    return None


async def test_a_deleted_import_points_at_the_name_it_leaves_unresolved(
    client: LanguageClient, root: Path
) -> None:
    """`import json` deleted: pyflakes (on the buffer in memory) finds `json` no longer
    resolves in `render`, and the removed name is used there: the place is that line, a
    jump (no edit is determined there), and the file on disk is untouched."""
    ed = Editor(client, root, "service.py")
    at = ed.text.index("import json\n")
    ed.replace(at, at + len("import json\n"), "")
    result = await ed.next_edit(at)
    stats = await ne_stats(client)
    assert _answer_line(result) == _line(ed.text, "body = json.dumps")
    assert result["edits"] == [] and result["jump"]["uri"] == ed.uri
    assert {"problem", "removed"} <= set(stats["lastKinds"])
    assert "import json" in (root / "service.py").read_text(encoding="utf-8")
    ed.close()


async def test_removing_the_last_use_of_a_module_points_at_its_import(
    client: LanguageClient, root: Path
) -> None:
    """The one `os.path.join(...)` replaced by a literal: the other half of the pair, the
    `import os` now unused (pyflakes), is the place, and the edit there removes it."""
    ed = Editor(client, root, "service.py")
    old = 'os.path.join("~", ".service")'
    at = ed.text.index(old)
    ed.replace(at, at + len(old), '"~/.service"')
    result = await ed.next_edit(at)
    stats = await ne_stats(client)
    assert _answer_line(result) == _line(ed.text, "import os")
    assert "problem" in stats["lastKinds"]
    (edit,) = result["edits"]
    ed.apply(edit)
    assert "import os" not in ed.text and "import json\nfrom argparse" in ed.text
    ed.close()


async def test_an_argument_added_to_one_call_is_added_to_the_next_alike_call(
    client: LanguageClient, root: Path
) -> None:
    """`default=...` added to the `--host` argument: the next `add_argument` call looks as
    the edited one did (same shape, same callee), and propagation determines the edit
    there; inline completion offers it as an item with its range when the cursor is on
    that line, and the code action carries it."""
    ed = Editor(client, root, "service.py")
    at = ed.text.index("type=str)") + len("type=str")
    ed.replace(at, at, ', default="localhost"')
    result = await ed.next_edit(at)
    stats = await ne_stats(client)
    port = _line(ed.text, '"--port"')
    (edit,) = result["edits"]
    assert edit["range"]["start"]["line"] == port
    assert {"shape", "determined"} <= set(stats["lastKinds"])
    # The same edit through the standard: on the cursor's line, an item with a range.
    column = len('    parser.add_argument("--port"')
    item = None
    for _ in range(40):  # located off the keystroke path once typing pauses
        inline = await client.text_document_inline_completion_async(
            inline_params(ed.uri, port, column)
        )
        assert isinstance(inline, types.InlineCompletionList)
        first = inline.items[0] if inline.items else None
        if first is not None and first.command is not None and "NextEdit" in first.command.command:
            item = first  # not Tab's own completion: the next edit
            break
        await asyncio.sleep(0.05)
    assert item is not None and item.range is not None
    assert item.range.start.line == item.range.end.line == port
    assert item.insert_text == edit["text"]
    here = types.Position(line=port, character=column)
    actions = await raw_request(
        client,
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=ed.uri),
            range=types.Range(start=here, end=here),
            context=types.CodeActionContext(diagnostics=[]),
        ),
    )
    ours = [a for a in actions if a["title"].startswith("lowentropy: Next edit")]
    assert len(ours) == 1, [a["title"] for a in actions]
    (change,) = ours[0]["edit"]["documentChanges"]
    assert [e["newText"] for e in change["edits"]] == [edit["text"]]
    ed.apply(edit)
    assert 'parser.add_argument("--port", type=int, default="localhost")' in ed.text
    ed.close()


async def test_a_changed_signature_ranks_its_call_and_a_changed_line_ranks_its_likes(
    client: LanguageClient, root: Path
) -> None:
    """Two weaker sources, seen in the ranked candidates even when the gate stays silent:
    a parameter added to `fetch` ranks its call site (propagation's place, the function's
    name on the edited line) among the top five; `retries: int = 3` given a new type ranks
    the lines of the same shape below it."""
    ed = Editor(client, root, "service.py")
    at = ed.text.index("def fetch(url)") + len("def fetch(url")
    ed.replace(at, at, ", timeout")
    await ed.next_edit(at)
    stats = await ne_stats(client)
    call = _line(ed.text, "data = fetch(args.host)")
    assert call in stats["lastCandidates"]
    kinds = stats["lastCandidateKinds"][stats["lastCandidates"].index(call)]
    assert {"propagation", "context"} <= set(kinds)
    ed.close()

    ed = Editor(client, root, "service.py")
    old = "retries: int = 3"
    at = ed.text.index(old)
    ed.replace(at, at + len(old), "retries: int | None = None")
    await ed.next_edit(at)
    stats = await ne_stats(client)
    for fragment in ("timeout: int = 30", "max_bytes: int = 1024"):
        line = _line(ed.text, fragment)
        assert line in stats["lastCandidates"]
        assert "shape" in stats["lastCandidateKinds"][stats["lastCandidates"].index(line)]
    ed.close()


async def test_a_name_dropped_from_an_import_is_respelled_where_it_is_used(
    client: LanguageClient, root: Path
) -> None:
    """typed.py: `Dict` dropped from `from typing import Any, Dict`: its use in `load` no
    longer resolves (pyflakes) and `dict`, the one name spelled alike, does: that line is
    the place and the edit respells it."""
    ed = Editor(client, root, "typed.py")
    at = ed.text.index(", Dict")
    ed.replace(at, at + len(", Dict"), "")
    result = await ed.next_edit(at)
    (edit,) = result["edits"]
    assert edit["range"]["start"]["line"] == _line(ed.text, "def load")
    ed.apply(edit)
    assert "def load(path: str) -> dict[str, Any]:" in ed.text
    ed.close()


async def test_a_two_line_change_is_repeated_where_the_same_two_lines_are(
    client: LanguageClient, root: Path
) -> None:
    """service.py with a copy of `render` below it: `body = json.dumps(payload)` and
    `return body` rewritten as one `return json.dumps(payload)` in the first; the same
    two lines in the copy are the place, and the edit there is the same rewrite."""
    ed = Editor(client, root, "service.py")
    pair = "    body = json.dumps(payload)\n    return body\n"
    at = ed.text.index(pair) + len(pair)
    ed.replace(at, at, "\n\ndef render_again(payload):\n" + pair)  # the second copy
    first = ed.text.index(pair)
    ed.replace(first, first + len(pair), "    return json.dumps(payload)\n")
    result = await ed.next_edit(first)
    (edit,) = result["edits"]
    ed.apply(edit)
    assert ed.text.count("    return json.dumps(payload)\n") == 2
    assert "body" not in ed.text
    ed.close()


async def test_a_renamed_loop_variable_is_renamed_again_later_on_its_own_line(
    client: LanguageClient, root: Path
) -> None:
    """`for arg in vars(args): print(arg)`: the loop variable renamed `name` where it is
    bound; its use later on the same line is the place (the candidate lines leave the
    edited line out), and the edit there is the same rename."""
    text = (root / "service.py").read_text(encoding="utf-8")
    at = text.index("    print(render(data))\n")
    text = text[:at] + "    for arg in vars(args): print(arg)\n" + text[at:]
    (root / "loop.py").write_text(text, encoding="utf-8")
    ed = Editor(client, root, "loop.py")
    bound = ed.text.index("for arg") + len("for ")
    ed.replace(bound, bound + len("arg"), "name")
    result = await ed.next_edit(bound + len("name"))
    (edit,) = result["edits"]
    assert edit["range"]["start"]["line"] == _line(ed.text, "for name in")
    ed.apply(edit)
    assert "    for name in vars(args): print(name)\n" in ed.text
    stats = await ne_stats(client)
    assert {"determined", "propagation"} <= set(stats["lastKinds"])
    ed.close()


async def test_the_nearest_line_still_carrying_the_old_annotation_ranks_first_of_its_kind(
    client: LanguageClient, root: Path
) -> None:
    """hooks.py: one `# type: typing.Dict[str, typing.List[str]]` rewritten as
    `dict[str, list[str]]`. The ranker (boosted trees over where each line stands among
    the others) ranks the next line below that still carries `typing.Dict` above the
    line right under the edit that carries only `typing.List` (the former linear
    ranker, led by distance, had it the other way round)."""
    ed = Editor(client, root, "hooks.py")
    old = "typing.Dict[str, typing.List[str]]"
    at = ed.text.index(old)
    ed.replace(at, at + len(old), "dict[str, list[str]]")
    await ed.next_edit(at)
    stats = await ne_stats(client)
    ranked = stats["lastCandidates"]
    counts = _line(ed.text, "counts = {}  # type: typing.Dict")
    order = _line(ed.text, "self._order = []  # type: typing.List")
    assert counts in ranked
    assert order not in ranked or ranked.index(counts) < ranked.index(order)
    ed.close()


# A name moved between imports (server/next_edit/imports.py).


async def test_a_name_taken_out_of_typing_is_imported_from_collections_abc(
    client: LanguageClient, root: Path
) -> None:
    """`Callable` taken out of `from typing import (...)` while `Job` still uses it: the
    place is the `collections.abc` import, and the edit adds it there in sorted order."""
    ed = Editor(client, root, "moved.py")
    at = ed.text.index("    Callable,\n")
    ed.replace(at, at + len("    Callable,\n"), "")
    result = await ed.next_edit(at)
    (edit,) = result["edits"]
    assert edit["range"]["start"]["line"] == _line(ed.text, "from collections.abc import")
    ed.apply(edit)
    assert "from collections.abc import Callable, Sequence\n" in ed.text
    assert "    Callable,\n" not in ed.text
    stats = await ne_stats(client)
    assert "import" in stats["lastKinds"]
    ed.close()


async def test_a_name_imported_from_collections_abc_leaves_the_typing_import(
    client: LanguageClient, root: Path
) -> None:
    """`Callable` added to the `collections.abc` import while `typing` still imports it
    (a redefinition): the place is its line in the parenthesized `typing` import, and
    the edit takes that line out, leaving the rest of the statement as it was."""
    ed = Editor(client, root, "moved.py")
    at = ed.text.index("import Sequence") + len("import ")
    ed.replace(at, at, "Callable, ")
    result = await ed.next_edit(at + len("Callable, "))
    (edit,) = result["edits"]
    assert edit["range"]["start"]["line"] == _line(ed.text, "    Callable,\n")
    ed.apply(edit)
    assert "from typing import (\n    Any,\n    Literal,\n)\n" in ed.text
    assert "from collections.abc import Callable, Sequence\n" in ed.text
    ed.close()


async def test_a_name_taken_out_of_collections_abc_joins_the_parenthesized_typing_import(
    client: LanguageClient, root: Path
) -> None:
    """The `collections.abc` import of `Sequence` deleted while `Job` still uses it: the
    name's other home in the standard library is `typing`, so the edit adds it to the
    parenthesized `typing` import, on its own line, in sorted order."""
    ed = Editor(client, root, "moved.py")
    line = "from collections.abc import Sequence\n"
    at = ed.text.index(line)
    ed.replace(at, at + len(line), "")
    result = await ed.next_edit(at)
    (edit,) = result["edits"]
    ed.apply(edit)
    assert "    Literal,\n    Sequence,\n)\n" in ed.text
    ed.close()


async def test_a_name_moving_to_a_module_not_imported_yet_gets_its_own_import_line(
    client: LanguageClient, root: Path
) -> None:
    """moved.py without its `collections.abc` import, `Sequence` imported from `typing`
    instead; `Sequence` taken out of `typing`'s: the edit is a new
    `from collections.abc import Sequence` line, in module order among the `from` imports
    of its block (before `dataclasses`)."""
    text = (root / "moved.py").read_text(encoding="utf-8")
    text = text.replace("from collections.abc import Sequence\n", "")
    text = text.replace("    Literal,\n", "    Literal,\n    Sequence,\n")
    (root / "fresh.py").write_text(text, encoding="utf-8")
    ed = Editor(client, root, "fresh.py")
    at = ed.text.index("    Sequence,\n")
    ed.replace(at, at + len("    Sequence,\n"), "")
    result = await ed.next_edit(at)
    (edit,) = result["edits"]
    assert edit["range"]["start"]["line"] == _line(ed.text, "from dataclasses import")
    ed.apply(edit)
    assert "import sys\n\nfrom collections.abc import Sequence\nfrom dataclasses" in ed.text
    ed.close()


async def test_a_substitution_reaching_an_import_removes_the_import_instead(
    client: LanguageClient, root: Path
) -> None:
    """compat.py: the one use of `text_type` respelled `str`. Propagation would repeat the
    substitution into `from six import text_type` (importing `str` from six); the name is
    now unused there (pyflakes) and `str` is a builtin, so the edit removes the import."""
    ed = Editor(client, root, "compat.py")
    at = ed.text.index("text_type)")
    ed.replace(at, at + len("text_type"), "str")
    result = await ed.next_edit(at + len("str"))
    (edit,) = result["edits"]
    assert edit["range"]["start"]["line"] == 0
    ed.apply(edit)
    assert "six" not in ed.text and "isinstance(value, str)" in ed.text
    ed.close()
