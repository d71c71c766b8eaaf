"""`lowentropy demo`: the real server, in-process, on the embedded default, offline.

Each section drives the same handlers an editor gets: Tab on a sample file,
then the codebase index on a copy of the standard library's `json` package
(index with a progress bar, a search, a question answered with citations).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

from .app import __version__

SEARCH_QUERY = "decode a JSON document that starts inside a longer string"
QUESTION = "Where is a JSON string decoded into Python objects?"


def run_demo() -> int:
    console = Console()
    console.print(
        f"[bold]lowentropy {__version__}[/] demo: the real server, in-process, embedded models"
    )
    with tempfile.TemporaryDirectory(prefix="lowentropy-demo-") as tmp:
        ok = demo_tab(console, Path(tmp))
        ok = demo_next_edit(console, Path(tmp)) and ok
        ok = demo_apply(console, Path(tmp)) and ok
        ok = demo_codebase(console, Path(tmp)) and ok
    if not ok:
        console.print("[red]a part of the demo gave no result[/]")
        return 1
    return 0


def demo_tab(console: Console, tmp: Path) -> bool:
    from .inprocess import complete_at

    console.print(Rule("Tab: inline completion"))
    sample = (
        resources.files("lowentropy.server").joinpath("data/fib.py.txt").read_text(encoding="utf-8")
    )
    folder = tmp / "tab"
    folder.mkdir()
    path = folder / "fib.py"
    path.write_text(sample, encoding="utf-8")
    lines = sample.split("\n")
    line = len(lines) - 2  # the unfinished `return ` line
    col = len(lines[line])
    started = time.perf_counter()
    suggestion = asyncio.run(complete_at(path, line, col, root=folder))
    elapsed = time.perf_counter() - started
    shown = Text()
    shown.append("\n".join(lines[:line]) + "\n")
    shown.append(lines[line])
    shown.append(suggestion or "∅", style="bold green")
    console.print(
        Panel(
            shown, title=f"Tab at {path.name}:{line + 1}:{col + 1}", subtitle="suggestion in green"
        )
    )
    console.print(f"suggestion: {suggestion!r}  ({elapsed:.1f}s including model load)")
    return bool(suggestion)


SHAPES = "def area(width, height):\n    return width * height\n"
USE_SHAPES = "from shapes import area\n\nsmall = area(1, 2)\nlarge = area(30, 40)\n"


def demo_next_edit(console: Console, tmp: Path) -> bool:
    console.print(Rule("Next edit: remove a parameter, get the call sites"))
    root = tmp / "next_edit"
    root.mkdir()
    (root / "shapes.py").write_text(SHAPES, encoding="utf-8")
    (root / "use_shapes.py").write_text(USE_SHAPES, encoding="utf-8")
    console.print("shapes.py:  [red]def area(width, height):[/] → [green]def area(width):[/]")
    result = asyncio.run(_next_edit_after_removing_height(root))
    edits = result.get("edits") or []
    for edit in edits:
        path = Path(edit["textDocument"]["uri"]).name
        r = edit["range"]
        console.print(
            f"predicted edit: {path}:{r['start']['line'] + 1}:{r['start']['character'] + 1}"
            f"-{r['end']['character'] + 1} → {edit['text']!r}"
        )
    jump = result.get("jump")
    if jump:
        console.print(
            f"jump: {Path(jump['uri']).name}:{jump['range']['start']['line'] + 1} "
            f"({(root / Path(jump['uri']).name).read_text().splitlines()[jump['range']['start']['line']].strip()})"
        )
    return bool(edits)


async def _next_edit_after_removing_height(root: Path) -> dict[str, Any]:
    from lsprotocol import types

    from .inprocess import in_process_client
    from .wire import to_plain

    uri = (root / "shapes.py").as_uri()
    options = {"index": {"enabled": False}, "completion": {"warmDelayMs": -1}}
    async with in_process_client(root, options) as client:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=SHAPES
                )
            )
        )
        start = types.Position(line=0, character=len("def area(width"))
        end = types.Position(line=0, character=len("def area(width, height"))
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=start, end=end), text=""
                    )
                ],
            )
        )
        result = await client.protocol.send_request_async(
            "lowentropy/nextEdit",
            {"textDocument": {"uri": uri, "version": 2}, "position": {"line": 0, "character": 14}},
        )
    plain = to_plain(result)
    return plain if isinstance(plain, dict) else {}


APPLY_FILE = "textwrap.py"
APPLY_SKETCH = """def indent(text, prefix, predicate=None):
    # ... existing code ...
        for line in text.splitlines(True):
            # blank lines keep no trailing prefix
            yield (prefix + line if predicate(line) else line)
    return ''.join(prefixed_lines())
"""


def demo_apply(console: Console, tmp: Path) -> bool:
    import textwrap

    from rich.syntax import Syntax

    console.print(Rule("Apply: a sketch with an elision becomes an exact, verified edit"))
    root = tmp / "apply"
    root.mkdir()
    path = root / APPLY_FILE
    shutil.copy(textwrap.__file__, path)
    console.print(Syntax(APPLY_SKETCH, "python", theme="ansi_dark"))
    result = asyncio.run(_apply(root, path, path.read_text(encoding="utf-8"), APPLY_SKETCH))
    stats = result.get("stats", {})
    console.print(
        f"verified: {result.get('verified')}  path: {stats.get('path')}  "
        f"{stats.get('seconds', 0) * 1000:.0f} ms"
        + (f"  reason: {result['reason']}" if result.get("reason") else "")
    )
    console.print(Syntax(result.get("diff", ""), "diff", theme="ansi_dark"))
    return bool(result.get("verified"))


async def _apply(root: Path, path: Path, text: str, sketch: str) -> dict[str, Any]:
    from lsprotocol import types

    from .inprocess import in_process_client
    from .wire import to_plain

    uri = path.as_uri()
    options = {"index": {"enabled": False}, "completion": {"warmDelayMs": -1}}
    async with in_process_client(root, options) as client:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )
        result = await client.protocol.send_request_async(
            "lowentropy/apply", {"textDocument": {"uri": uri, "version": 1}, "sketch": sketch}
        )
    plain = to_plain(result)
    return plain if isinstance(plain, dict) else {}


def demo_codebase(console: Console, tmp: Path) -> bool:
    from .codebase_cli import ask, build_index, search

    console.print(Rule("Codebase index: index, search, ask"))
    root = tmp / "json"
    root.mkdir()
    for src in sorted(Path(json.__file__).parent.glob("*.py")):
        shutil.copy(src, root / src.name)
    # The demo's index lives in its temporary folder, not in the user's cache. Where code
    # is stored is a user-level setting (a workspace file may not choose it), so the demo
    # runs this part with a user configuration of its own.
    config = tmp / "config.toml"
    config.write_text(f"[index]\ncacheDir = {json.dumps(str(tmp / 'index'))}\n", "utf-8")
    previous = os.environ.get("LOWENTROPY_CONFIG")
    os.environ["LOWENTROPY_CONFIG"] = str(config)
    try:
        console.print(f"indexing a copy of the standard library's json package ({root})")
        if asyncio.run(build_index(root, vectors=True, console=console)) != 0:
            return False
        console.print(f"\n[bold]lowentropy search[/] {SEARCH_QUERY!r}")
        found = asyncio.run(search(root, SEARCH_QUERY, 3, "hybrid", console)) == 0
        console.print(f"\n[bold]lowentropy ask[/] {QUESTION!r}")
        asked = asyncio.run(ask(root, QUESTION, console)) == 0
    finally:
        if previous is None:
            os.environ.pop("LOWENTROPY_CONFIG", None)
        else:
            os.environ["LOWENTROPY_CONFIG"] = previous
    return found and asked
