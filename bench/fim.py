"""Tab quality against plain FIM: the same model, the same cases, one run.

    python bench/fim.py [--split dev|heldout|both] [--per-kind N] [--kinds line,rest,multi]
                        [--seed N] [--model GGUF] [--json OUT] [--plain-from JSON]

Cases come from `fim_cases.py` (real code nobody here wrote, a middle cut out). Systems:
- ours: the real server over stdio (no prefetch, no warming, no index, no latency
  budget: each case is a cold file, see SERVER_OPTIONS), one
  `textDocument/inlineCompletion` at the cursor of each case's document, the
  suggestion as served; latency is the request's wall clock in the client;
- plain raw: the prompt llama.vim / llama.vscode send to llama.cpp (256 lines above
  the cursor line, 64 below, Qwen's FIM tokens), 128 tokens, greedy, stopped only at
  special tokens, on the same GGUF in this process; latency is the whole generation;
- plain cut: plain raw cut to as many lines as the expected middle (a peer told the length).

Per system, kind and overall: exact match (after stripping trailing whitespace of
each line and of the whole), first-line exact, edit similarity (1 - Levenshtein
distance / the longer length, on the same stripped texts), empty rate, p50/p95
latency. Bar, per split: ours exact >= 1.3x plain-cut exact. The two systems run one
after the other, never at the same time, and the peer's model is unloaded first.
About 30 s per case on 2 cores (most of it the peer's ~3k-token prompts): the default
60 cases of one split take half an hour. `--json` keeps every answer for inspection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fim_cases import KINDS, SPLITS, FimCase, build_cases  # noqa: E402
from harness import Editor, pct, server, stats, verdict, wait_ready  # noqa: E402
from lsprotocol import types  # noqa: E402
from pytest_lsp import LanguageClient  # noqa: E402

from lowentropy.models.embedded import EmbeddedEngine  # noqa: E402
from lowentropy.models.errors import BackendError  # noqa: E402
from lowentropy.models.types import CompletionRequest  # noqa: E402

FALLBACK_MODEL = Path("/root/.cache/lowentropy/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
LINES_ABOVE = 256
LINES_BELOW = 64
PLAIN_MAX_TOKENS = 128
# llama.vim's server runs with a large context; 4096 would not hold 320 dense lines.
PLAIN_N_CTX = 8192
QWEN_STOPS = (
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|file_sep|>",
    "<|repo_name|>",
    "<|im_start|>",
    "<|im_end|>",
)
BAR_RATIO = 1.3
# Quality of what the server answers when given the time: every case is a file just
# opened (a cold cache), which the default budget would answer empty. The latency a
# typist feels, budget included, is bench/typing_replay.py's.
SERVER_OPTIONS: dict[str, Any] = {
    "completion": {"prefetch": False, "warmDelayMs": -1, "budgetMs": 600_000},
    "index": {"enabled": False},
}


@dataclass
class Outcome:
    """What each system answered for one case (`plain_error` when the peer failed)."""

    case: FimCase
    ours: str = ""
    ours_ms: float = float("nan")
    plain: str = ""
    plain_ms: float = float("nan")
    plain_error: str | None = None

    @property
    def plain_cut(self) -> str:
        return "\n".join(self.plain.split("\n")[: self.case.middle.count("\n") + 1])


def model_path(given: str | None) -> Path:
    """`--model`, else the packaged default, else the GGUF the default assembles to."""
    if given:
        return Path(given).expanduser().resolve()
    try:
        from lowentropy.models.packaged import default_model_path

        return Path(default_model_path())
    except Exception as exc:  # the module is being rewritten: any failure means fall back
        print(f"default_model_path() unavailable ({exc!r}); using {FALLBACK_MODEL}")
        return FALLBACK_MODEL


# ---- positions and the peer's prompt ---------------------------------------------------------


def lsp_position(document: str, cursor: int) -> types.Position:
    """The LSP position of a code-point offset: line, and UTF-16 units into the line."""
    line_start = document.rfind("\n", 0, cursor) + 1
    prefix = document[line_start:cursor]
    return types.Position(
        line=document.count("\n", 0, cursor), character=len(prefix.encode("utf-16-le")) // 2
    )


def plain_prompt(document: str, cursor: int) -> str:
    """llama.vim's FIM prompt: whole lines around the cursor line, split at the cursor."""
    lines = document.split("\n")
    row = document.count("\n", 0, cursor)
    column = cursor - (document.rfind("\n", 0, cursor) + 1)
    current = lines[row]
    prefix = "\n".join(lines[max(0, row - LINES_ABOVE) : row]) + "\n" + current[:column]
    suffix = current[column:] + "\n" + "\n".join(lines[row + 1 : row + 1 + LINES_BELOW])
    return f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"


# ---- the two systems -------------------------------------------------------------------------


async def plain_phase(outcomes: list[Outcome], model: Path) -> None:
    engine = EmbeddedEngine.shared(str(model), n_ctx=PLAIN_N_CTX)
    try:
        for n, outcome in enumerate(outcomes, 1):
            case = outcome.case
            request = CompletionRequest(
                prompt=plain_prompt(case.document, case.cursor),
                max_tokens=PLAIN_MAX_TOKENS,
                temperature=0.0,
                stop=QWEN_STOPS,
            )
            started = time.perf_counter()
            try:
                async for piece in engine.stream_completion(request):
                    outcome.plain += piece
            except BackendError as exc:
                outcome.plain_error = str(exc)
            outcome.plain_ms = (time.perf_counter() - started) * 1000
            print(f"\rplain FIM {n}/{len(outcomes)}", end="", flush=True)
    finally:
        await engine.aclose()
    print()


def reuse_plain(outcomes: list[Outcome], earlier: Path) -> None:
    """The peer's answers from an earlier run's JSON, matched by case; missing ones fail."""
    known = {
        (c["split"], c["kind"], c["path"], c["cursor"]): c
        for c in json.loads(earlier.read_text(encoding="utf-8"))["cases"]
    }
    for outcome in outcomes:
        case = outcome.case
        found = known.get((case.split, case.kind, case.path, case.cursor))
        if found is None:
            raise SystemExit(f"{earlier} has no answer for {case.split}:{case.path}@{case.cursor}")
        outcome.plain, outcome.plain_ms = found["plain_raw"], found["plain_ms"]
        outcome.plain_error = found["plain_error"]
    print(f"plain FIM: {len(outcomes)} answers from {earlier} (not run)")


async def ours_phase(
    outcomes: list[Outcome], model: Path, root: Path, context_tokens: int | None = None
) -> None:
    options = {**SERVER_OPTIONS, "tab": {"modelPath": str(model)}}
    if context_tokens is not None:
        options["completion"] = {**options["completion"], "contextTokens": context_tokens}
    async with server(root, options) as client:
        await wait_ready(client)
        await check_backend(client, model)
        for n, outcome in enumerate(outcomes, 1):
            case = outcome.case
            path = root / case.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(case.document, encoding="utf-8")
            editor = Editor(client, path.as_uri(), case.document)
            position = lsp_position(case.document, case.cursor)
            started = time.perf_counter()
            outcome.ours = await editor.inline(position.line, position.character)
            outcome.ours_ms = (time.perf_counter() - started) * 1000
            client.text_document_did_close(
                types.DidCloseTextDocumentParams(
                    text_document=types.TextDocumentIdentifier(uri=editor.uri)
                )
            )
            print(f"\rours {n}/{len(outcomes)}", end="", flush=True)
    print()


async def check_backend(client: LanguageClient, model: Path) -> None:
    """Say so when the server's Tab backend is not the model the peer ran."""
    tab = [b for b in (await stats(client)).backends if b.role == "tab"]
    name = tab[0].name if tab else "(none)"
    if name != model.stem:
        print(f"WARNING: the server's tab backend is {name!r}, not {model.stem!r}")


# ---- metrics ---------------------------------------------------------------------------------


def normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip()


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(got: str, expected: str) -> float:
    longest = max(len(got), len(expected))
    return 1.0 - levenshtein(got, expected) / longest if longest else 1.0


@dataclass
class Row:
    n: int
    exact: int
    first_line: int
    similarity: float
    empty: int
    p50: float
    p95: float

    def format(self, system: str, kind: str) -> str:
        def share(count: int) -> str:
            return f"{count:3d} {100 * count / self.n:5.1f}%" if self.n else "  -"

        return (
            f"{system:<11} {kind:<6} {self.n:4d}  {share(self.exact)}  {share(self.first_line)}"
            f"  {self.similarity:8.3f}  {share(self.empty)}  {self.p50:8.0f} {self.p95:8.0f}"
        )


HEADER = (
    f"{'system':<11} {'kind':<6} {'n':>4}  {'exact':>10}  {'first line':>10}"
    f"  {'edit sim':>8}  {'empty':>10}  {'p50 ms':>8} {'p95 ms':>8}"
)


def score(pairs: Sequence[tuple[str, str]], latencies: list[float]) -> Row:
    """Metrics over (answer, expected middle) pairs and the answers' latencies (ms)."""
    got = [(normalize(answer), normalize(expected)) for answer, expected in pairs]
    sims = [edit_similarity(a, e) for a, e in got]
    return Row(
        n=len(got),
        exact=sum(a == e for a, e in got),
        first_line=sum(a.split("\n")[0] == e.split("\n")[0] for a, e in got),
        similarity=sum(sims) / len(sims) if sims else float("nan"),
        empty=sum(not a for a, _ in got),
        p50=pct(latencies, 0.5),
        p95=pct(latencies, 0.95),
    )


# Each system's answer and latency; the cut peer is the raw one's output, shortened afterwards.
SYSTEMS: dict[str, Callable[[Outcome], tuple[str, float]]] = {
    "ours": lambda o: (o.ours, o.ours_ms),
    "plain raw": lambda o: (o.plain, o.plain_ms),
    "plain cut": lambda o: (o.plain_cut, o.plain_ms),
}


def report(split: str, outcomes: list[Outcome], kinds: Sequence[str]) -> bool:
    """Print the split's table and its bar; True when the bar passes."""
    errors = sum(o.plain_error is not None for o in outcomes)
    print(f"\nsplit {split}: {len(outcomes)} cases ({errors} plain FIM errors)")
    print(HEADER)
    rows: dict[str, Row] = {}
    for system, answer in SYSTEMS.items():
        for kind in ("all", *kinds):
            answers = [(answer(o), o.case.middle) for o in outcomes if kind in ("all", o.case.kind)]
            row = score(
                [(text, middle) for (text, _), middle in answers], [ms for (_, ms), _ in answers]
            )
            print(row.format(system, kind))
            if kind == "all":
                rows[system] = row
    ours, peer = rows["ours"].exact, rows["plain cut"].exact
    ratio = ours / peer if peer else float("inf") if ours else float("nan")
    return verdict(
        f"{split}: ours exact >= {BAR_RATIO}x plain-cut exact",
        ours > 0 and ours >= BAR_RATIO * peer,
        f"ours {ours}/{len(outcomes)}, plain cut {peer}/{len(outcomes)}, ratio {ratio:.2f}x",
    )


def write_json(out: Path, outcomes: list[Outcome], args: argparse.Namespace, model: Path) -> None:
    cases = []
    for o in outcomes:
        case = asdict(o.case)
        del case["text"]
        position = lsp_position(o.case.document, o.case.cursor)
        cases.append(
            {
                **case,
                "line": position.line,
                "character": position.character,
                "ours": o.ours,
                "ours_ms": o.ours_ms,
                "plain_raw": o.plain,
                "plain_cut": o.plain_cut,
                "plain_ms": o.plain_ms,
                "plain_error": o.plain_error,
            }
        )
    run = {"seed": args.seed, "per_kind": args.per_kind, "model": str(model), "cases": cases}
    out.write_text(json.dumps(run, indent=1, ensure_ascii=False), encoding="utf-8")


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=(*SPLITS, "both"), default="dev")
    parser.add_argument("--per-kind", type=int, default=20, help="cases per kind (default 20)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="GGUF for both systems (default: the packaged model)")
    parser.add_argument("--json", type=Path, help="write every case's outputs here")
    parser.add_argument(
        "--context-tokens",
        type=int,
        help="completion.contextTokens for ours (default: the server's)",
    )
    parser.add_argument(
        "--plain-from",
        type=Path,
        help="take the peer's answers from an earlier --json of the same cases instead of "
        "running it (for iterating on ours; report figures from a run without it)",
    )
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    splits = SPLITS if args.split == "both" else (args.split,)
    model = model_path(args.model)
    outcomes = [
        Outcome(case)
        for split in splits
        for case in build_cases(split, args.per_kind, args.seed, kinds)
    ]
    print(f"model {model}; {len(outcomes)} cases ({', '.join(splits)}; kinds {', '.join(kinds)})")

    started = time.perf_counter()
    if args.plain_from:
        reuse_plain(outcomes, args.plain_from)
    else:
        await plain_phase(outcomes, model)
    with tempfile.TemporaryDirectory(prefix="lowentropy-fim-") as tmp:
        await ours_phase(outcomes, model, Path(tmp), args.context_tokens)
    print(f"bench time {time.perf_counter() - started:.0f} s")

    if args.json:
        write_json(args.json, outcomes, args, model)
    ok = [report(s, [o for o in outcomes if o.case.split == s], kinds) for s in splits]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
