"""`lowentropy index`, `search` and `ask`: the codebase index from a terminal.

`index` and `search` open the same index the server uses for that folder
(same settings from its `lowentropy.toml`, same database), so indexing from
the terminal first means the editor starts with every vector in place.
`ask` runs the real server in-process and asks `lowentropy/chat`, streaming
the answer as it comes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lowentropy.retrieval import Index, SyncProgress

from .indexing import index_config, make_embedder
from .settings import Settings, SettingsError, resolve
from .trust import settings_sources

_partial_tokens = itertools.count(1)


def add_codebase_commands(sub: Any) -> None:
    index = sub.add_parser("index", help="index a folder for search and chat (a progress bar)")
    index.add_argument("path", type=Path, nargs="?", default=Path.cwd(), help="workspace folder")
    index.add_argument(
        "--no-vectors", action="store_true", help="full text only: skip embedding (fast)"
    )
    index.set_defaults(func=cmd_index)

    search = sub.add_parser("search", help="search the indexed codebase")
    search.add_argument("query")
    search.add_argument("--root", type=Path, default=Path.cwd(), help="workspace folder")
    search.add_argument("--limit", type=int, default=8)
    search.add_argument("--mode", choices=["hybrid", "vector", "fulltext"], default="hybrid")
    search.set_defaults(func=cmd_search)

    ask = sub.add_parser("ask", help="ask a question about the codebase (streams the answer)")
    ask.add_argument("question")
    ask.add_argument("--root", type=Path, default=Path.cwd(), help="workspace folder")
    ask.set_defaults(func=cmd_ask)


def workspace_settings(root: Path) -> Settings:
    """The user's settings and the workspace's (what the user trusts it with: trust.py)."""
    sources = settings_sources(root)
    for warning in sources.warnings:
        print(warning, file=sys.stderr)
    return resolve(*(d for d in (sources.user, sources.workspace) if d is not None))


def open_index(root: Path) -> Index:
    settings = workspace_settings(root)
    return Index(root, make_embedder(settings.role("embed")), index_config(settings.index))


def _folder(path: Path) -> Path | None:
    if not path.is_dir():
        print(f"lowentropy: not a folder: {path}", file=sys.stderr)
        return None
    return path.resolve()


# ---- index -------------------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    root = _folder(args.path)
    if root is None:
        return 2
    try:
        return asyncio.run(build_index(root, vectors=not args.no_vectors, console=Console()))
    except SettingsError as exc:
        print(f"lowentropy: {exc}", file=sys.stderr)
        return 2


async def build_index(root: Path, *, vectors: bool, console: Console) -> int:
    index = open_index(root)
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[path]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        files = bar.add_task("files", total=None, path="")

        def on_progress(p: SyncProgress) -> None:  # from the sync's worker thread
            if p.phase == "scan":
                bar.update(files, description="scanning", completed=p.done, path=p.path or "")
            elif p.phase == "index":
                bar.update(
                    files, description="chunking", completed=p.done, total=p.total, path=p.path
                )

        result = await index.sync(progress=on_progress)
        bar.update(files, description="files", completed=result.files, total=result.files, path="")
        embedded = 0
        if vectors:
            status = await index.status()
            task = bar.add_task("vectors", total=status.pending_embeddings, path=index.model)
            fill = asyncio.create_task(index.fill_vectors())
            while not fill.done():
                await asyncio.wait([fill], timeout=0.5)
                status = await index.status()
                total = bar.tasks[task].total or 0
                bar.update(task, completed=max(0, total - status.pending_embeddings))
            embedded = fill.result()
            bar.update(task, completed=bar.tasks[task].total)
    status = await index.status()
    await index.aclose()
    await index.embedder.aclose()
    console.print(
        f"[bold]{status.files}[/] files, [bold]{status.chunks}[/] chunks "
        f"(+{len(result.added)} ~{len(result.changed)} -{len(result.removed)} files; "
        f"{embedded} chunks embedded, {status.pending_embeddings} pending) "
        f"in {time.perf_counter() - started:.1f} s; root {status.root_hash[:12]}"
    )
    console.print(f"[dim]index: {index.db_uri}[/]")
    return 0


# ---- search ------------------------------------------------------------------------------


def cmd_search(args: argparse.Namespace) -> int:
    root = _folder(args.root)
    if root is None:
        return 2
    if not 1 <= args.limit <= 200:
        print("lowentropy: --limit must be within 1..200", file=sys.stderr)
        return 2
    try:
        return asyncio.run(search(root, args.query, args.limit, args.mode, Console()))
    except SettingsError as exc:
        print(f"lowentropy: {exc}", file=sys.stderr)
        return 2


async def search(root: Path, query: str, limit: int, mode: Any, console: Console) -> int:
    index = open_index(root)
    try:
        await index.sync()  # incremental: only what changed since the last sync is read
        hits = await index.search(query, limit, mode)
        status = await index.status()
    finally:
        await index.aclose()
        await index.embedder.aclose()
    if not hits:
        console.print(f"no results for {query!r}")
        return 1
    table = Table(title=f"{query!r}: {mode} search over {status.chunks} chunks")
    table.add_column("score", justify="right")
    table.add_column("location")
    table.add_column("symbol")
    table.add_column("first line")
    for hit in hits:
        first = next((line.strip() for line in hit.text.splitlines() if line.strip()), "")
        table.add_row(
            f"{hit.score:.4f}",
            f"{hit.rel_path}:{hit.span.start_line + 1}-{hit.span.end_line + 1}",
            hit.symbol or hit.kind,
            first[:60],
        )
    console.print(table)
    if status.pending_embeddings:
        console.print(
            f"[dim]{status.pending_embeddings} chunks not embedded yet: "
            "run `lowentropy index` for vector results[/]"
        )
    return 0


# ---- ask ---------------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace) -> int:
    root = _folder(args.root)
    if root is None:
        return 2
    return asyncio.run(ask(root, args.question, Console()))


async def ask(root: Path, question: str, console: Console) -> int:
    from lsprotocol import types

    from . import protocol
    from .inprocess import in_process_client

    token = f"lowentropy/ask/{next(_partial_tokens)}"

    def on_progress(params: types.ProgressParams) -> None:
        value = params.value
        if params.token == token and isinstance(value, dict) and "content" in value:
            sys.stdout.write(str(value["content"]))
            sys.stdout.flush()

    def setup(client: Any) -> None:
        client.feature(types.PROGRESS)(on_progress)

    async with in_process_client(root, setup=setup) as client:
        while True:  # the first sync of a new folder runs in the background
            status = await client.protocol.send_request_async(protocol.INDEX_STATUS, {})
            if getattr(status, "state", "off") != "indexing":
                break
            await asyncio.sleep(0.2)
        result = await client.protocol.send_request_async(
            protocol.CHAT,
            {"messages": [{"role": "user", "content": question}], "partialResultToken": token},
        )
    sys.stdout.write("\n")
    citations = list(getattr(result, "citations", None) or [])
    if citations:
        console.print("[bold]sources:[/]")
        for n, loc in enumerate(citations, start=1):
            path = Path(_uri_path(loc.uri))
            try:
                shown = path.relative_to(root)
            except ValueError:
                shown = path
            console.print(f"  [{n}] {shown}:{loc.range.start.line + 1}-{loc.range.end.line + 1}")
    return 0


def _uri_path(uri: str) -> str:
    from pygls.uris import to_fs_path

    return to_fs_path(uri) or uri
