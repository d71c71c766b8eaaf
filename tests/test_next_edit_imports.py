"""Next edit after a name moved between imports, and a substitution that reaches an
import, through the real server (embedded engine, SmolLM2-135M).

Data: tests/data/next_edit_candidates/moved.py (imports from `collections.abc` and a
parenthesized `from typing import (...)`, a dataclass using them) and compat.py (one
`from six import text_type` and its one use). Each test makes one edit over LSP, reads
the answer of `lowentropy/nextEdit` and applies its edit.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import QUIET_TAB, lsp_client
from pytest_lsp import LanguageClient
from test_next_edit import Editor, ne_stats

DATA = Path(__file__).parent / "data" / "next_edit_candidates"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(shutil.copytree(DATA, tmp_path_factory.mktemp("next_edit_imports") / "ws"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(root: Path) -> AsyncIterator[LanguageClient]:
    async with lsp_client(root, QUIET_TAB) as c:
        yield c


def _line(text: str, fragment: str) -> int:
    return text.count("\n", 0, text.index(fragment))


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
