"""Apply through the real server on the chat-style sets: exact, wrong, and how fast a miss is.

    python bench/apply_chat.py [--sets chat-held-out,chat-held-out-big] [--limit N] [--wait]

Each case goes to `lowentropy/apply` on one in-process server (the shell command's path:
`lowentropy apply`), with the packaged default model as the `apply` role: the deterministic
path where it places the sketch, the model's region rewrites where it defers. A case is
exact when the server's edit, applied to the file, gives the expected file byte for byte
(or, for a sketch that must not be placed, when it is refused); wrong when it is verified
and differs. A miss is any answer that is not verified: its wall time, as the client sees
it, is what a user waits to be told "could not apply". Sets: `apply_exact.SETS`. Requests
answer within the server's apply budget (1.5 s) unless --wait sends `wait: true`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from apply_devset import Case  # noqa: E402
from apply_exact import SETS  # noqa: E402
from harness import pct  # noqa: E402
from lsprotocol import types  # noqa: E402
from pygls.exceptions import JsonRpcException  # noqa: E402

from lowentropy.server.apply.__main__ import _edits, _plain, apply_text_edits  # noqa: E402
from lowentropy.server.inprocess import in_process_client  # noqa: E402
from lowentropy.server.protocol import APPLY  # noqa: E402


@attrs.define
class SetFigures:
    name: str
    cases: int = 0
    deterministic_exact: int = 0
    model_tried: int = 0
    model_exact: int = 0
    wrong: int = 0
    refused_right: int = 0  # sketches that must not be placed, refused
    miss_seconds: list[float] = attrs.field(factory=list)
    model_seconds: list[float] = attrs.field(factory=list)
    model_tokens: int = 0
    wrong_names: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)  # JSON-RPC errors instead of an answer

    @property
    def exact(self) -> int:
        return self.deterministic_exact + self.model_exact + self.refused_right

    def rate(self, n: int) -> float:
        return n / self.cases if self.cases else 0.0


async def run_set(name: str, cases: Sequence[Case], wait: bool = False) -> SetFigures:
    figures = SetFigures(name=name)
    options = {"index": {"enabled": False}, "completion": {"warmDelayMs": -1, "prefetch": False}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with in_process_client(root, options) as client:
            for n, case in enumerate(cases):
                uri = (root / f"{n}" / case.path).as_uri()
                item = types.TextDocumentItem(
                    uri=uri, language_id=case.language or "text", version=1, text=case.original
                )
                client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
                params: dict[str, Any] = {"textDocument": {"uri": uri, "version": 1}}
                params["sketch"] = case.sketch
                params["wait"] = wait
                if case.selection is not None:
                    a, b = case.selection
                    params["range"] = {
                        "start": {"line": a, "character": 0},
                        "end": {"line": b, "character": 0},
                    }
                started = time.perf_counter()
                try:
                    result = _plain(await client.protocol.send_request_async(APPLY, params))
                except JsonRpcException as exc:  # an error reached the user: counted, shown
                    figures.errors.append(f"{case.name}: {exc}"[:200])
                    result = {"verified": False, "stats": {}}
                seconds = time.perf_counter() - started
                client.text_document_did_close(
                    types.DidCloseTextDocumentParams(
                        text_document=types.TextDocumentIdentifier(uri=uri)
                    )
                )
                _count(figures, case, result, seconds)
    return figures


def _count(figures: SetFigures, case: Case, result: dict[str, Any], seconds: float) -> None:
    figures.cases += 1
    stats = result.get("stats", {})
    model = stats.get("path") == "model"
    if model:
        figures.model_tried += 1
        figures.model_seconds.append(seconds)
        figures.model_tokens += int(stats.get("tokens", 0))
        state = "verified" if result.get("verified") else f"refused: {result.get('reason')}"
        print(f"   model {seconds:.1f} s, {stats.get('tokens')} tokens: {case.name}: {state}"[:240])
    if not result.get("verified"):
        figures.miss_seconds.append(seconds)
        figures.refused_right += case.expected is None
        return
    new = apply_text_edits(case.original, _edits(result))
    if new != case.expected:
        figures.wrong += 1
        figures.wrong_names.append(f"{case.name} ({'model' if model else 'deterministic'})")
    elif model:
        figures.model_exact += 1
    else:
        figures.deterministic_exact += 1


def report(f: SetFigures) -> None:
    misses = f.miss_seconds
    print(
        f"{f.name}: {f.cases} cases through the server: {f.exact} exact ({f.rate(f.exact):.1%}) "
        f"= deterministic {f.deterministic_exact} ({f.rate(f.deterministic_exact):.1%}) "
        f"+ model {f.model_exact} of {f.model_tried} deferred"
        + (f" + {f.refused_right} rightly refused" if f.refused_right else "")
        + f"; {f.wrong} wrong; {len(misses)} misses, p50 {pct(misses, 0.5):.2f} s, "
        f"p95 {pct(misses, 0.95):.2f} s, max {max(misses, default=0.0):.2f} s"
    )
    if f.model_seconds:
        total = sum(f.model_seconds)
        print(
            f"   model rewrites: {f.model_tried} requests, {f.model_tokens} tokens in "
            f"{total:.1f} s ({f.model_tokens / max(total, 1e-9):.1f} tokens/s end to end), "
            f"p50 {pct(f.model_seconds, 0.5):.1f} s, max {max(f.model_seconds):.1f} s"
        )
    for name in f.wrong_names:
        print(f"   wrong: {name}")
    for error in f.errors:
        print(f"   error: {error}")


async def run(names: list[str], limit: int | None, wait: bool = False) -> list[SetFigures]:
    out = []
    for name in names:
        cases = SETS[name]()[:limit]
        figures = await run_set(name + (" (wait)" if wait else ""), cases, wait)
        report(figures)
        out.append(figures)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="chat-held-out,chat-held-out-big")
    parser.add_argument("--limit", type=int, default=None, help="first N cases of each set")
    parser.add_argument("--wait", action="store_true", help="requests wait for the model")
    args = parser.parse_args()
    asyncio.run(run(args.sets.split(","), args.limit, args.wait))
    return 0


if __name__ == "__main__":
    sys.exit(main())
