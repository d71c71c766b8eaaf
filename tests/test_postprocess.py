"""Post-processing of raw continuations (pure functions)."""

from __future__ import annotations

from lowentropy.server.postprocess import (
    CursorContext,
    block_finished,
    heal_prompt,
    postprocess,
    unheal,
)


def ctx(prefix: str, suffix: str = "", **kw: object) -> CursorContext:
    return CursorContext(line_prefix=prefix, line_suffix=suffix, **kw)  # type: ignore[arg-type]


def test_mid_line_suggestions_are_one_line() -> None:
    assert postprocess("a, b)\n    more()", ctx("call(", ")")) == "a, b"


def test_block_ends_at_dedent() -> None:
    raw = "total = 0\n    for x in xs:\n        total += x\n    return total\nprint('done')\n"
    assert (
        postprocess(raw, ctx("    "))
        == "total = 0\n    for x in xs:\n        total += x\n    return total"
    )


def test_block_ends_at_two_blank_lines_and_max_lines() -> None:
    assert postprocess("a = 1\n\n\nb = 2", ctx("")) == "a = 1"
    raw = "\n".join(f"x{i} = {i}" for i in range(20))
    assert postprocess(raw, ctx("", max_lines=3)).count("\n") == 2


def test_overlap_with_the_text_after_the_cursor_is_dropped() -> None:
    assert postprocess('"name"]', ctx("d[", "]")) == '"name"'
    assert postprocess("x + 1):", ctx("if (", "):")) == "x + 1"


def test_unmatched_closing_brackets_are_cut() -> None:
    assert postprocess("value) + other", ctx("x = ")) == "value"
    assert postprocess("f(a)[0]", ctx("y = ")) == "f(a)[0]"
    assert postprocess("')' + s)", ctx("print(")) == "')' + s)"  # a bracket in a string is text


def test_whitespace_only_is_nothing() -> None:
    assert postprocess("   \n  \n", ctx("x = ")) == ""
    assert postprocess("", ctx("")) == ""


def test_block_finished_lets_generation_stop_early() -> None:
    assert block_finished("abc\n", ctx("f(", ")"))
    assert not block_finished("abc", ctx("f(", ")"))
    assert block_finished("a = 1\n    b = 2\nc = 3\nd", ctx("    "))
    assert not block_finished("a = 1\n    b = 2", ctx("    "))


# ---- stopping where the text below continues ------------------------------------------


def test_multiline_stops_before_the_line_below_the_cursor() -> None:
    raw = "total = 0\n    for x in xs:\n        total += x\n    return total\n"
    c = ctx("    ", next_line="    return total")
    assert postprocess(raw, c) == "total = 0\n    for x in xs:\n        total += x"
    assert block_finished(raw, c)


def test_a_line_the_text_below_already_has_is_no_suggestion() -> None:
    assert postprocess("return total", ctx("    ", next_line="    return total")) == ""


def test_a_line_that_differs_from_the_line_below_stays() -> None:
    c = ctx("    ", next_line="    return total")
    assert postprocess("total += 1\n    return total + 1", c) == "total += 1\n    return total + 1"


# ---- token healing ---------------------------------------------------------------------


def test_heal_prompt_splits_trailing_indentation_only() -> None:
    assert heal_prompt("<mid>def f():\n    ") == ("<mid>def f():\n", "    ")
    assert heal_prompt("x = 1\n") == ("x = 1\n", "")
    assert heal_prompt("a =\t ") == ("a =", "\t ")


def test_unheal_strips_the_retyped_whitespace_and_refuses_other_text() -> None:
    assert unheal("    return x", "    ") == "return x"
    assert unheal("  ", "    ") == ""  # not all of it yet
    assert unheal("\n", "    ") is None  # a continuation that does not fit what was typed
    assert unheal("  return", "    ") is None  # a shallower line than the one typed
    assert unheal("return", "") == "return"


# ---- where a suggestion may run onto more lines ----------------------------------------


def test_finishing_a_line_of_code_is_one_line() -> None:
    raw = "!= WRITE:\n            raise OSError\n        self.flush()"
    assert postprocess(raw, ctx("        if self.mode ")) == "!= WRITE:"
    assert block_finished("!= WRITE:\n", ctx("        if self.mode "))


def test_a_line_that_opens_a_block_or_bracket_may_run_on() -> None:
    body = "\n    total = sum(xs)\n    return total"
    assert postprocess(body, ctx("def f(xs):")) == body
    assert postprocess("\n    1,\n    2,", ctx("xs = [")) == "\n    1,\n    2,"


def test_a_header_whose_body_is_already_below_is_one_line() -> None:
    c = ctx("            ", next_line="                num_blanks += 1")
    assert (
        postprocess("elif s.startswith('+'):\n                yield s", c)
        == "elif s.startswith('+'):"
    )


def test_a_markdown_fence_ends_the_code() -> None:
    assert postprocess("print(d)\n```", ctx("    ")) == "print(d)"
