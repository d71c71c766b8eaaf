"""Typing replay: real function bodies typed back through the server, as a person would.

    python bench/typing_replay.py [--functions N] [--split dev|heldout] [--phase idle|busy|both]
                                  [--seed N] [--model GGUF] [--json OUT]

(Not `bench/typing.py`: a script's folder heads `sys.path`, so that name would shadow
the standard library's `typing` for every bench here.)

Functions of 8-25 lines (one-line `def`, ASCII, no tabs) come from the split's files
(`fim_cases.py`; held-out third-party code by default), one per file. Each one's file
is opened with the body deleted, the cursor at the end of the `def` line; then the
body is typed back a character at a time (a newline carries the next line's
indentation in the same change, as an editor's auto-indent does). After every
change the client asks `textDocument/inlineCompletion` at the cursor and waits for
the answer. A non-empty suggestion that the text still to type starts with is
accepted: inserted as one change, its characters counted as saved, and the item's
command sent (`workspace/executeCommand`) when it has one.

Phases, same functions and settings (prefetch and warming on, the defaults):
- idle: the index off;
- busy: the workspace also holds a copy of the standard library (`vendor_copy/`),
  indexing on from a cold cache; the replay starts as soon as the Tab backend is
  loaded, and the index must still be embedding when it ends.
Each phase's server gets a fresh XDG_CACHE_HOME whose `lowentropy/` links every
entry of the real one but `index` (the model, the ONNX export, the llama.cpp probe).

Prints per phase: saved % (of all body characters), acceptances / suggestions shown,
request latency p50/p95/p99 and requests over 1 s and 5 s. Bars: saved >= 25% (idle);
p95 <= 1.5 s and p99 <= 3 s (each phase); busy/idle p95 <= 1.2; and, for the busy
phase to count, the index still embedding at its end. About 4 minutes per function
and phase on 2 cores (the defaults: 6 functions, both phases, ~45 minutes).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fim import model_path  # noqa: E402
from fim_cases import SPLITS, read_source, seeded_order, split_files  # noqa: E402
from harness import pct, server, stats, verdict, wait_ready  # noqa: E402
from lsprotocol import types  # noqa: E402
from pytest_lsp import LanguageClient  # noqa: E402

FUNCTION_LINES = (8, 25)  # from the `def` line to the last, both included
VENDOR_SKIPPED = {"site-packages", "__pycache__"}
BACKEND_TIMEOUT_S = 180.0
SAVED_BAR = 0.25
P95_BAR_MS = 1500.0
P99_BAR_MS = 3000.0
BUSY_RATIO_BAR = 1.2


@dataclass(frozen=True)
class Function:
    path: str  # relative to the split's root
    name: str
    text: str  # the whole original file
    start: int  # the end of the `def` line: the cursor
    end: int  # the end of the function's last line

    @property
    def body(self) -> str:
        """What is typed: a newline, then the body's lines."""
        return self.text[self.start : self.end]

    @property
    def document(self) -> str:
        return self.text[: self.start] + self.text[self.end :]


def _functions_in(path: str, text: str, tree: ast.Module) -> list[Function]:
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.end_lineno is None:
            continue
        first, last = node.lineno - 1, node.end_lineno - 1
        if not FUNCTION_LINES[0] <= last - first + 1 <= FUNCTION_LINES[1]:
            continue
        if node.body[0].lineno != node.lineno + 1:  # the signature spans lines
            continue
        span = text[starts[first] : starts[last] + len(lines[last])]
        if span.isascii() and "\t" not in span:
            found.append(
                Function(
                    path,
                    node.name,
                    text,
                    starts[first] + len(lines[first]),
                    starts[last] + len(lines[last]),
                )
            )
    return found


def pick_functions(split: str, count: int, seed: int) -> list[Function]:
    """`count` functions, one per file, in the split's seeded file order."""
    rng = random.Random(f"typing:{split}:{seed}")
    picked: list[Function] = []
    for source in seeded_order(split_files(split), rng):
        if len(picked) == count:
            break
        parsed = read_source(source)
        candidates = _functions_in(source.relative, *parsed) if parsed else []
        if candidates:
            picked.append(rng.choice(candidates))
    return picked


# ---- the replay --------------------------------------------------------------------------------


@dataclass
class Tally:
    typed: int = 0  # keystrokes (a newline with its auto-indent is one)
    indented: int = 0  # characters the auto-indent inserted
    saved: int = 0  # characters inserted by accepting suggestions
    shown: int = 0  # non-empty suggestions
    accepted: int = 0
    latencies: list[float] = field(default_factory=list)  # ms per inline completion request

    def add(self, other: Tally) -> None:
        self.typed += other.typed
        self.indented += other.indented
        self.saved += other.saved
        self.shown += other.shown
        self.accepted += other.accepted
        self.latencies += other.latencies


class Typist:
    """One open document and its cursor; every insertion is one didChange at the cursor.
    Columns count code points, which are UTF-16 units here: the typed function is ASCII."""

    def __init__(self, client: LanguageClient, uri: str, text: str, cursor: int) -> None:
        self.client = client
        self.uri = uri
        self.version = 1
        self.line = text.count("\n", 0, cursor)
        self.column = cursor - (text.rfind("\n", 0, cursor) + 1)
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )

    def insert(self, text: str) -> None:
        self.version += 1
        here = types.Position(line=self.line, character=self.column)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.version
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=here, end=here), text=text
                    )
                ],
            )
        )
        if "\n" in text:
            self.line += text.count("\n")
            self.column = len(text) - text.rfind("\n") - 1
        else:
            self.column += len(text)

    async def ask(self) -> tuple[types.InlineCompletionItem | None, float]:
        """The first inline completion item at the cursor (None when none) and the ms it took."""
        started = time.perf_counter()
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri),
                position=types.Position(line=self.line, character=self.column),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        elapsed = (time.perf_counter() - started) * 1000
        items = result.items if isinstance(result, types.InlineCompletionList) else result or []
        return (items[0] if items else None), elapsed

    def close(self) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri)
            )
        )


def _text_of(item: types.InlineCompletionItem | None) -> str:
    if item is None:
        return ""
    return item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value


async def replay(
    client: LanguageClient, fn: Function, root: Path
) -> tuple[Tally, list[tuple[int, str, float]]]:
    """Type `fn`'s body back; the tally, and each answer as (body offset, suggestion, ms)."""
    tally, answers = Tally(), []
    typist = Typist(client, (root / fn.path).as_uri(), fn.document, fn.start)
    body, done = fn.body, 0
    while done < len(body):
        item, ms = await typist.ask()
        tally.latencies.append(ms)
        suggestion = _text_of(item)
        answers.append((done, suggestion, round(ms, 1)))
        tally.shown += bool(suggestion)
        if suggestion and body.startswith(suggestion, done):
            typist.insert(suggestion)
            done += len(suggestion)
            tally.saved += len(suggestion)
            tally.accepted += 1
            if item is not None and item.command is not None:
                await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(
                        command=item.command.command, arguments=item.command.arguments
                    )
                )
            continue
        keystroke = body[done]
        if keystroke == "\n":
            next_line = body[done + 1 :].split("\n", 1)[0]
            indent = next_line[: len(next_line) - len(next_line.lstrip(" "))]
            keystroke += indent
            tally.indented += len(indent)
        typist.insert(keystroke)
        done += len(keystroke)
        tally.typed += 1
    typist.close()
    return tally, answers


# ---- phases ------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    tally: Tally
    per_function: list[dict[str, Any]]
    server_accepted: int  # acceptances the server counted (from the items' commands)
    index_before: dict[str, Any] | None = None
    index_after: dict[str, Any] | None = None

    @property
    def still_embedding(self) -> bool:
        after = self.index_after or {}
        return (
            after.get("state") in ("indexing", "embedding")
            and after.get("pendingEmbeddings", 0) > 0
        )


def fresh_cache(cache: Path) -> None:
    """A cache dir where the index starts cold and nothing else does (links, no copies)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lowentropy"
    target = cache / "lowentropy"
    target.mkdir(parents=True)
    for entry in base.iterdir():
        if entry.name != "index":
            (target / entry.name).symlink_to(entry)


@contextlib.contextmanager
def cache_home(cache: Path) -> Iterator[None]:
    """XDG_CACHE_HOME for the servers started inside (they inherit this environment)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        yield
    finally:
        if old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old


def vendor_copy(root: Path) -> int:
    """Copy the standard library's Python files (tests included, site-packages not) under
    `vendor_copy/`: ~1800 files, far more embedding than a replay lasts on 2 cores (seven
    packages, ~3000 chunks, were embedded within one function's replay)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    count = 0
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        if VENDOR_SKIPPED.intersection(relative.parts):
            continue
        target = root / "vendor_copy" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        count += 1
    return count


async def backend_loaded(client: LanguageClient) -> None:
    """Until the server has loaded its Tab backend (not waiting for the index)."""
    deadline = time.monotonic() + BACKEND_TIMEOUT_S
    while not (await stats(client)).backends:
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not load its Tab backend")
        await asyncio.sleep(0.1)


async def index_status(client: LanguageClient) -> dict[str, Any]:
    status = await client.protocol.send_request_async("lowentropy/indexStatus", {})
    return {k: getattr(status, k, None) for k in ("state", "files", "chunks", "pendingEmbeddings")}


async def run_phase(
    name: str,
    functions: list[Function],
    model: Path,
    completion: dict[str, Any] | None = None,
    threads: int | None = None,
) -> PhaseResult:
    busy = name == "busy"
    with tempfile.TemporaryDirectory(prefix=f"lowentropy-typing-{name}-") as tmp:
        root, cache = Path(tmp) / "workspace", Path(tmp) / "cache"
        for fn in functions:
            path = root / fn.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(fn.document, encoding="utf-8")
        if busy:
            print(f"busy: {vendor_copy(root)} Python files copied under vendor_copy/")
        fresh_cache(cache)
        options: dict[str, Any] = {"tab": {"modelPath": str(model)}, "index": {"enabled": busy}}
        if completion:
            options["completion"] = completion
        if threads:
            options["tab"]["nThreads"] = threads
        with cache_home(cache):
            async with server(root, options) as client:
                result = await _replay_all(name, client, functions, root, busy)
    return result


async def _replay_all(
    name: str, client: LanguageClient, functions: list[Function], root: Path, busy: bool
) -> PhaseResult:
    if busy:
        await backend_loaded(client)
    else:
        await wait_ready(client)
    before = await index_status(client) if busy else None
    if before is not None:
        print(f"busy: index at the start of the replay: {before}")
    tally, per_function = Tally(), []
    for n, fn in enumerate(functions, 1):
        started = time.perf_counter()
        one, answers = await replay(client, fn, root)
        tally.add(one)
        per_function.append(
            {"path": fn.path, "name": fn.name, "body": fn.body, **asdict(one), "answers": answers}
        )
        print(
            f"{name} {n}/{len(functions)} {fn.path}:{fn.name}: saved {one.saved}/{len(fn.body)}, "
            f"{one.accepted} accepted of {one.shown} shown, {time.perf_counter() - started:.0f} s"
        )
    after = await index_status(client) if busy else None
    server_accepted = (await stats(client)).tab.accepted
    return PhaseResult(name, tally, per_function, server_accepted, before, after)


# ---- report ------------------------------------------------------------------------------------


def summarize(result: PhaseResult, total_chars: int) -> None:
    t = result.tally
    lat = t.latencies
    print(
        f"\n{result.name}: saved {t.saved}/{total_chars} characters ({100 * t.saved / total_chars:.1f}%); "
        f"typed {t.typed} keystrokes (+{t.indented} auto-indent characters); "
        f"accepted {t.accepted} of {t.shown} shown ({100 * t.accepted / max(1, t.shown):.1f}%); "
        f"server counted {result.server_accepted} acceptances"
    )
    print(
        f"  {len(lat)} requests: p50 {pct(lat, 0.5):.0f} ms, p95 {pct(lat, 0.95):.0f} ms, "
        f"p99 {pct(lat, 0.99):.0f} ms; over 1 s: {sum(ms > 1000 for ms in lat)}, "
        f"over 5 s: {sum(ms > 5000 for ms in lat)}"
    )
    if result.index_after is not None:
        print(
            f"  index at the end of the replay: {result.index_after} "
            f"({'still embedding' if result.still_embedding else 'NOT busy any more'}); "
            f"embedded during the replay: {_embedded(result.index_after) - _embedded(result.index_before)} chunks"
        )


def _embedded(status: dict[str, Any] | None) -> int:
    """Chunks with a vector, from an indexStatus snapshot."""
    if not status:
        return 0
    return int(status.get("chunks") or 0) - int(status.get("pendingEmbeddings") or 0)


def bars(results: dict[str, PhaseResult], total_chars: int) -> bool:
    ok: list[bool] = []
    if "idle" in results:
        saved = results["idle"].tally.saved / total_chars
        ok.append(verdict("idle: saved >= 25%", saved >= SAVED_BAR, f"{100 * saved:.1f}%"))
    for name, result in results.items():
        p95, p99 = pct(result.tally.latencies, 0.95), pct(result.tally.latencies, 0.99)
        ok.append(verdict(f"{name}: p95 <= 1.5 s", p95 <= P95_BAR_MS, f"{p95:.0f} ms"))
        ok.append(verdict(f"{name}: p99 <= 3 s", p99 <= P99_BAR_MS, f"{p99:.0f} ms"))
    if "busy" in results:
        busy = results["busy"]
        ok.append(
            verdict(
                "busy: the index was still embedding when the replay ended",
                busy.still_embedding,
                f"{busy.index_after}",
            )
        )
    if "idle" in results and "busy" in results:
        idle_p95 = pct(results["idle"].tally.latencies, 0.95)
        busy_p95 = pct(results["busy"].tally.latencies, 0.95)
        ratio = busy_p95 / idle_p95 if idle_p95 else float("nan")
        ok.append(
            verdict(
                "busy/idle p95 <= 1.2",
                ratio <= BUSY_RATIO_BAR,
                f"{busy_p95:.0f} / {idle_p95:.0f} ms = {ratio:.2f}",
            )
        )
    return all(ok)


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--functions", type=int, default=6, help="functions to type (default 6)")
    parser.add_argument("--split", choices=SPLITS, default="heldout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="GGUF for the Tab role (default: the packaged model)")
    parser.add_argument("--phase", choices=("idle", "busy", "both"), default="both")
    parser.add_argument(
        "--context-tokens", type=int, help="completion.contextTokens (default: the server's)"
    )
    parser.add_argument("--threads", type=int, help="tab.nThreads (default: the server's)")
    parser.add_argument("--json", type=Path, help="write each phase's figures here")
    args = parser.parse_args()

    model = model_path(args.model)
    functions = pick_functions(args.split, args.functions, args.seed)
    total_chars = sum(len(fn.body) for fn in functions)
    print(
        f"model {model}; {len(functions)} functions ({args.split}), {total_chars} body characters: "
        + ", ".join(f"{fn.path}:{fn.name}" for fn in functions)
    )
    phases = ("idle", "busy") if args.phase == "both" else (args.phase,)
    started = time.perf_counter()
    completion = {"contextTokens": args.context_tokens} if args.context_tokens else None
    results = {
        name: await run_phase(name, functions, model, completion, args.threads) for name in phases
    }
    print(f"bench time {time.perf_counter() - started:.0f} s")
    for result in results.values():
        summarize(result, total_chars)
    if args.json:
        run = {
            "seed": args.seed,
            "split": args.split,
            "model": str(model),
            "phases": {name: asdict(result) for name, result in results.items()},
        }
        args.json.write_text(json.dumps(run, indent=1), encoding="utf-8")
    print()
    return 0 if bars(results, total_chars) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
