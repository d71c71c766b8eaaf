"""Sketches the way chat models write them: abbreviated unchanged lines, whitespace drift, and
the chat-style dev set as a whole (never a wrong edit).

Data: `apply_chat_devset.py` (standard-library functions edited and rendered in each form)
and `subprocess.py`, `urllib/parse.py` and `json/encoder.py` of the standard library, read
from disk at test time.
"""

from __future__ import annotations

import functools
import subprocess
import sysconfig
from pathlib import Path

import pytest
from apply_chat_devset import FORMS, chat_cases
from apply_devset import Case

from lowentropy.server.apply import is_marker, plan_apply, verify_rewrite

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SUBPROCESS = Path(subprocess.__file__).read_text(encoding="utf-8")


@functools.cache
def _part(part: str) -> tuple[Case, ...]:
    return tuple(chat_cases(part))


def _function(source: str, header: str) -> list[str]:
    """The lines of the top-level function whose header starts with `header`."""
    lines = source.split("\n")
    start = next(k for k, line in enumerate(lines) if line.startswith(header))
    end = next(k for k in range(start + 1, len(lines)) if lines[k][:1] not in ("", " "))
    while not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


@pytest.mark.parametrize("part", ["dev", "held_out"])
def test_the_chat_devset_never_gets_a_wrong_verified_edit(part: str) -> None:
    cases = _part(part)
    assert {c.tags[1] for c in cases} == set(FORMS)
    exact = 0
    for case in cases:
        plan = plan_apply(case.original, case.sketch, language="python")
        assert plan.result in (case.expected, None), case.name
        if plan.result is None:
            assert plan.reason, case.name
        exact += plan.result == case.expected
    assert exact >= 0.5 * len(cases)


def _check_called(lines: list[str]) -> tuple[str, str, str]:
    """The sketch's change: one line inserted after `if input is not None:` in run()."""
    at = lines.index("    if input is not None:")
    new = "        _check_called()"
    return lines[at], new, "\n".join([*lines[: at + 1], new, *lines[at + 1 :]])


def test_an_abbreviated_docstring_and_long_string_are_anchors() -> None:
    lines = _function(SUBPROCESS, "def run(")
    at, new, _ = _check_called(lines)
    sketch = "\n".join(
        [
            *lines[:2],
            '    """..."""',
            at,
            new,
            "        if kwargs.get('stdin') is not None:",
            "            raise ValueError('...')",
            "        kwargs['stdin'] = PIPE",
            "    # ... existing code ...",
        ]
    )
    plan = plan_apply(SUBPROCESS, sketch + "\n", language="python")
    assert plan.result == SUBPROCESS.replace(f"{at}\n", f"{at}\n{new}\n", 1)


def test_a_dropped_trailing_comment_is_an_anchor_and_the_comment_stays() -> None:
    lines = _function(SUBPROCESS, "def run(")
    bare = "        except:"
    kill = lines.index("        except:  # Including KeyboardInterrupt, communicate handled that.")
    sketch = "\n".join(
        [
            lines[0],
            "    # ... existing code ...",
            bare,
            "            process.kill()",
            "            _log_kill(process)",
            "            # We don't call process.wait() as .__exit__ does that for us.",
            "    # ... existing code ...",
        ]
    )
    plan = plan_apply(SUBPROCESS, sketch + "\n", language="python")
    kept = "\n".join(lines[kill : kill + 2])
    assert plan.result == SUBPROCESS.replace(kept, kept + "\n            _log_kill(process)", 1)


def test_an_abbreviated_one_line_signature_is_an_anchor() -> None:
    source = (STDLIB / "urllib/parse.py").read_text(encoding="utf-8")
    header = "def quote(string, safe='/', encoding=None, errors=None):"
    assert header in source
    first = "    if isinstance(string, str):"
    sketch = f"def quote(string, safe='/', ...):\n    # ... existing code ...\n{first}\n"
    sketch += "        string = string.strip()\n        # ... existing code ...\n"
    plan = plan_apply(source, sketch, language="python")
    at = source.index(f"{first}\n", source.index(header)) + len(first) + 1
    assert plan.result == source[:at] + "        string = string.strip()\n" + source[at:]


def test_an_ellipsis_that_is_code_is_written() -> None:
    original = "def shape(xs):\n    return len(xs)\n"
    sketch = "def shape(xs: tuple[int, ...]):\n    return len(xs)\n"
    plan = plan_apply(original, sketch, language="python")
    assert plan.result == sketch


def _plan_run(extra: str, pad: str = "") -> tuple[str | None, str]:
    """run()'s header, a marker, the changed lines, `extra`, a marker; each line ends with
    `pad`. Returns the plan's result and the expected file."""
    lines = _function(SUBPROCESS, "def run(")
    at, new, expected_run = _check_called(lines)
    shown = [lines[0], "    # ... existing code ...", at, new, extra, "    # ... existing code ..."]
    plan = plan_apply(SUBPROCESS, "".join(line + pad + "\n" for line in shown), language="python")
    assert plan.result is not None or plan.reason
    return plan.result, SUBPROCESS.replace("\n".join(lines), expected_run, 1)


def test_an_abbreviation_that_fits_no_line_is_never_written() -> None:
    result, _ = _plan_run("        raise SomethingElse('...')")
    assert result is None


def test_a_model_rewrite_that_copies_an_abbreviation_fails() -> None:
    region = "def f(x):\n    raise ValueError('a long message about x')\n"
    update = "def f(x):\n    raise ValueError('...')\n    # ... existing code ...\n"
    check = verify_rewrite(region, update, "def f(x):\n    raise ValueError('...')\n")
    assert not check.ok and check.reason and "abbreviation" in check.reason
    assert verify_rewrite(region, update, region).ok


def test_a_docstring_stub_is_a_marker() -> None:
    assert is_marker('    """..."""') and is_marker("'''…'''")
    assert not is_marker('    """Return the value..."""')


def test_trailing_whitespace_in_a_sketch_is_not_an_edit() -> None:
    for pad in (" ", "\t", "   "):
        result, expected = _plan_run("        if kwargs.get('stdin') is not None:", pad)
        assert result == expected, repr(pad)


def test_a_block_that_fits_nowhere_is_named_by_its_first_lines() -> None:
    lines = _function(SUBPROCESS, "def run(")
    sketch = f"{lines[0]}\n    # ... existing code ...\n    frobnicate(popenargs)\n"
    sketch += "    spin(42)\n    twirl()\n    stop()\n"
    plan = plan_apply(SUBPROCESS, sketch, language="python")
    assert plan.result is None and plan.regions  # the model may still place it
    assert (
        plan.reason
        and (
            "sketch lines 3 ('frobnicate(popenargs)'), 4 ('spin(42)'), 5 ('twirl()') and 1 more "
            "match no line of the original"
        )
        in plan.reason
    )


def test_a_model_rewrite_that_writes_a_marker_as_code_fails() -> None:
    region = "def f(x):\n    y = x\n    return y\n"
    update = "def f(x):\n    # ... existing code ...\n    return y + 1\n"
    written = "def f(x):\n    # ... existing code ...\n    y = x\n    return y + 1\n"
    check = verify_rewrite(region, update, written)
    assert not check.ok and check.reason and "elision markers" in check.reason
    assert verify_rewrite(region, update, region.replace("return y", "return y + 1")).ok
