"""Next-edit benchmark: real history hunk pairs, scripted edits over real standard-library files.

    python bench/next_edit.py [--history N] [--only history,scripted] [--files N] [--cases N] [--git N]

History (issue 15's bars; bench/next_edit_history.py): pairs of hunks of one file
in one commit of structlog, marshmallow and itsdangerous (bench/next_edit_cases.py),
edit 1 made, edit 2 expected; `--history` cases per split (dev and the held-aside
part, which was never used to fit or tune), knowable and unknowable alike. Location,
exact, suggestion rate on unknowable cases, latency (client round trip and the
server's location step), candidate recall, and the peer "repeat edit 1's
substitution" in the same run.

Drives the real server (embedded engine) over LSP. Each case makes one edit like
a user would, asks `lowentropy/nextEdit` at the end of it and compares the
answer with the edit a careful user makes next:
- rename: a function's local variable renamed at its first binding -> its next use;
- delete-arg: the last argument removed from one call -> the next call with that arity;
- cross-file: a required parameter added to a function of the stdlib `email` package
  -> a call of it in another file of the package is the jump target;
- git: a one-identifier substitution that this repository's history repeated within
  one file and commit (`git log -p`), the first applied -> the second.
Figures: location hit rate (the edit or jump within 3 lines), exact edit rate (the
document after the edit equals the expected one), cross-file jump hit rate, latency
p50/p99 (client round trip), and p50 of the answers that came from propagation alone.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types

sys.path.insert(0, str(Path(__file__).parent))

from harness import pct, server, stdlib_file, verdict, wait_ready  # noqa: E402
from next_edit_cases import build  # noqa: E402
from next_edit_history import baseline, recall, summarize  # noqa: E402
from next_edit_history import run_case as run_history_case  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FILES = ["textwrap.py", "shlex.py", "argparse.py", "difflib.py", "configparser.py", "ftplib.py",
         "calendar.py", "smtplib.py", "tarfile.py", "zipfile.py"]  # fmt: skip
_IDENT = re.compile(r"[A-Za-z_]\w*")


class Case:
    def __init__(self, kind: str, text: str, edit: tuple[int, int, str], expected_next: tuple[int, int, str]
                 | None, expected_line: int, expected_uri: str | None = None) -> None:  # fmt: skip
        self.kind, self.text, self.edit = kind, text, edit
        self.expected_next = expected_next  # (start, end, new) in the text after `edit`
        self.expected_line = expected_line
        self.expected_uri = expected_uri


def rename_cases(text: str, limit: int) -> list[Case]:
    out: list[Case] = []
    tree = ast.parse(text)
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or len(out) >= limit:
            continue
        names: dict[str, list[ast.Name]] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Name):
                names.setdefault(node.id, []).append(node)
        for name, uses in names.items():
            uses.sort(key=lambda n: (n.lineno, n.col_offset))
            if len(uses) < 3 or not isinstance(uses[0].ctx, ast.Store) or len(name) < 3:
                continue
            first, second = uses[0], uses[1]
            a = starts[first.lineno - 1] + first.col_offset
            b = starts[second.lineno - 1] + second.col_offset
            if text[a : a + len(name)] != name or text[b : b + len(name)] != name:
                continue  # non-ASCII columns: skip
            new = name + "_v2"
            shift = len(new) - len(name)
            out.append(Case("rename", text, (a, a + len(name), new),
                            (b + shift, b + shift + len(name), new), second.lineno - 1))  # fmt: skip
            break
    return out


def delete_arg_cases(text: str, limit: int) -> list[Case]:
    out: list[Case] = []
    tree = ast.parse(text)
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    calls: dict[tuple[str, int], list[ast.Call]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2 \
                and not node.keywords and all(a.end_lineno == a.lineno == node.lineno for a in node.args):  # fmt: skip
            calls.setdefault((node.func.id, len(node.args)), []).append(node)
    for (_, _), group in calls.items():
        if len(group) < 2 or len(out) >= limit:
            continue
        group.sort(key=lambda n: (n.lineno, n.col_offset))
        c1, c2 = group[0], group[1]
        if c1.lineno == c2.lineno:
            continue

        def span(call: ast.Call) -> tuple[int, int]:
            prev, last = call.args[-2], call.args[-1]
            base = starts[call.lineno - 1]
            assert prev.end_col_offset is not None and last.end_col_offset is not None
            return base + prev.end_col_offset, base + last.end_col_offset

        s1, e1 = span(c1)
        s2, e2 = span(c2)
        if not text[s1:e1].startswith(","):
            continue
        shift = -(e1 - s1)
        out.append(
            Case("delete-arg", text, (s1, e1, ""), (s2 + shift, e2 + shift, ""), c2.lineno - 1)
        )
    return out


def git_cases(limit: int) -> list[tuple[str, Case]]:
    """One-identifier substitutions repeated within one file and commit of this repo."""
    log = subprocess.run(["git", "-C", str(REPO), "log", "-p", "--unified=0", "--format=@@commit %H",
                          "--", "*.py"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    out: list[tuple[str, Case]] = []
    commit = path = ""
    minus: list[str] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for line in log.splitlines():
        if line.startswith("@@commit "):
            commit = line.split()[1]
        elif line.startswith("+++ b/"):
            path = line[6:]
        elif line.startswith("-") and not line.startswith("---"):
            minus.append(line[1:])
        elif line.startswith("+") and not line.startswith("+++") and minus:
            old = minus.pop(0)
            a, b = _IDENT.findall(old), _IDENT.findall(line[1:])
            if len(a) == len(b):
                diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
                if len(diff) == 1 and old.replace(diff[0][0], diff[0][1]) == line[1:]:
                    key = (commit, path, *diff[0])
                    seen[key] = seen.get(key, 0) + 1
        elif line.startswith("@@ "):
            minus = []
    for (c, p, old, new), n in seen.items():
        if n < 2 or len(out) >= limit:
            continue
        shown = subprocess.run(["git", "-C", str(REPO), "show", f"{c}^:{p}"], capture_output=True,
                               text=True)  # fmt: skip
        if shown.returncode != 0:
            continue
        text = shown.stdout
        hits = [m.start() for m in re.finditer(rf"(?<!\w){re.escape(old)}(?!\w)", text)]
        if len(hits) < 2:
            continue
        a, b = hits[0], hits[1]
        shift = len(new) - len(old)
        out.append((p, Case("git", text, (a, a + len(old), new), (b + shift, b + shift + len(old), new),
                            text.count("\n", 0, b))))  # fmt: skip
    return out


def position(text: str, offset: int) -> dict[str, int]:
    line = text.count("\n", 0, offset)
    return {"line": line, "character": offset - (text.rfind("\n", 0, offset) + 1)}


def offset_of(text: str, pos: Any) -> int:
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return starts[pos.line] + pos.character


async def run_case(client: Any, uri: str, case: Case) -> dict[str, Any]:
    text = case.text
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=text)))  # fmt: skip
    s, e, new = case.edit
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(**position(text, s)),
                              end=types.Position(**position(text, e))), text=new)]))  # fmt: skip
    after = text[:s] + new + text[e:]
    before = await client.protocol.send_request_async("lowentropy/nextEditStats", {})
    t0 = time.perf_counter()
    result = await client.protocol.send_request_async("lowentropy/nextEdit", {
        "textDocument": {"uri": uri, "version": 2}, "position": position(after, s + len(new))})  # fmt: skip
    ms = (time.perf_counter() - t0) * 1000
    stats = await client.protocol.send_request_async("lowentropy/nextEditStats", {})
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))  # fmt: skip
    hit = exact = jump_hit = False
    if result.edits:
        edit = result.edits[0]
        if edit.textDocument.uri == uri:
            start = offset_of(after, edit.range.start)
            end = offset_of(after, edit.range.end)
            hit = abs(edit.range.start.line - case.expected_line) <= 3
            if case.expected_next is not None:
                xs, xe, xn = case.expected_next
                exact = after[:start] + edit.text + after[end:] == after[:xs] + xn + after[xe:]
    if result.jump is not None and case.expected_uri is not None:
        jump_hit = result.jump.uri == case.expected_uri and abs(
            result.jump.range.start.line - case.expected_line) <= 3  # fmt: skip
        hit = hit or jump_hit
    return {"hit": hit, "exact": exact, "jump": jump_hit, "ms": ms,
            "model": stats.modelCalls > before.modelCalls}  # fmt: skip


def cross_file_cases(root: Path, limit: int) -> list[tuple[str, Case]]:
    """email package: add a required parameter to a top-level function called in another file."""
    out: list[tuple[str, Case]] = []
    files = sorted(root.glob("*.py"))
    for f in files:
        text = f.read_text(encoding="utf-8")
        for fn in ast.parse(text).body:
            if not isinstance(fn, ast.FunctionDef) or len(out) >= limit:
                continue
            # Calls in the function's own file come first (they are wrong too, and nearer):
            # a cross-file case needs a function its own file does not call.
            if re.search(rf"(?<!def )(?<![\w.]){fn.name}\(", text):
                continue
            for g in files:
                if g == f:
                    continue
                other = g.read_text(encoding="utf-8")
                # Only a call of this very function: `fn(` with `fn` imported by name, or
                # `module.fn(` with its module imported.
                stem = f.stem
                m = None
                if re.search(rf"import[^\n]*\b{fn.name}\b", other):
                    m = re.search(rf"(?<!def )(?<![\w.]){fn.name}\(", other)
                if m is None and re.search(rf"import[^\n]*\b{stem}\b", other):
                    m = re.search(rf"(?<![\w.]){stem}\.{fn.name}\(", other)
                if m is None:
                    continue
                line = other.count("\n", 0, m.start())
                head = text.index(f"def {fn.name}(")
                close = text.index(")", head)
                out.append((f.name, Case("cross-file", text, (close, close, ", extra_arg"), None, line,
                                         g.resolve().as_uri())))  # fmt: skip
                break
    return out


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=len(FILES))
    ap.add_argument("--cases", type=int, default=4, help="cases per kind per file")
    ap.add_argument("--git", type=int, default=20)
    ap.add_argument("--history", type=int, default=400, help="history cases per split (all: 400)")
    ap.add_argument("--only", default="history,scripted", help="sections: history,scripted")
    ap.add_argument("--splits", default="dev,heldout", help="history splits to run (tuning: dev)")
    args = ap.parse_args()
    sections = set(args.only.split(","))
    ok = True
    if "history" in sections:
        ok &= await history_section(args.history, args.splits.split(","))
    if "scripted" in sections:
        ok &= await scripted_section(args)
    return 0 if ok else 1


def _spread(cases: list[Any], n: int) -> list[Any]:
    """`n` cases spread over the list (every k-th), so each repository is represented."""
    if len(cases) <= n:
        return cases
    step = len(cases) / n
    return [cases[int(i * step)] for i in range(n)]


async def history_section(per_split: int, splits: list[str]) -> bool:
    cases = build()
    parts = {s: _spread([c for c in cases if c.split == s], per_split) for s in splits}
    tmp = Path(tempfile.mkdtemp(prefix="lowentropy-next-edit-history-"))
    options = {"completion": {"prefetch": False, "warmDelayMs": -1}, "index": {"enabled": False}}
    rows: dict[str, list[tuple[Any, dict[str, Any]]]] = {s: [] for s in splits}
    try:
        async with server(tmp, options) as client:
            await wait_ready(client)
            warm = [c for c in cases if c.split == "dev"][-3:]  # the model loads on first use
            for i, case in enumerate(warm):
                await run_history_case(client, (tmp / f"warm{i}.py").as_uri(), case)
            for split, part in parts.items():
                for i, case in enumerate(part):
                    uri = (tmp / split / f"case{i}.py").as_uri()
                    rows[split].append((case, await run_history_case(client, uri, case)))
            final = await client.protocol.send_request_async("lowentropy/nextEditStats", {})
            print(f"server: model calls {final.modelCalls}, kept {final.modelKept}, late "
                  f"{final.modelLate}; jumps {final.jumps}, silent {final.silent}, "
                  f"propagated {final.propagated}")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = True
    for split in splits:
        know = [(c, r) for c, r in rows[split] if not c.unknowable]
        unk = [(c, r) for c, r in rows[split] if c.unknowable]
        ours = [r for _, r in know]
        peer = [baseline(c) for c, _ in know]
        peer_unk = [baseline(c) for c, _ in unk]
        rec = [recall(c) for c, _ in know]
        ms = [r["ms"] for _, r in rows[split]]
        loc_ms = [r["locate_ms"] for _, r in rows[split] if r["locate_ms"] == r["locate_ms"]]
        name = "held-aside" if split == "heldout" else split
        print(f"history {name}: {len(rows[split])} cases ({len(know)} knowable, {len(unk)} unknowable) "
              f"from {len({c.commit for c, _ in rows[split]})} commits")  # fmt: skip
        print(f"  ours: location {summarize(ours, 'hit'):.1%}  exact {summarize(ours, 'exact'):.1%}  "
              f"shown {summarize(ours, 'shown'):.1%} (with an edit {summarize(ours, 'edit'):.1%})  "
              f"unknowable shown {summarize([r for _, r in unk], 'shown'):.1%}")  # fmt: skip
        print(f"  peer (repeat edit 1's substitution): location {summarize(peer, 'hit'):.1%}  "
              f"exact {summarize(peer, 'exact'):.1%}  shown {summarize(peer, 'shown'):.1%}  "
              f"unknowable shown {summarize(peer_unk, 'shown'):.1%}")  # fmt: skip
        ratio = summarize(ours, "hit") / max(summarize(peer, "hit"), 1e-9)
        print(f"  location ours/peer: {ratio:.1f}x")
        print(f"  candidate recall (knowable, within 3 lines): any {summarize(rec, 'any'):.1%}  "
              f"nearest-5 {summarize(rec, 'nearest5'):.1%}  ranker top-5 {summarize(rec, 'top5'):.1%}  "
              f"ranker top-1 {summarize(rec, 'top1'):.1%}")  # fmt: skip
        print(f"  latency (client round trip, all cases): p50 {pct(ms, 0.5):.0f} ms  "
              f"p95 {pct(ms, 0.95):.0f} ms;  location step p50 {pct(loc_ms, 0.5):.1f} ms  "
              f"p95 {pct(loc_ms, 0.95):.1f} ms")  # fmt: skip
        model_ms = [r["ms"] for _, r in rows[split] if r["model"]]
        print(f"  requests that asked the model: {len(model_ms)}, p50 {pct(model_ms, 0.5):.0f} ms")
        if split != "heldout":
            continue
        unk_shown = summarize([r for _, r in unk], "shown")
        ok &= verdict("held-aside location >= 35%", summarize(ours, "hit") >= 0.35,
                      f"{summarize(ours, 'hit'):.1%}")  # fmt: skip
        ok &= verdict("held-aside exact >= 12%", summarize(ours, "exact") >= 0.12,
                      f"{summarize(ours, 'exact'):.1%}")  # fmt: skip
        ok &= verdict("p50 < 500 ms", pct(ms, 0.5) < 500, f"{pct(ms, 0.5):.0f} ms")
        ok &= verdict("p95 < 1.5 s", pct(ms, 0.95) < 1500, f"{pct(ms, 0.95):.0f} ms")
        ok &= verdict("location alone p50 < 100 ms", pct(loc_ms, 0.5) < 100,
                      f"{pct(loc_ms, 0.5):.1f} ms")  # fmt: skip
        ok &= verdict("suggestion shown in <= 30% of unknowable cases", unk_shown <= 0.30,
                      f"{unk_shown:.1%}")  # fmt: skip
        print(f"top-5 candidate recall (held-aside, reported): {summarize(rec, 'top5'):.1%}")
    return ok


async def scripted_section(args: Any) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="lowentropy-next-edit-"))
    try:
        pkg = tmp / "email"
        shutil.copytree(stdlib_file("email"), pkg, ignore=shutil.ignore_patterns("__pycache__"))
        scripted: list[tuple[str, Case]] = []
        for name in FILES[: args.files]:
            text = stdlib_file(name).read_text(encoding="utf-8")
            scripted += [(name, c) for c in rename_cases(text, args.cases)]
            scripted += [(name, c) for c in delete_arg_cases(text, args.cases)]
        cross = cross_file_cases(pkg, 8)
        history = git_cases(args.git)
        options = {
            "completion": {"prefetch": False, "warmDelayMs": -1},
            "index": {"enabled": False},
        }
        results: dict[str, list[dict[str, Any]]] = {"scripted": [], "cross": [], "git": []}
        async with server(tmp, options) as client:
            await wait_ready(client)
            for group, cases, where in (("scripted", scripted, tmp / "scripted"),
                                        ("cross", cross, pkg), ("git", history, tmp / "git")):  # fmt: skip
                for name, case in cases:
                    uri = (
                        (where / name.replace("/", "_")).as_uri()
                        if group != "cross"
                        else (where / name).as_uri()
                    )
                    results[group].append(await run_case(client, uri, case))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def rate(rows: list[dict[str, Any]], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows) if rows else float("nan")

    s, c, g = results["scripted"], results["cross"], results["git"]
    prop_ms = [r["ms"] for r in s + c + g if not r["model"]]
    all_ms = [r["ms"] for r in s + c + g]
    print(f"scripted propagation cases: {len(s)} ({sum(1 for _, x in scripted if x.kind == 'rename')} rename, "
          f"{sum(1 for _, x in scripted if x.kind == 'delete-arg')} delete-arg) from {args.files} stdlib files")  # fmt: skip
    print(
        f"  location hit rate (within 3 lines): {rate(s, 'hit'):.1%}   exact edit rate: {rate(s, 'exact'):.1%}"
    )
    print(
        f"cross-file cases (stdlib email package): {len(c)}   jump hit rate: {rate(c, 'jump'):.1%}"
    )
    print(f"git-history cases (this repo): {len(g)}   location hit rate: {rate(g, 'hit'):.1%}   "
          f"exact: {rate(g, 'exact'):.1%}")  # fmt: skip
    print(f"latency, all answers: p50 {pct(all_ms, 0.5):.1f} ms  p99 {pct(all_ms, 0.99):.1f} ms "
          f"({sum(r['model'] for r in s + c + g)} used the model)")  # fmt: skip
    print(
        f"latency, propagation-only answers: p50 {pct(prop_ms, 0.5):.1f} ms  p99 {pct(prop_ms, 0.99):.1f} ms"
    )
    ok = verdict(
        "location hit rate >= 60% (scripted, earlier bar)",
        rate(s, "hit") >= 0.6,
        f"{rate(s, 'hit'):.1%}",
    )
    ok &= verdict(
        "exact edit rate >= 40% (scripted, earlier bar)",
        rate(s, "exact") >= 0.4,
        f"{rate(s, 'exact'):.1%}",
    )
    ok &= verdict(
        "propagation-only latency p50 < 20 ms (earlier bar)",
        pct(prop_ms, 0.5) < 20,
        f"{pct(prop_ms, 0.5):.1f} ms",
    )
    return ok


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
