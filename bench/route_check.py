"""The routing bench's measurements on real engines (issue 18): llama.cpp's prefill and
decode rates (`calibrate`), and the simulator checked against two llama.cpp server
processes behind the real pool (`check`). Used by `route.py`.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import route_sim as sim  # noqa: E402
from harness import stdlib_file, verdict  # noqa: E402
from route_trace import SEED_TRACE, TraceSpec, expand  # noqa: E402
from servers import running_llama_server, smollm2_gguf  # noqa: E402

from lowentropy.models.config import EndpointConfig, RoleConfig, Timeouts  # noqa: E402
from lowentropy.models.http_backend import OpenAIBackend  # noqa: E402
from lowentropy.models.llama_tokenizer import LlamaTokenizer  # noqa: E402
from lowentropy.models.pool import DEFAULT_AFFINITY_CHOICES, Pool, prefix_digest  # noqa: E402
from lowentropy.models.types import CompletionRequest  # noqa: E402
from lowentropy.prompts.fim import get_template  # noqa: E402

CHECK_POINTS_BAR = 10.0
HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens")
FULL = "Llama.generate: full prompt already cached"


def calibrate() -> dict[str, float]:
    """Prefill and decode tokens a second of the default model in llama.cpp, one thread
    (the embedded engine's setting), on a real 1024-token prompt. Run it under the bench lock."""
    from llama_cpp import Llama

    from lowentropy.models.packaged import default_model_path

    llm = Llama(str(default_model_path()), n_threads=1, n_threads_batch=1, n_ctx=2048,
                verbose=False)  # fmt: skip
    tokens = llm.tokenize(stdlib_file("argparse.py").read_text().encode())[:1024]
    prefill, decode = [], []
    for _ in range(2):
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        prefill.append(len(tokens) / (time.perf_counter() - started))
        started = time.perf_counter()
        for tok in tokens[:32]:
            llm.eval([tok])  # one decode step each
        decode.append(32 / (time.perf_counter() - started))
    out = {"prefill_tok_s": max(prefill), "decode_tok_s": max(decode)}
    print(f"llama.cpp profile (Qwen2.5-Coder-0.5B Q4_K_M, 1 thread, this machine): "
          f"prefill {out['prefill_tok_s']:.0f} tok/s, decode {out['decode_tok_s']:.1f} tok/s")  # fmt: skip
    return out


def measured_hits(log: Path) -> tuple[int, int]:
    """(tokens reused, tokens evaluated) summed over the server log's prefix-match lines."""
    reused = evaluated = 0
    for line in log.read_text(errors="replace").splitlines():
        if m := HIT.search(line):
            reused += int(m.group(1))
            evaluated += int(m.group(2))
        elif FULL in line:
            raise AssertionError("a prompt repeated exactly; the trace should not do that")
    return reused, evaluated


async def replay(
    urls: list[str], routing: str, requests: list[tuple[str, str]]
) -> tuple[list[int], list[str]]:
    """Each (prompt, stable prefix) through the pool in turn: which replica served each, and
    the replicas' keys (what rendezvous hashing scores)."""
    role = RoleConfig(timeouts=Timeouts(connect=2.0, read=120.0, total=300.0), max_tokens=4)
    async with httpx.AsyncClient() as client:
        pool = Pool([OpenAIBackend(EndpointConfig(url=u), role, client) for u in urls],
                    routing=routing)  # fmt: skip
        chosen = []
        for prompt, prefix in requests:
            before = [r.backend.stats.completed for r in pool.replicas]
            req = CompletionRequest(prompt=prompt, max_tokens=4, stable_prefix=prefix)
            async for _ in pool.stream_completion(req):
                pass
            after = [r.backend.stats.completed for r in pool.replicas]
            chosen.append(
                next(i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a > b)
            )
        keys = [r.key for r in pool.replicas]
        await pool.aclose()
    return chosen, keys


def check() -> list[bool]:
    spec = TraceSpec.from_json(SEED_TRACE.read_text())
    tok = LlamaTokenizer.from_gguf(smollm2_gguf())
    reqs = expand(spec, get_template("qwen"), tok.count, tok.tokenize, keep_prompt=True)
    print(f"\nreal-engine check: seed trace {spec.to_json()}: {len(reqs)} requests, "
          f"two llama.cpp servers (SmolLM2-135M, 1 thread each) behind models/pool.py")  # fmt: skip
    ok = []
    for routing, policy in (("affinity", "affinity"), ("round_robin", "round-robin")):
        with tempfile.TemporaryDirectory(prefix="lowentropy-route-") as tmp, ExitStack() as stack:
            logs = [Path(tmp) / f"r{i}" for i in range(2)]
            urls = []
            for log in logs:
                log.mkdir()
                urls.append(stack.enter_context(running_llama_server(log, "--n_ctx", "2048")))
            started = time.perf_counter()
            chosen, keys = asyncio.run(
                replay(urls, routing, [(r.prompt, r.stable_prefix) for r in reqs])
            )
            reused = evaluated = 0
            for log in logs:
                a, b = measured_hits(log / "server.log")
                reused, evaluated = reused + a, evaluated + b
        # requests that reused nothing print no prefix-match line: count every prompt token
        prompt_tokens = sum(r.n_tokens for r in reqs)
        measured = reused / max(1, prompt_tokens)
        # the simulator on the same tokens and replica keys, one request at a time (as replayed)
        sreqs = [
            sim.SimRequest(1000.0 * i, r.user, prefix_digest(r.stable_prefix), (), r.n_tokens, 1,
                           r.tokens)
            for i, r in enumerate(reqs)
        ]  # fmt: skip
        pick = (
            sim.round_robin()
            if routing == "round_robin"
            else sim.pool_affinity(DEFAULT_AFFINITY_CHOICES)
        )
        out = sim.simulate(sreqs, 2, pick, sim.CHECK_PROFILE, name=policy,
                           cache=sim.SequenceCache, keys=keys)  # fmt: skip
        same = sum(a == b for a, b in zip(out.chosen, chosen, strict=True))
        points = 100 * abs(out.hit_rate - measured)
        print(f"  {policy:<12} measured {100 * measured:5.1f}% ({reused} of {prompt_tokens} "
              f"prompt tokens reused, from the servers' logs), simulated {100 * out.hit_rate:5.1f}%; "
              f"same replica as the pool for {same}/{len(reqs)}; {time.perf_counter() - started:.0f} s")  # fmt: skip
        ok.append(verdict(f"{policy}: simulated vs measured hit rate within {CHECK_POINTS_BAR:g} points",
                          points <= CHECK_POINTS_BAR, f"{points:.1f} points"))  # fmt: skip
    return ok
