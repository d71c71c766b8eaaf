"""Speculative edits vs plain decoding: the apply rewrite on the embedded engine.

    python bench/apply_speculative.py [--cases N] [--faithful N] [--model PATH]

Same model (the packaged SmolLM2-135M-Instruct unless --model), same prompt
(`prompts.apply.apply_chat_request`, as the server sends it), greedy; the only
difference is the request's `prediction` (the original region). Cases are
functions of 20-80 lines from the standard library's own sources, each with a
small deterministic sketch edit (a rename, an added line, a changed
condition), taken in a fixed order until --faithful rewrites are found (where
the plain output keeps >= 90% of the original region's lines) or --cases run.

Each rewrite streams as the server's apply does: until the answer ends or the model
writes a line in neither the region nor the sketch (`DriftGuard`: verification would
refuse anything after it, so the server stops there; the tiny model often rambles on
after copying). Prints per case and in total: the time ratio plain/speculative (each run
after warming the prompt, so prefill is not timed), draft tokens accepted per
forward pass, and how often the two outputs are identical (batched and
one-by-one evaluation differ in a rare argmax, and a greedy output diverges
from there). Bars (issue 6): speculative >= 1.0x of plain over all rewrites,
>= 2.5x over the faithful ones.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import difflib
import io
import keyword
import os
import re
import sys
import sysconfig
import time
import tokenize
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).parent))

from harness import mean, verdict  # noqa: E402

from lowentropy.models.embedded import EmbeddedEngine, GenerationStats  # noqa: E402
from lowentropy.models.packaged import default_model_path  # noqa: E402
from lowentropy.models.types import ChatRequest  # noqa: E402
from lowentropy.prompts.apply import (  # noqa: E402
    OPEN_TAG,
    STOP,
    UpdatedCodeStream,
    apply_chat_request,
    parse_updated_code,
)
from lowentropy.server.apply import DriftGuard  # noqa: E402

MARKER = "# ... existing code ..."
FAITHFUL = 0.9


@attrs.frozen
class Case:
    name: str
    kind: str
    original: str
    expected: str
    sketch: str


def stdlib_functions(min_lines: int = 20, max_lines: int = 80) -> Iterator[tuple[str, str]]:
    """Functions of 20-80 lines from the top-level stdlib modules, in name order: the
    shortest of each module, then the second shortest of each, and so on (so a longer run
    keeps the cases of a shorter one, and no module dominates)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    per_module: list[list[tuple[str, str]]] = []
    for path in sorted(root.glob("*.py")):
        try:
            source = path.read_text("utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.splitlines(keepends=True)
        found: list[tuple[str, str]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                if min_lines <= node.end_lineno - node.lineno + 1 <= max_lines:
                    text = "".join(lines[node.lineno - 1 : node.end_lineno])
                    if "\t" not in text:
                        found.append((f"{path.name}:{node.lineno}", text))
        if found:
            # Shortest first: a tiny model copies a 20-line region faithfully far more
            # often than an 80-line one, and a run needs 20 faithful rewrites.
            per_module.append(sorted(found, key=lambda f: (f[1].count("\n"), f[0])))
    for round_ in range(max(map(len, per_module), default=0)):
        for found in per_module:
            if round_ < len(found):
                yield found[round_]


def _names(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
            counts[tok.string] = counts.get(tok.string, 0) + 1
    return counts


def rename(text: str) -> str | None:
    """Rename a local variable (assigned in the body, used 2-6 times)."""
    counts = _names(text)
    body = text.split("\n", 1)[1]
    assigned = set(re.findall(r"^\s+([a-z_][a-z0-9_]{2,})\s*=[^=]", body, re.M))
    candidates = sorted(n for n in assigned if 2 <= counts.get(n, 0) <= 6 and n != "self")
    if not candidates:
        return None
    old = candidates[0]
    return re.sub(rf"\b{re.escape(old)}\b", f"{old}_value", text)


def add_line(text: str) -> str | None:
    """Add a logging line after a plain statement in the latter two thirds."""
    lines = text.splitlines(keepends=True)
    for i in range(len(lines) // 3, len(lines) - 1):
        line = lines[i].rstrip()
        stripped = line.strip()
        if (
            not stripped
            or stripped.startswith(("#", '"', "'", "@", "return", "raise", "break", "continue"))
            or line.endswith((":", ",", "(", "[", "{", "\\"))
            or not lines[i + 1].strip()
        ):
            continue
        indent = line[: len(line) - len(line.lstrip())]
        new = f'{indent}_log.debug("checkpoint %d", {i})\n'
        return "".join([*lines[: i + 1], new, *lines[i + 1 :]])
    return None


def change_condition(text: str) -> str | None:
    """Negate the first one-line `if`/`elif`/`while` condition."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(if|elif|while) (.+):(\s*)$", line)
        if m:
            lines[i] = f"{m.group(1)}{m.group(2)} not ({m.group(3)}):{m.group(4)}"
            return "".join(lines)
    return None


EDITS: dict[str, Callable[[str], str | None]] = {
    "rename": rename,
    "add_line": add_line,
    "condition": change_condition,
}


def sketch_of(original: str, edited: str) -> str:
    """The edited lines with one line of context, the rest elided by markers."""
    a, b = original.splitlines(keepends=True), edited.splitlines(keepends=True)
    keep = {0}
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            keep.update(range(max(0, j1 - 1), min(len(b), max(j2, j1 + 1) + 1)))
    out: list[str] = []
    last = -1
    for j in sorted(keep):
        if j > last + 1:
            indent = b[j][: len(b[j]) - len(b[j].lstrip())]
            out.append(f"{indent}{MARKER}\n")
        out.append(b[j])
        last = j
    if last < len(b) - 1:
        indent = b[-1][: len(b[-1]) - len(b[-1].lstrip())]
        out.append(f"{indent}{MARKER}\n")
    return "".join(out)


def cases() -> Iterator[Case]:
    kinds = list(EDITS)
    i = 0
    for name, text in stdlib_functions():
        for k in range(len(kinds)):
            kind = kinds[(i + k) % len(kinds)]
            edited = EDITS[kind](text)
            if edited and edited != text:
                yield Case(name, kind, text, edited, sketch_of(text, edited))
                i += 1
                break


def kept_lines(original: str, output: str) -> float:
    """Share of the original's lines that the output keeps, in order."""
    a, b = original.splitlines(), output.splitlines()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(1, len(a))


@attrs.define
class Run:
    text: str
    seconds: float
    stats: GenerationStats
    stopped: bool = False  # cut at a line in neither region nor sketch


async def generate(engine: EmbeddedEngine, req: ChatRequest, case: Case) -> Run:
    """One rewrite as the server runs it: streamed until the answer ends or the model
    writes a line in neither the region nor the sketch (`DriftGuard`: the server stops
    there, since verification would refuse anything after it)."""
    await collect_warm(engine, req)
    started = time.perf_counter()
    stream = engine.stream_chat(req)
    code, guard = UpdatedCodeStream(), DriftGuard(case.original, case.sketch)
    pieces: list[str] = []
    async for piece in stream:
        pieces.append(piece)
        if guard.feed(code.feed(piece)):
            await stream.aclose()
            break
    seconds = time.perf_counter() - started
    text = f"{OPEN_TAG}\n{guard.code}{STOP}" if guard.stopped else "".join(pieces)
    return Run(text, seconds, stream.stats, guard.stopped)


async def collect_warm(engine: EmbeddedEngine, req: ChatRequest) -> None:
    # One token of the same request: its prompt is then in the KV cache.
    warm = attrs.evolve(req, max_tokens=1, prediction=None)
    async for _ in engine.stream_chat(warm):
        pass


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=150, help="most cases to run")
    parser.add_argument("--faithful", type=int, default=20, help="stop after this many faithful")
    parser.add_argument("--model", default=None, help="a GGUF path (default: packaged SmolLM2)")
    args = parser.parse_args()
    engine = EmbeddedEngine.shared(args.model or str(default_model_path()))
    tok = engine.tokenizer()
    print(f"model {engine.name}, load average {os.getloadavg()[0]:.2f} at start")
    rows: list[tuple[Case, Run, Run, float]] = []
    try:
        for n, case in enumerate(cases()):
            if n >= args.cases or sum(r[3] >= FAITHFUL for r in rows) >= args.faithful:
                break
            req = apply_chat_request(case.original, case.sketch, language="python")
            # Room for the region and a bit: a drifting model runs on otherwise.
            budget = int(tok.count(req.prediction or "") * 1.3) + 48
            req = attrs.evolve(req, max_tokens=budget)
            plain_req = attrs.evolve(req, prediction=None)
            # Alternate the order so a drift in machine load hits both sides alike.
            if n % 2:
                spec = await generate(engine, req, case)
                plain = await generate(engine, plain_req, case)
            else:
                plain = await generate(engine, plain_req, case)
                spec = await generate(engine, req, case)
            kept = kept_lines(case.original, parse_updated_code(plain.text, case.original))
            rows.append((case, plain, spec, kept))
            s = spec.stats
            print(
                f"{case.name:28} {case.kind:9} kept {kept:4.0%} "
                f"plain {plain.seconds:5.2f}s {plain.stats.tokens:4d} tok | "
                f"spec {spec.seconds:5.2f}s {s.tokens:4d} tok {s.forward_passes:4d} passes "
                f"{s.accepted_draft_tokens:4d}/{s.draft_tokens:<4d} drafts | "
                f"x{plain.seconds / spec.seconds:4.2f} {'same' if plain.text == spec.text else 'DIFF'}"
                f"{' cut' if plain.stopped or spec.stopped else ''}",
                flush=True,
            )
    finally:
        await engine.aclose()
    faithful = [r for r in rows if r[3] >= FAITHFUL]

    def ratio(sel: list[tuple[Case, Run, Run, float]]) -> float:
        spec_s = sum(r[2].seconds for r in sel)
        return sum(r[1].seconds for r in sel) / spec_s if spec_s else float("nan")

    def per_pass(sel: list[tuple[Case, Run, Run, float]]) -> str:
        acc = sum(r[2].stats.accepted_draft_tokens for r in sel)
        prop = sum(r[2].stats.draft_tokens for r in sel)
        passes = sum(r[2].stats.forward_passes for r in sel)
        toks = sum(r[2].stats.tokens for r in sel)
        return (
            f"{acc / max(1, passes):.2f} accepted draft tokens per forward pass "
            f"({toks / max(1, passes):.2f} tokens per pass; {acc}/{prop} drafts accepted)"
        )

    same = sum(r[1].text == r[2].text for r in rows)
    same_f = sum(r[1].text == r[2].text for r in faithful)
    print()
    print(f"rewrites: {len(rows)}, faithful (plain keeps >= 90% of lines): {len(faithful)}")
    print(f"all:      x{ratio(rows):.2f}  {per_pass(rows)}")
    print(f"faithful: x{ratio(faithful):.2f}  {per_pass(faithful)}")
    for label, sel in (("all", rows), ("faithful", faithful)):
        plain_rate = sum(r[1].stats.tokens for r in sel) / max(sum(r[1].seconds for r in sel), 1e-9)
        spec_rate = sum(r[2].stats.tokens for r in sel) / max(sum(r[2].seconds for r in sel), 1e-9)
        print(
            f"tokens/s ({label}): plain {plain_rate:.1f}, speculative {spec_rate:.1f}; "
            f"seconds a rewrite: plain {mean([r[1].seconds for r in sel]):.2f}, "
            f"speculative {mean([r[2].seconds for r in sel]):.2f}"
        )
    print(
        f"identical outputs: {same}/{len(rows)} overall, {same_f}/{len(faithful)} faithful "
        "(a differing output has met a batched-vs-one-by-one argmax flip)"
    )
    print(f"mean kept lines (plain): {mean([r[3] for r in rows]):.0%}")
    print(
        f"load average {os.getloadavg()[0]:.2f} at end (the machine is shared: timings are noisy)"
    )
    ok = verdict(
        "speculative vs plain, all rewrites", ratio(rows) >= 1.0, f"x{ratio(rows):.2f} >= 1.0"
    )
    ok &= verdict(
        "speculative vs plain, faithful rewrites",
        ratio(faithful) >= 2.5,
        f"x{ratio(faithful):.2f} >= 2.5 over {len(faithful)} rewrites",
    )
    ok &= verdict("faithful rewrites found", len(faithful) >= 20, f"{len(faithful)} >= 20")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
