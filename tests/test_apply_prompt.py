"""The apply prompt and its answer parser (pure; no model)."""

from __future__ import annotations

import pytest

from lowentropy.prompts.apply import (
    UpdatedCodeStream,
    apply_chat_request,
    apply_completion_request,
    apply_format_names,
    get_apply_format,
    parse_updated_code,
    render_apply,
)
from lowentropy.prompts.fim import UnknownTemplateError

ORIGINAL = "    def f(self, x):\n        if x:\n            return 1\n        return 2\n"
SKETCH = "    def f(self, x):\n        # ... existing code ...\n        return 3\n"


def test_chat_request_puts_the_code_first_and_predicts_it() -> None:
    req = apply_chat_request(ORIGINAL, SKETCH, instruction="return 3", max_tokens=99)
    system, user = req.messages
    assert system.role == "system" and user.role == "user"
    assert user.content.startswith("<code>\ndef f(self, x):\n")  # dedented, first
    assert user.content.index("<code>") < user.content.index("<update>")
    assert "Instruction: return 3" in user.content
    assert req.prediction == "def f(self, x):\n    if x:\n        return 1\n    return 2\n"
    assert req.stop == ("</updated-code>",) and req.max_tokens == 99
    assert req.stable_prefix == system.content


def test_completion_request_ends_inside_the_answer() -> None:
    req = apply_completion_request(ORIGINAL, SKETCH, format="fastapply")
    assert req.prompt.endswith("</update>\n\nProvide the complete updated code.\n<updated-code>\n")
    assert f"<code>{ORIGINAL}</code>" in req.prompt  # fastapply keeps the indentation
    assert req.prediction == ORIGINAL
    assert req.max_tokens > len(ORIGINAL) // 4


def test_unknown_format_lists_the_valid_ones() -> None:
    assert set(apply_format_names()) >= {"lowentropy", "fastapply"}
    with pytest.raises(UnknownTemplateError, match="lowentropy"):
        get_apply_format("nope")
    assert render_apply("x\n", "y\n").indent == ""


@pytest.mark.parametrize(
    "answer",
    [
        "<updated-code>\ndef f(self, x):\n    return 3\n</updated-code>",
        "Sure!\n<updated-code>\n```python\ndef f(self, x):\n    return 3\n```\n</updated-code>",
        "def f(self, x):\n    return 3\n</updated-co",  # cut short, no opening tag
        "```\ndef f(self, x):\n    return 3\n```",
        "<updated-code>\n    def f(self, x):\n        return 3",  # already indented
    ],
)
def test_parse_restores_indentation_and_final_newline(answer: str) -> None:
    assert parse_updated_code(answer, ORIGINAL) == "    def f(self, x):\n        return 3\n"


def test_parse_without_original_and_crlf() -> None:
    assert parse_updated_code("<updated-code>\na = 1\n</updated-code>") == "a = 1\n"
    assert parse_updated_code("<updated-code></updated-code>") == ""
    assert parse_updated_code("a = 1\nb = 2\n", "a = 0\r\nb = 0\r\n") == "a = 1\r\nb = 2\r\n"
    assert parse_updated_code("a = 1\n", "a = 0") == "a = 1"


def test_stream_holds_back_tags() -> None:
    s = UpdatedCodeStream()
    out = [s.feed(p) for p in ["<upd", "ated-code>\ndef", " f():\n  x</upd", "ated-code> tail"]]
    assert out == ["", "def", " f():\n  x", ""]
    s = UpdatedCodeStream()
    assert "".join(s.feed(p) for p in ["a = ", "1\n<", "/updated-code>"]) == "a = 1\n"


def test_stream_puts_back_the_region_indentation_as_it_goes() -> None:
    """A `dedent` format's answer streams at the region's indentation, piece by piece."""
    answer = "<updated-code>\ndef f(self):\n    if x:\n\n        return 3\n</updated-code>"
    pieces = [answer[k : k + 3] for k in range(0, len(answer), 3)]  # splits lines mid-way
    s = UpdatedCodeStream(indent="    ")
    streamed = "".join(s.feed(p) for p in pieces)
    assert streamed == "    def f(self):\n        if x:\n\n            return 3\n"
    # the whole answer parses to the same text
    original = "    def f(self):\n        return 1\n"
    assert parse_updated_code(answer, original) == streamed
