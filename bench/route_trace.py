"""Multi-user Tab traces for the routing bench (issue 18): real files typed back by simulated users.

A trace is a `TraceSpec` (a few numbers, stored as JSON; `route_trace_seed.json` is the
small one the bench's real-engine check replays) that expands deterministically into
requests on this machine: each user types real function bodies back into real files
(the functions `typing_replay.py` picks: 8-25 lines, from the split's files), a
character at a time, and every keystroke asks for a Tab suggestion. Each request's
prompt is rendered from `TabInputs` exactly as the server renders it (the recorder's
inputs; `--record` writes them with `PromptRecorder`, one long-lived renderer per user
as in the server) and tokenized by the default model's own vocabulary, so prefixes are
real token blocks.

Timing: keystroke gaps are log-normal (median 170 ms, about 5.5 characters a second);
after a typed line the user pauses 1-6 s with probability 0.15; after a function the
user switches file and pauses 3-12 s. Users start at random moments in the first 10 s.

Sharing:
- `team`: users work in teams of four; a team shares a pool of three files (popularity
  falls off as 1/rank), so teammates type in the same files, even the same function,
  at different times;
- `solo`: the low-sharing variant: every user has files of their own (unrelated work).

    python bench/route_trace.py --users 8 --seconds 60 [--sharing team|solo] [--record OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fim_cases import read_source, seeded_order, split_files  # noqa: E402
from typing_replay import Function, _functions_in  # noqa: E402

from lowentropy.prompts.fim import FimTemplate, guess_template  # noqa: E402
from lowentropy.prompts.recorder import PromptRecorder  # noqa: E402
from lowentropy.prompts.renderer import Renderer  # noqa: E402
from lowentropy.prompts.tab import TabInputs, TabPrompt, render_tab_inputs  # noqa: E402

TRACE_VERSION = 1
BLOCK = 16  # vLLM's KV block size: prefixes are cached in whole blocks
BUDGET = 1024  # the server's completion.contextTokens default
RESERVE = 64  # the Tab role's max_tokens default
TEAM_SIZE = 4  # users who share a pool of files
TEAM_FILES = 3  # files in a team's pool; the first is the hottest (popularity 1/rank)
SOLO_FILES = 1  # the file of a user's own in the low-sharing trace
SEED_TRACE = Path(__file__).with_name("route_trace_seed.json")


@dataclass(frozen=True)
class TraceSpec:
    users: int
    seconds: float  # how long each user types (simulated time)
    sharing: str = "team"  # team | solo
    seed: int = 0
    split: str = "heldout"
    mean_output_tokens: float = 10.0  # a suggestion's length (geometric, at most RESERVE)
    budget: int = BUDGET  # completion.contextTokens

    def to_json(self) -> str:
        return json.dumps({"v": TRACE_VERSION, **asdict(self)})

    @classmethod
    def from_json(cls, text: str) -> TraceSpec:
        raw = json.loads(text)
        if raw.pop("v", None) != TRACE_VERSION:
            raise ValueError("unsupported route trace version")
        return cls(**raw)

    def scaled(self, users: int, sharing: str | None = None) -> TraceSpec:
        """The same trace for `users` users (the first users' sessions do not change)."""
        return TraceSpec(**{**asdict(self), "users": users, "sharing": sharing or self.sharing})


@dataclass(frozen=True)
class Request:
    t: float  # arrival, seconds
    user: int
    path: str
    stable_prefix: str  # what the pool routes on
    tokens: np.ndarray  # the prompt's token ids (int32)
    output_tokens: int
    prompt: str = ""  # kept when asked (the real-engine check sends it)

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


def block_hashes(tokens: np.ndarray) -> list[int]:
    """Chained hashes of the prompt's full blocks, as vLLM keys its prefix cache: a block's
    hash covers every token before it, so a hit is a run of leading blocks."""
    out: list[int] = []
    h = b""
    for i in range(len(tokens) // BLOCK):
        h = hashlib.blake2b(
            h + tokens[i * BLOCK : (i + 1) * BLOCK].tobytes(), digest_size=8
        ).digest()
        out.append(int.from_bytes(h, "big"))
    return out


# ---- sessions ----------------------------------------------------------------------------------


def _functions(split: str, files: int, seed: int) -> list[list[Function]]:
    """Typable functions of `files` files (in the split's seeded order), grouped by file."""
    rng = random.Random(f"route:{split}:{seed}")
    out: list[list[Function]] = []
    for source in seeded_order(split_files(split), rng):
        if len(out) == files:
            break
        parsed = read_source(source)
        found = _functions_in(source.relative, *parsed) if parsed else []
        if found:
            out.append(found)
    return out


def _gap(rng: random.Random) -> float:
    return rng.lognormvariate(math.log(0.17), 0.5)


def keystrokes(fn: Function, rng: random.Random, start: float) -> Iterator[tuple[float, str, int]]:
    """(time, document text, cursor) after each keystroke typing `fn`'s body back; a
    newline brings the next line's indentation, as an editor's auto-indent does."""
    body, done, t = fn.body, 0, start
    while done < len(body):
        key = body[done]
        if key == "\n":
            line = body[done + 1 :].split("\n", 1)[0]
            key += line[: len(line) - len(line.lstrip(" "))]
            if rng.random() < 0.15:
                t += rng.uniform(1.0, 6.0)
        done += len(key)
        t += _gap(rng)
        text = fn.text[: fn.start + done] + fn.text[fn.end :]
        yield t, text, fn.start + done


def sessions(spec: TraceSpec) -> Iterator[tuple[int, float, str, int, str, random.Random]]:
    """(user, time, text, cursor, path, the user's rng) for every keystroke, user by user.
    A user's session depends only on the spec's seed, split and sharing and the user's
    number, so a trace for N users is the first N users of any larger one."""
    per_user = TEAM_FILES / TEAM_SIZE if spec.sharing == "team" else SOLO_FILES
    files = _functions(spec.split, math.ceil(spec.users * per_user) + TEAM_FILES, spec.seed)
    weights = [1.0 / (rank + 1) for rank in range(TEAM_FILES)]
    for user in range(spec.users):
        rng = random.Random(f"route-user:{spec.seed}:{spec.sharing}:{user}")
        if spec.sharing == "team":
            first = user // TEAM_SIZE * TEAM_FILES
            own, w = files[first : first + TEAM_FILES], weights
        else:
            own, w = files[user * SOLO_FILES : (user + 1) * SOLO_FILES], [1.0] * SOLO_FILES
        if len(own) < len(w):
            raise RuntimeError(f"split {spec.split!r} has too few files for {spec.users} users")
        t = rng.uniform(0.0, 10.0)
        end = t + spec.seconds
        while t < end:
            fn = rng.choice(rng.choices(own, weights=w)[0])
            at = t
            for at, text, cursor in keystrokes(fn, rng, t):
                if at >= end:
                    break
                yield user, at, text, cursor, fn.path, rng
            t = at + rng.uniform(3.0, 12.0)


def expand(
    spec: TraceSpec,
    template: FimTemplate,
    count: Callable[[str], int],
    tokenize: Callable[[str], list[int]],
    recorder: PromptRecorder | None = None,
    *,
    keep_prompt: bool = False,
) -> list[Request]:
    """Every keystroke's Tab request, in arrival order."""
    renderers: dict[int, Renderer] = {}
    out: list[Request] = []
    for user, t, text, cursor, path, rng in sessions(spec):
        inputs = TabInputs(
            text=text,
            cursor_offset=cursor,
            path=path,
            language="python",
            budget=spec.budget,
            reserve_output=RESERVE,
        )
        renderer = renderers.setdefault(user, Renderer(count, exact=True))
        prompt: TabPrompt = render_tab_inputs(
            inputs, template=template, count=count, renderer=renderer
        )
        if recorder is not None:
            recorder.record(inputs, prompt, template=template)
        # geometric length with the spec's mean, as a suggestion stops at a line's end
        p = 1.0 / spec.mean_output_tokens
        out_tokens = min(RESERVE, 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - p)))
        out.append(
            Request(
                t=t,
                user=user,
                path=path,
                stable_prefix=prompt.stable_prefix,
                tokens=np.asarray(tokenize(prompt.prompt), dtype=np.int32),
                output_tokens=out_tokens,
                prompt=prompt.prompt if keep_prompt else "",
            )
        )
    out.sort(key=lambda r: (r.t, r.user))
    return out


def default_tokenizer() -> tuple[
    str, FimTemplate, Callable[[str], int], Callable[[str], list[int]]
]:
    """The default model's name, FIM template, and its vocabulary's count and tokenize."""
    from lowentropy.models.llama_tokenizer import LlamaTokenizer
    from lowentropy.models.packaged import default_model_path

    path = Path(default_model_path())
    tok = LlamaTokenizer.from_gguf(path)
    return path.name, guess_template(path.name), tok.count, tok.tokenize


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sharing", choices=("team", "solo"), default="team")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", type=Path, help="write the rendered prompts (PromptRecorder)")
    args = parser.parse_args()
    spec = TraceSpec(users=args.users, seconds=args.seconds, sharing=args.sharing, seed=args.seed)
    name, template, count, tokenize = default_tokenizer()
    recorder = PromptRecorder(args.record) if args.record else None
    requests = expand(spec, template, count, tokenize, recorder)
    tokens = sum(r.n_tokens for r in requests)
    print(
        f"{spec.to_json()}\n{name}, template {template.name}: {len(requests)} requests, "
        f"{tokens / max(1, len(requests)):.0f} prompt tokens each on average, "
        f"{len({r.path for r in requests})} files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
