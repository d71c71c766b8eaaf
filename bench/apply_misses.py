"""Every miss of apply through the real server, with where its time went.

    python bench/apply_misses.py [--sets chat,chat-big] [--limit N] [--wait]
    (runs the packaged model: under flock /tmp/lowentropy-bench.lock)

Each case goes to `lowentropy/apply` on an in-process server, as in `apply_chat.py`. For
each case the model took part in, and for every miss (an answer that is not verified,
and not a sketch rightly refused), one line: the wall time, the reason, and for each
generation the prompt's tokens (evaluated / reused), time to the first token (prefill),
decode time and tokens/s, and draft tokens proposed / accepted. Ends with the misses'
p50 / p95 and how many of them reached the model. --wait sends `wait: true` (the model
path however long it takes, as before the request budget). Use it on dev sets only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from apply_exact import SETS  # noqa: E402
from harness import pct  # noqa: E402
from lsprotocol import types  # noqa: E402
from pygls.exceptions import JsonRpcException  # noqa: E402

from lowentropy.models.embedded import EmbeddedEngine  # noqa: E402
from lowentropy.models.types import GenerationStats  # noqa: E402
from lowentropy.server.apply.__main__ import _edits, _plain, apply_text_edits  # noqa: E402
from lowentropy.server.inprocess import in_process_client  # noqa: E402
from lowentropy.server.protocol import APPLY  # noqa: E402

_generations: list[Any] = []  # the streams of the current case, to read their stats after


def _record() -> None:
    """Keep each chat stream the engine hands out (the server closes it; stats stay)."""
    original = EmbeddedEngine.stream_chat

    def stream_chat(self: EmbeddedEngine, req: Any) -> Any:
        stream = original(self, req)
        _generations.append(stream)
        return stream

    EmbeddedEngine.stream_chat = stream_chat  # type: ignore[method-assign]


def _generation(stats: GenerationStats | None) -> str:
    if stats is None:
        return "no stats"
    ttft = stats.ttft_s
    decode = stats.seconds - ttft if ttft is not None and stats.seconds > ttft else None
    timing = (
        f"decode {decode:.1f} s ({stats.tokens / decode:.1f} tok/s)"
        if decode is not None
        else "decode time not recorded (stopped early: see the case's wall time)"
    )
    return (
        f"prompt {stats.prompt_tokens} ({stats.prompt_tokens_reused} reused), prefill "
        + (f"{ttft:.1f} s" if ttft is not None else "unfinished")
        + f", {stats.tokens} tokens, {stats.forward_passes} passes, {timing}, "
        f"draft {stats.accepted_draft_tokens}/{stats.draft_tokens}"
    )


async def run_set(name: str, limit: int | None, wait: bool) -> list[float]:
    cases = SETS[name]()[:limit]
    options = {"index": {"enabled": False}, "completion": {"warmDelayMs": -1, "prefetch": False}}
    misses: list[float] = []
    model_misses = exact = wrong = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with in_process_client(root, options) as client:
            for n, case in enumerate(cases):
                uri = (root / f"{n}" / case.path).as_uri()
                item = types.TextDocumentItem(
                    uri=uri, language_id=case.language or "text", version=1, text=case.original
                )
                client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
                params: dict[str, Any] = {
                    "textDocument": {"uri": uri, "version": 1},
                    "sketch": case.sketch,
                    "wait": wait,
                }
                if case.selection is not None:
                    a, b = case.selection
                    params["range"] = {
                        "start": {"line": a, "character": 0},
                        "end": {"line": b, "character": 0},
                    }
                _generations.clear()
                started = time.perf_counter()
                try:
                    result = _plain(await client.protocol.send_request_async(APPLY, params))
                except JsonRpcException as exc:
                    result = {"verified": False, "reason": f"error: {exc}", "stats": {}}
                seconds = time.perf_counter() - started
                client.text_document_did_close(
                    types.DidCloseTextDocumentParams(
                        text_document=types.TextDocumentIdentifier(uri=uri)
                    )
                )
                verified = bool(result.get("verified"))
                model = result.get("stats", {}).get("path") == "model"
                if verified:
                    new = apply_text_edits(case.original, _edits(result))
                    right = new == case.expected
                    exact += right
                    wrong += not right
                    state = "exact" if right else "WRONG"
                elif case.expected is None:
                    exact += 1
                    state = "rightly refused"
                else:
                    misses.append(seconds)
                    model_misses += model
                    state = f"MISS: {result.get('reason')}"[:300]
                if model or state.startswith("MISS"):
                    print(f"  {name} {case.name}: {seconds:.2f} s, {state}")
                    for stream in _generations:
                        print(f"      {_generation(stream.stats)}")
    print(
        f"{name}: {len(cases)} cases, {exact} exact, {wrong} wrong, {len(misses)} misses "
        f"({model_misses} reached the model), p50 {pct(misses, 0.5):.2f} s, "
        f"p95 {pct(misses, 0.95):.2f} s, max {max(misses, default=0.0):.2f} s"
    )
    return misses


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="chat,chat-big")
    parser.add_argument("--limit", type=int, default=None, help="first N cases of each set")
    parser.add_argument("--wait", action="store_true", help="requests wait for the model")
    args = parser.parse_args()
    _record()
    every: list[float] = []
    for name in args.sets.split(","):
        every += await run_set(name, args.limit, args.wait)
    print(f"all sets: {len(every)} misses, p95 {pct(every, 0.95):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
