"""Priority rendering of prompts under a token budget, in the spirit of priompt.

A prompt is a tree of `Component`s in output order. Each has an optional
integer priority (higher is kept longer); a child is only included if its
parent is, so a component's effective priority is the minimum along its path
from the root, and a component without any priority on its path is always
kept. Rendering at a cutoff keeps every piece whose effective priority is at
least the cutoff; `Renderer.render` looks for the lowest cutoff whose rendering
fits `budget - reserve_output`.

The search runs on cached per-piece token counts (the sum of the pieces
approximates the count of their concatenation), then the chosen text is
counted once exactly and the cutoff steps up while that exact count is over the
limit (bisecting back with exact counts if a step went too far), so the budget
holds for the real tokenizer. The renderer knows no tokenizer: it is handed a
counting function.

The exact count is the costly step on the keystroke path (llama.cpp tokenizes
~2 KB per ms), and consecutive prompts differ in a line or two. Renders that
name a `basis` are therefore counted from the previous render of that basis:
the text is diffed against it, and only windows around the changed regions are
tokenized, old and new, with two unchanged non-blank lines of context on each
side; the count moves by the windows' difference (`delta_count.py`).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import NamedTuple, Protocol

import attrs

from .delta_count import CountFn, changed_regions, delta_count, diff_windows

__all__ = [
    "Component",
    "PromptTooLargeError",
    "RenderResult",
    "Renderer",
    "TokenizerLike",
    "changed_regions",
    "delta_count",
    "diff_windows",
    "file_lines",
    "group",
    "render",
    "text",
]

_STICKY_SERIES = 1024  # sticky series remembered (LRU)
_BASES = 64  # reference texts remembered for incremental counts (LRU)
_WINDOWS = 256  # token counts of diff windows remembered (LRU)


class TokenizerLike(Protocol):
    """Structurally `lowentropy.models.types.Tokenizer` (not imported: prompts is pure)."""

    @property
    def exact(self) -> bool: ...

    def count(self, text: str) -> int: ...


@attrs.frozen(kw_only=True)
class Component:
    """One node of a prompt tree: its own `text` is emitted before its children.

    `priority=None` inherits the parent's (always kept at the root).
    `stable=None` inherits the parent's flag; stable components are the ones
    that do not change between keystrokes, and the leading run of them forms
    `RenderResult.stable_prefix`.
    """

    text: str = ""
    priority: int | None = None
    stable: bool | None = None
    children: tuple[Component, ...] = ()


def text(s: str, *, priority: int | None = None, stable: bool | None = None) -> Component:
    """A leaf component."""
    return Component(text=s, priority=priority, stable=stable)


def group(
    *children: Component | Iterable[Component],
    priority: int | None = None,
    stable: bool | None = None,
) -> Component:
    """A component made of children (iterables of components are flattened one level)."""
    flat: list[Component] = []
    for child in children:
        if isinstance(child, Component):
            flat.append(child)
        else:
            flat.extend(child)
    return Component(priority=priority, stable=stable, children=tuple(flat))


def file_lines(
    lines: Sequence[str],
    cursor_line: int,
    *,
    top: int = 0,
    near: int = 8,
    block: int = 16,
    slope_above: int = 1,
    slope_below: int = 1,
    mark_stable: bool = True,
    first: int = 0,
) -> list[Component]:
    """One component per line: the cursor line gets `top`, others less by distance.

    Lines within `near` lines of the cursor get `top - slope * distance`, one
    level each. Lines further away are grouped into blocks of `block` lines,
    aligned to absolute line numbers (not to the cursor), and a block shares one
    priority, that of its line nearest the cursor. Why: while the user types on
    one line the prompt grows a token every few keystrokes; with one level per
    line the top of the window would move down a line each time, and every
    move changes the prompt's first tokens, which discards the backend's whole
    KV prefix cache. With aligned blocks the window moves in whole blocks, so
    it moves rarely, and a block boundary stays put when the cursor moves to a
    neighbouring line.

    With `mark_stable`, the lines of the aligned blocks that end before the
    near zone above the cursor are marked stable (they do not change while the
    user types near the cursor); all other lines are volatile.

    `lines` may be a slice of a file that starts at absolute line `first`
    (`cursor_line` is absolute too): blocks stay aligned to the file.
    """
    if near < 0 or block < 1:
        raise ValueError("near must be >= 0 and block >= 1")
    stable_end = max(0, (cursor_line - near) // block * block)
    out: list[Component] = []
    for i, line in enumerate(lines, start=first):
        prio = line_priority(
            i,
            cursor_line,
            top=top,
            near=near,
            block=block,
            slope=slope_above if i < cursor_line else slope_below,
        )
        out.append(Component(text=line, priority=prio, stable=mark_stable and i < stable_end))
    return out


def line_priority(
    line: int, cursor_line: int, *, top: int, near: int, block: int, slope: int
) -> int:
    """The priority `file_lines` gives to `line` (see there)."""
    distance = abs(line - cursor_line)
    if distance <= near:
        return top - slope * distance
    # Distance of the block's line nearest the cursor, counting only far lines.
    start = line // block * block
    if line < cursor_line:
        nearest = min(start + block - 1, cursor_line - near - 1)
        return top - slope * (cursor_line - nearest)
    nearest = max(start, cursor_line + near + 1)
    return top - slope * (nearest - cursor_line)


class PromptTooLargeError(ValueError):
    """Even the highest-priority content does not fit the budget."""

    def __init__(self, *, needed: int, budget: int, reserve_output: int) -> None:
        self.needed = needed
        self.budget = budget
        self.reserve_output = reserve_output
        super().__init__(
            f"prompt does not fit: its highest-priority content alone needs {needed} tokens, "
            f"but only {budget - reserve_output} are available "
            f"(budget {budget} - reserve_output {reserve_output})"
        )


@attrs.frozen(kw_only=True)
class RenderResult:
    text: str
    tokens: int  # exact count of `text` by the renderer's counting function
    cutoff: int | None  # lowest priority kept; None when only always-kept pieces remain
    included: int  # non-empty pieces kept
    dropped: int  # non-empty pieces cut
    stable_prefix: str  # the leading run of stable pieces: route and warm on it
    exact: bool  # False when the counting function is a character estimate


class _Piece(NamedTuple):
    text: str
    priority: float  # math.inf for always-kept pieces
    stable: bool


def _flatten(root: Component | Sequence[Component]) -> list[_Piece]:
    roots = (root,) if isinstance(root, Component) else tuple(root)
    out: list[_Piece] = []
    # Iterative depth-first walk in output order: (component, inherited priority, stable).
    stack: list[tuple[Component, float, bool]] = [(c, math.inf, False) for c in reversed(roots)]
    while stack:
        comp, parent_prio, parent_stable = stack.pop()
        prio = parent_prio if comp.priority is None else min(parent_prio, comp.priority)
        stable = parent_stable if comp.stable is None else comp.stable
        if comp.text:
            out.append(_Piece(comp.text, prio, stable))
        for child in reversed(comp.children):
            stack.append((child, prio, stable))
    return out


class Renderer:
    """Renders component trees, caching per-piece token counts across calls.

    Keep one per tokenizer for the life of the server: while the user types,
    nearly every piece of the next prompt is already in the cache, sticky
    series (see `render`) remember their last cutoff, and renders with a
    `basis` are counted from the previous one. Thread-safe.

    `incremental` (default: `exact`) allows counting by difference
    (`delta_count`); turn it off for a counting function that is not a
    tokenizer whose merges stay within a line or two.
    """

    def __init__(
        self,
        count: CountFn,
        *,
        exact: bool = True,
        cache_size: int = 16384,
        incremental: bool | None = None,
    ) -> None:
        self._count = count
        self.exact = exact
        self.incremental = exact if incremental is None else incremental
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # The last cutoff of each sticky series (see `render`).
        self._sticky: OrderedDict[Hashable, float] = OrderedDict()
        # The last text and its exact count of each basis (see `render`).
        self._bases: OrderedDict[Hashable, tuple[str, int]] = OrderedDict()
        # Counts of recent diff windows: a keystroke's new window is the next one's old.
        self._windows: OrderedDict[str, int] = OrderedDict()
        self.full_counts = 0  # exact counts of a whole text (the rest were by difference)

    @classmethod
    def for_tokenizer(cls, tokenizer: TokenizerLike, *, cache_size: int = 16384) -> Renderer:
        """A renderer over an object with `count(text)` and `exact` (e.g. a models Tokenizer)."""
        return cls(tokenizer.count, exact=tokenizer.exact, cache_size=cache_size)

    def count_exact(self, text: str) -> int:
        """Count uncached: final texts differ on every keystroke and would only evict pieces."""
        return self._count(text)

    def count_piece(self, text: str) -> int:
        with self._lock:
            n = self._cache.get(text)
            if n is not None:
                self._cache.move_to_end(text)
                self.hits += 1
                return n
        n = self._count(text)
        with self._lock:
            self.misses += 1
            self._cache[text] = n
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return n

    def _count_window(self, text: str) -> int:
        with self._lock:
            n = self._windows.get(text)
            if n is not None:
                self._windows.move_to_end(text)
                return n
        n = self._count(text)
        with self._lock:
            self._windows[text] = n
            if len(self._windows) > _WINDOWS:
                self._windows.popitem(last=False)
        return n

    def _count_text(self, text: str, basis: tuple[str, int] | None) -> int:
        """The exact count of a candidate text, by difference from `basis` when allowed."""
        if basis is not None and self.incremental:
            n = delta_count(basis[0], basis[1], text, self._count_window)
            if n is not None:
                return n
        with self._lock:
            self.full_counts += 1
        return self.count_exact(text)

    def _at(
        self,
        pieces: list[_Piece],
        levels: list[float],
        i: int,
        basis: tuple[str, int] | None,
    ) -> tuple[list[_Piece], str, int]:
        """The pieces kept at level index `i`, their text and its exact count."""
        cutoff = levels[i] if levels else math.inf
        kept = [p for p in pieces if p.priority >= cutoff]
        out = "".join(p.text for p in kept)
        return kept, out, self._count_text(out, basis)

    def render(
        self,
        root: Component | Sequence[Component],
        *,
        budget: int,
        reserve_output: int = 0,
        sticky: Hashable | None = None,
        basis: Hashable | None = None,
    ) -> RenderResult:
        """Render `root` within `budget - reserve_output` tokens (exactly, by `count`).

        `sticky` names a series of renders of one evolving prompt (e.g. a
        document, its cursor line and a template). Within a series the cutoff
        keeps its previous value while that still fits exactly, and moves down
        only when the estimates leave a margin: a token count does not grow
        monotonically while typing ("attri" is more tokens than "attrib"), and
        without this the window's top would flap between two blocks, and each
        flap discards the backend's KV prefix cache.

        `basis` names renders whose texts are alike (e.g. one document's prompts
        with one template and budget, whatever the cursor line): the exact count
        is taken by difference from the previous render of the same basis, which
        tokenizes a few lines instead of the whole prompt (when `incremental`).
        """
        result = self._render(
            _flatten(root), budget=budget, reserve_output=reserve_output, sticky=sticky, basis=basis
        )
        assert result is not None  # only a partial render can come back empty
        return result

    def _render(
        self,
        pieces: list[_Piece],
        *,
        budget: int,
        reserve_output: int,
        sticky: Hashable | None,
        basis: Hashable | None,
        partial: bool = False,
    ) -> RenderResult | None:
        """`render` over flat pieces. `partial` says more pieces exist, ranked below all
        of these: None (and no state changed) when the estimates fit every piece here,
        or the sticky cutoff is below them all, since some of those others would be
        kept; the caller supplies more and renders again. Otherwise the result is the
        one the whole set of pieces would give (but for `dropped`)."""
        limit = budget - reserve_output
        # Distinct priorities, highest first; always-kept pieces form the first level.
        by_level: dict[float, list[_Piece]] = {}
        for p in pieces:
            by_level.setdefault(p.priority, []).append(p)
        levels = sorted(by_level, reverse=True)
        # Cumulative estimated cost of keeping levels[0..i]. Counting stops at the
        # first level that overflows: lower levels can never be kept, so a long
        # file's far lines are never tokenized. `sums` is increasing, so the
        # lowest fitting cutoff is a bisection over it.
        sums: list[int] = []
        running = 0
        for level in levels:
            running += sum(self.count_piece(p.text) for p in by_level[level])
            sums.append(running)
            if running > limit:
                break
        previous = None if sticky is None else self._sticky.get(sticky)
        if partial and (running <= limit or (previous is not None and previous < levels[-1])):
            return None  # some of the pieces not given would be kept
        reference = None
        if basis is not None and self.incremental:
            with self._lock:
                reference = self._bases.get(basis)
        # Index of the lowest level whose estimate fits (at least the top one).
        i = max(0, bisect.bisect_right(sums, limit) - 1)
        at: tuple[list[_Piece], str, int] | None = None
        if previous is not None and levels:
            # Index of the previous cutoff among this render's levels.
            j = max(0, bisect.bisect_right([-level for level in levels], -previous) - 1)
            if j < i and sums[i] > limit - max(4, limit // 50):
                i = j  # more room, but not enough to be sure: stay
            elif j > i:
                attempt = self._at(pieces, levels, j, reference)
                if attempt[2] <= limit:  # the estimate says shrink; the exact count says fits
                    i, at = j, attempt
        kept, out, tokens = at if at is not None else self._at(pieces, levels, i, reference)
        over = None  # lowest index known (exactly) to be over the limit
        while tokens > limit:
            if i == 0:
                raise PromptTooLargeError(
                    needed=tokens, budget=budget, reserve_output=reserve_output
                )
            over = i
            # Step up at least as far as the estimates say the overshoot needs.
            target = sums[i] - (tokens - limit)
            i = min(i - 1, max(bisect.bisect_right(sums, target, 0, i) - 1, 0))
            kept, out, tokens = self._at(pieces, levels, i, reference)
        # The estimates underestimated (rare: a piece's sum usually exceeds the
        # whole's count). The jump may have gone too far: bisect back down
        # between the fitting level and the failing one with exact counts.
        while over is not None and over - i > 1:
            mid = (i + over) // 2
            attempt = self._at(pieces, levels, mid, reference)
            if attempt[2] <= limit:
                i, (kept, out, tokens) = mid, attempt
            else:
                over = mid
        cutoff = levels[i] if levels else math.inf
        with self._lock:
            if sticky is not None:
                self._sticky[sticky] = cutoff
                self._sticky.move_to_end(sticky)
                if len(self._sticky) > _STICKY_SERIES:
                    self._sticky.popitem(last=False)
            if basis is not None and self.incremental:
                self._bases[basis] = (out, tokens)
                self._bases.move_to_end(basis)
                if len(self._bases) > _BASES:
                    self._bases.popitem(last=False)
        stable_prefix = []
        for p in kept:
            if not p.stable:
                break
            stable_prefix.append(p.text)
        return RenderResult(
            text=out,
            tokens=tokens,
            cutoff=None if math.isinf(cutoff) else int(cutoff),
            included=len(kept),
            dropped=len(pieces) - len(kept),
            stable_prefix="".join(stable_prefix),
            exact=self.exact,
        )


def render(
    root: Component | Sequence[Component],
    *,
    budget: int,
    reserve_output: int,
    count: CountFn,
    exact: bool = True,
) -> RenderResult:
    """Render once with a throwaway cache; keep a `Renderer` to reuse counts across calls."""
    return Renderer(count, exact=exact).render(root, budget=budget, reserve_output=reserve_output)
