"""Reusing llama.cpp's KV cache beyond the shared prefix: shifted chunks and saved snapshots.

Plain prefix reuse evaluates everything after the first token where a new
prompt differs from the cached one. Two cheaper ways to get the rest:

- **Shifted chunks** (llama.cpp server's `--cache-reuse`, what llama.vim relies
  on): a long run of cached tokens that reappears later or earlier in the new
  prompt (the text below the cursor after a line was added above it, the file
  after its window's top moved) keeps its KV cells, moved to the new positions
  (`llama_memory_seq_add`; RoPE keys are rotated by the shift). Those cells were
  computed with the old text before them, an approximation llama.vim accepts;
  runs shorter than `min_chunk` tokens are evaluated afresh.
- **Snapshots**: the cache of one prompt (a document's Tab prompt, a chat) is
  copied out (`llama_state_seq_get_data`, ~12 KB a token for Qwen2.5-0.5B)
  before another prompt replaces it, and copied back when a later prompt shares
  more with it than with what is cached then: switching documents or roles
  costs a memory copy instead of a prefill. Kept in LRU order within a byte budget.

`plan_reuse` is pure; `apply_moves`, `save_snapshot` and `restore_snapshot` do the
llama.cpp calls on sequence 0, the only one the engine uses.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import attrs


@attrs.frozen
class Move:
    """Cached cells at positions [src, src + length) now serve positions [dst, dst + length)."""

    src: int
    dst: int
    length: int


@attrs.frozen
class ReusePlan:
    prefix: int  # tokens shared from the start, kept in place
    moves: tuple[Move, ...]  # then chunks moved into place, in increasing dst order
    reused: int  # prompt tokens whose cells are kept: prefix + moved

    @property
    def valid_until(self) -> int:
        """Prompt tokens [0, valid_until) are in the cache after the plan is applied."""
        return self.prefix + sum(m.length for m in self.moves)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def plan_reuse(cached: Sequence[int], prompt: Sequence[int], min_chunk: int) -> ReusePlan:
    """What of `cached` serves `prompt`: its shared prefix, then chunks of at least
    `min_chunk` tokens found in order, each moved to follow the last (llama.cpp server's
    scan). Only chunks that continue the prompt contiguously count, since the cache must
    hold an unbroken run of the prompt for decoding to go on from it. `min_chunk` <= 0:
    prefix only."""
    prefix = common_prefix(cached, prompt)
    moves: list[Move] = []
    if min_chunk > 0:
        head_c = head_p = prefix
        while head_c < len(cached) and head_p < len(prompt):
            n = 0
            while (
                head_c + n < len(cached)
                and head_p + n < len(prompt)
                and cached[head_c + n] == prompt[head_p + n]
            ):
                n += 1
            if n >= min_chunk:
                moves.append(Move(src=head_c, dst=head_p, length=n))
                head_c += n
                head_p += n
            else:
                head_c += 1
    # The last prompt token is always evaluated (its logits seed the first sample).
    plan = ReusePlan(prefix=prefix, moves=tuple(moves), reused=prefix)
    if plan.valid_until >= len(prompt) and moves:
        last = moves[-1]
        trimmed = last.length - (plan.valid_until - len(prompt) + 1)
        moves = moves[:-1] + ([attrs.evolve(last, length=trimmed)] if trimmed > 0 else [])
    return ReusePlan(
        prefix=prefix, moves=tuple(moves), reused=prefix + sum(m.length for m in moves)
    )


def apply_moves(lib: Any, ctx: Any, moves: Sequence[Move]) -> None:
    """Carry out a plan's moves on sequence 0 (left to right, like llama.cpp's server):
    drop the cells between where a chunk goes and where it is, then shift it there."""
    mem = lib.llama_get_memory(ctx)
    for move in moves:
        if move.src != move.dst:
            lib.llama_memory_seq_rm(mem, 0, move.dst, move.src)
            lib.llama_memory_seq_add(mem, 0, move.src, move.src + move.length, move.dst - move.src)


def can_shift(lib: Any, ctx: Any) -> bool:
    return bool(lib.llama_memory_can_shift(lib.llama_get_memory(ctx)))


@attrs.define
class Snapshot:
    tokens: tuple[int, ...]
    data: Any  # a ctypes uint8 array
    size: int


def save_snapshot(lib: Any, ctx: Any, tokens: Sequence[int]) -> Snapshot | None:
    """Copy sequence 0's cells out (they must hold exactly `tokens`)."""
    size = int(lib.llama_state_seq_get_size(ctx, 0))
    if size <= 0:
        return None
    buf = (ctypes.c_uint8 * size)()
    written = int(lib.llama_state_seq_get_data(ctx, buf, size, 0))
    if written <= 0:
        return None
    return Snapshot(tokens=tuple(tokens), data=buf, size=written)


def restore_snapshot(lib: Any, ctx: Any, snapshot: Snapshot) -> bool:
    """Replace sequence 0's cells with a snapshot's; False (cache emptied) when it fails."""
    mem = lib.llama_get_memory(ctx)
    lib.llama_memory_seq_rm(mem, 0, -1, -1)
    if int(lib.llama_state_seq_set_data(ctx, snapshot.data, snapshot.size, 0)) > 0:
        return True
    lib.llama_memory_seq_rm(mem, 0, -1, -1)
    return False


@attrs.define
class SnapshotStore:
    """Snapshots in LRU order within `budget_bytes`; the best one for a prompt is the one
    sharing the longest prefix with it."""

    budget_bytes: int
    _items: list[Snapshot] = attrs.field(factory=list)

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def best(self, prompt: Sequence[int]) -> tuple[Snapshot | None, int]:
        best: Snapshot | None = None
        shared = 0
        for snap in self._items:
            n = common_prefix(snap.tokens, prompt)
            if n > shared:
                best, shared = snap, n
        return best, shared

    def covers(self, tokens: Sequence[int]) -> bool:
        """A snapshot already holds these tokens (or a longer run starting with them)."""
        n = len(tokens)
        return any(len(s.tokens) >= n and s.tokens[:n] == tuple(tokens) for s in self._items)

    def add(self, snapshot: Snapshot) -> None:
        # One snapshot per line of work: a newer one that extends an older replaces it.
        self._items = [
            s
            for s in self._items
            if not (len(s.tokens) <= len(snapshot.tokens)
                    and snapshot.tokens[: len(s.tokens)] == s.tokens)
        ]  # fmt: skip
        self._items.append(snapshot)
        while self._items and self.bytes > self.budget_bytes:
            self._items.pop(0)

    def touch(self, snapshot: Snapshot) -> None:
        if snapshot in self._items:
            self._items.remove(snapshot)
            self._items.append(snapshot)

    def clear(self) -> None:
        self._items.clear()
