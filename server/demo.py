"""`lowentropy demo`: the real server, in-process, on the embedded default, offline.

Each section drives the same handlers an editor gets: Tab on a sample file,
then the codebase index on a copy of the standard library's `json` package
(index with a progress bar, a search, a question answered with citations).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

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


def demo_codebase(console: Console, tmp: Path) -> bool:
    from .codebase_cli import ask, build_index, search

    console.print(Rule("Codebase index: index, search, ask"))
    root = tmp / "json"
    root.mkdir()
    for src in sorted(Path(json.__file__).parent.glob("*.py")):
        shutil.copy(src, root / src.name)
    # The demo's index lives in its temporary folder, not in the user's cache.
    (root / "lowentropy.toml").write_text(
        f"[index]\ncacheDir = {json.dumps(str(tmp / 'index'))}\n", encoding="utf-8"
    )
    console.print(f"indexing a copy of the standard library's json package ({root})")
    if asyncio.run(build_index(root, vectors=True, console=console)) != 0:
        return False
    console.print(f"\n[bold]lowentropy search[/] {SEARCH_QUERY!r}")
    found = asyncio.run(search(root, SEARCH_QUERY, 3, "hybrid", console)) == 0
    console.print(f"\n[bold]lowentropy ask[/] {QUESTION!r}")
    asked = asyncio.run(ask(root, QUESTION, console)) == 0
    return found and asked
