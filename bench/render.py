"""Tab prompt render cost on the keystroke path: a scripted typing session.

Types into the standard library's argparse.py (~2600 lines, real code) at several
places, the way an editor sends it to the server: a jump to a place, then Enter
(an auto-indented new line), a 40-60 character line typed one character at a
time, Enter and a second line, then a click a few lines up and a word typed in
the middle of an existing line. Each keystroke renders the Tab prompt with one
long-lived `Renderer` per run over SmolLM2's vocabulary, as the server does
(`render_tab_inputs(inputs, template=..., count=tokenizer.count, renderer=...)`).

Prints, per template and budget: render time p50/p99/max over keystrokes (Enter
and clicks included; the first render after a jump, which meets a cold cache, is
reported apart) as the rendering thread's CPU time, which other processes on a
shared machine do not inflate (wall-clock p50/p99 beside it), the prefix reuse between consecutive keystrokes on one line
(shared leading tokens / prompt tokens), and whether every prompt's real token
count equals the reported one and fits `budget - reserve`. PASS/FAIL against the
targets: p50 < 1 ms, p99 < 3 ms at budget 1024 and < 6 ms at 4096, mean reuse
>= 95% with at most one window move per typed line, every budget exact.

Usage: python bench/render.py [--templates plain,qwen] [--budgets 1024,4096]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

from lowentropy.models.llama_tokenizer import LlamaTokenizer
from lowentropy.models.packaged import default_model_path
from lowentropy.prompts import Renderer, TabInputs, get_template, render_tab_inputs

RESERVE = 64
P50_MS = 1.0
P99_MS = {1024: 3.0, 4096: 6.0}
REUSE = 0.95
MOVE = 0.5  # a keystroke sharing less than this moved the window's top (a KV cache miss)
PATH = "Lib/argparse.py"


@dataclass
class Keystroke:
    text: str
    offset: int
    kind: str  # "jump" (cold), "type", "enter", "click"
    line_id: int  # keystrokes typed on one line share an id; -1 for none


@dataclass
class Run:
    times_ms: list[float] = field(default_factory=list)  # CPU time of this thread
    wall_ms: list[float] = field(default_factory=list)
    jump_ms: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    moves_per_line: dict[int, int] = field(default_factory=dict)
    inexact: int = 0
    over: int = 0


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _pick_line(lines: list[str], start: int) -> str:
    """A real line of 40-60 characters (stripped) at or after `start`, to retype."""
    for line in lines[start:] + lines:
        if 40 <= len(line.strip()) <= 60:
            return line.strip()
    raise RuntimeError("no line of 40-60 characters")


def session(src: str) -> list[Keystroke]:
    """The scripted keystrokes, each with the document text it produces."""
    out: list[Keystroke] = []
    line_id = 0
    lines = src.split("\n")
    n = len(lines)
    for place in (0.12, 0.27, 0.41, 0.56, 0.7, 0.86):
        text = src
        at = int(n * place)
        all_lines = text.split("\n")
        # Jump: the cursor lands at the end of line `at` (a cold render).
        offset = sum(len(x) + 1 for x in all_lines[: at + 1]) - 1
        out.append(Keystroke(text, offset, "jump", -1))
        indent = _indent(all_lines[at]) or _indent(all_lines[at + 1])
        for typed in (_pick_line(all_lines, at + 7), _pick_line(all_lines, at + 40)):
            # Enter: a new auto-indented line under the cursor.
            text = text[:offset] + "\n" + indent + text[offset:]
            offset += 1 + len(indent)
            out.append(Keystroke(text, offset, "enter", -1))
            for ch in typed:
                text = text[:offset] + ch + text[offset:]
                offset += 1
                out.append(Keystroke(text, offset, "type", line_id))
            line_id += 1
        # Click three lines up, into the middle of a line, and type a word there.
        line_start = offset
        for _ in range(4):
            line_start = text.rfind("\n", 0, line_start - 1) + 1 if line_start > 0 else 0
        line_end = text.find("\n", line_start)
        offset = line_start + max(0, (line_end - line_start) // 2)
        out.append(Keystroke(text, offset, "click", -1))
        for ch in "new_name, ":
            text = text[:offset] + ch + text[offset:]
            offset += 1
            out.append(Keystroke(text, offset, "type", line_id))
        line_id += 1
    return out


def _shared(prev: list[int], cur: list[int]) -> float:
    n = 0
    for a, b in zip(prev, cur, strict=False):
        if a != b:
            break
        n += 1
    return n / max(len(cur), 1)


def run(tokenizer: LlamaTokenizer, template: str, budget: int, keys: list[Keystroke]) -> Run:
    renderer = Renderer.for_tokenizer(tokenizer)
    fim = get_template(template)
    result = Run()
    prev: tuple[int, list[int]] | None = None
    for key in keys:
        inputs = TabInputs(
            text=key.text,
            cursor_offset=key.offset,
            path=PATH,
            language="python",
            budget=budget,
            reserve_output=RESERVE,
        )
        w0, t0 = time.perf_counter(), time.thread_time()
        prompt = render_tab_inputs(inputs, template=fim, count=tokenizer.count, renderer=renderer)
        ms = (time.thread_time() - t0) * 1000
        wall = (time.perf_counter() - w0) * 1000
        if key.kind == "jump":
            result.jump_ms.append(ms)
        else:
            result.times_ms.append(ms)
            result.wall_ms.append(wall)
        # Checks, off the clock: the real count, and reuse between keystrokes on a line.
        ids = tokenizer.tokenize(prompt.prompt)
        result.inexact += len(ids) != prompt.tokens
        result.over += len(ids) > budget - RESERVE
        if key.line_id >= 0 and prev is not None and prev[0] == key.line_id:
            ratio = _shared(prev[1], ids)
            result.ratios.append(ratio)
            if ratio < MOVE:
                result.moves_per_line[key.line_id] = result.moves_per_line.get(key.line_id, 0) + 1
        prev = (key.line_id, ids)
    return result


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--templates", default="plain,qwen")
    parser.add_argument("--budgets", default="1024,4096")
    args = parser.parse_args()
    import argparse as target

    with open(target.__file__, encoding="utf-8") as f:
        src = f.read()
    tokenizer = LlamaTokenizer.from_gguf(default_model_path())
    keys = session(src)
    kinds = {k: sum(1 for x in keys if x.kind == k) for k in ("jump", "enter", "type", "click")}
    print(f"session: {len(keys)} renders on {PATH} ({len(src.splitlines())} lines): {kinds}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    header = (
        f"{'template':9} {'budget':>6} {'n':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'wall p50':>8} {'wall p99':>8} {'jump ms':>8} {'reuse':>6} {'moves':>5} {'exact':>5}  "
        "verdict"
    )
    print(header)
    ok = True
    for template in args.templates.split(","):
        for budget in (int(b) for b in args.budgets.split(",")):
            r = run(tokenizer, template, budget, keys)
            p50, p99 = _pct(r.times_ms, 0.5), _pct(r.times_ms, 0.99)
            reuse = statistics.mean(r.ratios)
            worst_moves = max(r.moves_per_line.values(), default=0)
            exact = r.inexact == 0 and r.over == 0
            target_p99 = P99_MS.get(budget, P99_MS[4096] * budget / 4096)
            fails = [
                name
                for name, good in (
                    (f"p50>={P50_MS}", p50 < P50_MS),
                    (f"p99>={target_p99}", p99 < target_p99),
                    ("reuse", reuse >= REUSE and worst_moves <= 1),
                    (f"exact({r.inexact} miscounted, {r.over} over)", exact),
                )
                if not good
            ]
            ok = ok and not fails
            print(
                f"{template:9} {budget:>6} {len(r.times_ms):>4} {p50:>7.2f} {p99:>7.2f} "
                f"{max(r.times_ms):>7.2f} {_pct(r.wall_ms, 0.5):>8.2f} {_pct(r.wall_ms, 0.99):>8.2f} "
                f"{statistics.median(r.jump_ms):>8.2f} "
                f"{reuse:>6.1%} {worst_moves:>5} {'yes' if exact else 'NO':>5}  "
                + ("PASS" if not fails else "FAIL " + ", ".join(fails)),
                flush=True,
            )
    print("targets: p50 < 1 ms; p99 < 3 ms (1024) / 6 ms (4096); reuse >= 95%, <= 1 move a line")
    print("times are the rendering thread's CPU time (a busy machine inflates wall time);")
    print("jump ms: median first render after a jump (cold caches), not part of the targets")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
