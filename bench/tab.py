"""Tab benchmark: a scripted typing session over a real 6k-line file, embedded engine.

    python bench/tab.py [--lines N] [--max-tokens N]

Prints, with PASS/FAIL against the bars of the Tab issue:
- server overhead per inline completion (time in the server minus time in the backend), p50/p99;
- typed-through latency (in the server, and the client's round trip) and backend calls while typing through;
- prompt prefix reuse between consecutive prompts on the same line (shared leading tokens / prompt tokens);
- time to first token at a fresh location with and without cache warming, as a ratio.
The file is the standard library's `_pydecimal.py` (6.4k lines nobody here wrote).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import Editor, mean, pct, server, stats, stdlib_file, verdict, wait_ready  # noqa: E402

from lowentropy.models.llama_tokenizer import LlamaTokenizer  # noqa: E402
from lowentropy.models.packaged import default_model_path  # noqa: E402
from lowentropy.prompts.recorder import load_records  # noqa: E402

SOURCE = "_pydecimal.py"


def target_lines(
    lines: list[str], count: int, *, min_len: int = 30, max_len: int = 60, spacing: int = 400
) -> list[int]:
    """Code lines spread through the file, far enough apart that their prompt windows differ."""
    picked: list[int] = []
    for n, line in enumerate(lines):
        body = line.strip()
        if n < 200 or not (min_len <= len(body) <= max_len) or body.startswith(("#", '"', "'")):
            continue
        if picked and n - picked[-1] < spacing:
            continue
        picked.append(n)
        if len(picked) == count:
            break
    return picked


async def typing_phase(
    root: Path, path: Path, targets: list[int], record: Path | None, max_tokens: int
) -> dict[str, float]:
    """The scripted session. With `record`, the server records its prompts (for prefix
    reuse); timings come from a run without it, since recording is not free."""
    options: dict[str, object] = {
        "tab": {"maxTokens": max_tokens},
        # Mechanism, not what a typist feels (bench/typing_replay.py): no latency budget,
        # so fresh locations in this 6k-line file answer instead of answering empty.
        "completion": {"prefetch": False, "warmDelayMs": -1, "budgetMs": 600_000},
    }
    if record is not None:
        options["recordPrompts"] = str(record)
    async with server(root, options) as client:
        text = path.read_text(encoding="utf-8")
        editor = Editor(client, path.as_uri(), text)
        await wait_ready(client)
        await stats(client, reset=True)
        through_rtt: list[float] = []
        through_calls = 0
        keystrokes = 0
        for line in targets:
            original = editor.lines[line]
            indent = len(original) - len(original.lstrip())
            editor.replace(line, indent, len(original), "")
            suggestion = await editor.inline(line, indent)
            # Type through the suggestion, as a user following the ghost text would.
            # (Within the suggestion's first line: the bench's cursor stays on one line.)
            head = suggestion.split("\n", 1)[0]
            if len(head) > 1:
                before = (await stats(client)).tab.backendCalls
                for i, ch in enumerate(head[: min(8, len(head) - 1)]):
                    editor.replace(line, indent + i, indent + i, ch)
                    started = time.perf_counter()
                    rest = await editor.inline(line, indent + i + 1)
                    through_rtt.append((time.perf_counter() - started) * 1000)
                    assert rest == suggestion[i + 1 :], (rest, suggestion)
                through_calls += (await stats(client)).tab.backendCalls - before
                editor.replace(line, indent, len(editor.lines[line]), "")
            # Then type the real line character by character, asking at every keystroke.
            for i, ch in enumerate(original[indent:]):
                editor.replace(line, indent + i, indent + i, ch)
                await editor.inline(line, indent + i + 1)
                keystrokes += 1
        result = (await stats(client)).tab
        return {
            "overhead_p50": result.overheadMsP50,
            "overhead_p99": result.overheadMsP99,
            "overhead_n": result.overheadSamples,
            "through_p50": result.cachedMsP50,
            "through_p99": result.cachedMsP99,
            "through_rtt_p50": pct(through_rtt, 0.5),
            "through_rtt_p99": pct(through_rtt, 0.99),
            "through_n": len(through_rtt),
            "through_calls": through_calls,
            "keystrokes": keystrokes,
        }


def prefix_reuse(record: Path) -> tuple[float, int]:
    """Mean over consecutive same-line prompts of shared leading tokens / prompt tokens."""
    tokenizer = LlamaTokenizer.from_gguf(default_model_path())
    records = load_records(record)
    ratios: list[float] = []
    previous: tuple[int, list[int]] | None = None
    for rec in records:
        inputs = rec.inputs
        line = inputs.text.count("\n", 0, inputs.cursor_offset)
        tokens = tokenizer.tokenize(rec.output.prompt)
        if previous is not None and previous[0] == line and tokens:
            shared = 0
            for a, b in zip(previous[1], tokens, strict=False):
                if a != b:
                    break
                shared += 1
            ratios.append(shared / len(tokens))
        previous = (line, tokens)
    return mean(ratios), len(ratios)


async def ttft_phase(root: Path, path: Path, targets: list[int], warm: bool) -> list[float]:
    """Client-observed time to the first token (maxTokens 1) at fresh locations."""
    options = {
        "tab": {"maxTokens": 1},
        "completion": {
            "prefetch": False,
            "warmDelayMs": 300 if warm else -1,
            "budgetMs": 600_000,  # time to first token itself, not the budget's cut-off
        },
    }
    async with server(root, options) as client:
        text = path.read_text(encoding="utf-8")
        editor = Editor(client, path.as_uri(), text)
        await wait_ready(client)
        await asyncio.sleep(0.5)  # the didOpen warm settles
        times: list[float] = []
        for line in targets:
            original = editor.lines[line]
            indent = len(original) - len(original.lstrip())
            before = (await stats(client)).tab.warmings
            editor.replace(
                line, indent, len(original), ""
            )  # the user moves here and clears the line
            if warm:
                deadline = time.monotonic() + 20
                while (await stats(client)).tab.warmings == before and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(0.5)
            editor.replace(line, indent, indent, original[indent])  # first keystroke
            started = time.perf_counter()
            await editor.inline(line, indent + 1)
            times.append((time.perf_counter() - started) * 1000)
        return times


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=6, help="lines to type (default 6)")
    parser.add_argument(
        "--max-tokens", type=int, default=16, help="suggestion length while typing (default 16)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lowentropy-bench-") as tmp:
        root = Path(tmp)
        path = root / SOURCE
        shutil.copy(stdlib_file(SOURCE), path)
        lines = path.read_text(encoding="utf-8").split("\n")
        targets = target_lines(lines, args.lines)
        print(
            f"file: {SOURCE} ({len(lines)} lines); typing {len(targets)} lines: {[t + 1 for t in targets]}"
        )
        record = root / "prompts.jsonl"

        started = time.perf_counter()
        typing = await typing_phase(root, path, targets, None, args.max_tokens)
        await typing_phase(root, path, targets, record, args.max_tokens)
        reuse, pairs = prefix_reuse(record)
        ttft_cold = await ttft_phase(root, path, targets, warm=False)
        ttft_warm = await ttft_phase(root, path, targets, warm=True)
        elapsed = time.perf_counter() - started

    print(
        f"\nkeystrokes typed: {typing['keystrokes']}; answered by the model: {typing['overhead_n']}"
    )
    print(
        f"server overhead per inline completion: p50 {typing['overhead_p50']:.2f} ms, p99 {typing['overhead_p99']:.2f} ms"
    )
    print(
        f"typed-through ({typing['through_n']} keystrokes): in the server p50 {typing['through_p50']:.3f} ms, "
        f"p99 {typing['through_p99']:.3f} ms; client round trip p50 {typing['through_rtt_p50']:.2f} ms, "
        f"p99 {typing['through_rtt_p99']:.2f} ms; backend calls {typing['through_calls']}"
    )
    print(
        f"prompt prefix reuse, consecutive prompts on one line ({pairs} pairs): {100 * reuse:.1f}%"
    )
    cold, warm = mean(ttft_cold), mean(ttft_warm)
    ratio = cold / warm if warm else float("nan")
    print(
        f"time to first token at a fresh location: without warming {cold:.0f} ms "
        f"(p50 {pct(ttft_cold, 0.5):.0f}), with warming {warm:.0f} ms (p50 {pct(ttft_warm, 0.5):.0f}); ratio {ratio:.1f}x"
    )
    print(f"bench time {elapsed:.0f} s\n")
    ok = all(
        [
            verdict(
                "overhead p99 < 5 ms",
                typing["overhead_p99"] < 5.0,
                f"{typing['overhead_p99']:.2f} ms",
            ),
            verdict(
                "typed-through < 1 ms with 0 backend calls",
                typing["through_p99"] < 1.0
                and typing["through_calls"] == 0
                and typing["through_n"] > 0,
                f"p99 {typing['through_p99']:.3f} ms in the server, {typing['through_calls']} calls",
            ),
            verdict("prefix reuse >= 95%", reuse >= 0.95, f"{100 * reuse:.1f}%"),
            verdict("warming cuts time to first token >= 2x", ratio >= 2.0, f"{ratio:.1f}x"),
        ]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
