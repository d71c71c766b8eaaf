"""The pure core of Apply: the dev set through the deterministic path, verification, edits.

Data: `apply_devset.py` (stdlib sources and `data/apply/*.js|ts`).
"""

from __future__ import annotations

import functools

import pytest
from apply_devset import Case, cases
from hypothesis import given, settings
from hypothesis import strategies as st

from lowentropy.server.apply import (
    DriftGuard,
    Region,
    minimal_edits,
    parse_sketch,
    plan_apply,
    splice,
    unified_diff,
    verify,
    verify_rewrite,
)
from lowentropy.server.documents import utf16_to_codepoints


@functools.cache
def devset() -> tuple[Case, ...]:
    return tuple(cases())


def apply_edits(original: str, edits: list) -> str:  # type: ignore[type-arg]
    """Apply LSP-style edits (UTF-16 columns, positions in the original) back to front."""
    lines = original.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(line: int, character: int) -> int:
        if line >= len(lines):
            return len(original)
        return starts[line] + utf16_to_codepoints(lines[line], character)

    text = original
    for edit in sorted(edits, key=lambda e: (e.start_line, e.start_char_utf16), reverse=True):
        a = offset(edit.start_line, edit.start_char_utf16)
        b = offset(edit.end_line, edit.end_char_utf16)
        text = text[:a] + edit.new_text + text[b:]
    return text


def test_devset_is_big_and_varied() -> None:
    all_cases = devset()
    tags = {t for c in all_cases for t in c.tags}
    assert len(all_cases) >= 100
    for needed in (
        "rename", "add-parameter", "insert-block", "delete-block", "change-condition",
        "two-functions", "markers", "whole", "whole-reindented", "markers-reindented",
        "signature", "crlf", "non-ascii", "nowhere", "10k-lines", "tabs",
    ):  # fmt: skip
        assert needed in tags, needed
    assert {c.language for c in all_cases} >= {"python", "javascript", "typescript"}
    assert len({c.name for c in all_cases}) == len(all_cases)


def test_devset_deterministic_path() -> None:
    """Most cases place deterministically and exactly; almost none place wrongly."""
    exact = wrong = 0
    for case in devset():
        plan = plan_apply(
            case.original, case.sketch, language=case.language, selection=case.selection
        )
        if case.expected is None:
            assert plan.result is None and not plan.regions, case.name
            assert plan.reason and "matches nowhere" in plan.reason
            exact += 1
            continue
        if plan.result is None:
            # deferred (the model gets regions), or tied places: refused, no rewrite provable
            assert plan.reason and (plan.regions or "equally well" in plan.reason), case.name
            continue
        if plan.result == case.expected:
            exact += 1
        else:
            wrong += 1
    assert exact / len(devset()) >= 0.98
    assert wrong == 0  # a wrong result passes verification: the file is corrupted silently


@pytest.mark.parametrize(
    "tag", ["crlf", "non-ascii", "no-final-newline", "10k-lines", "tabs", "selection"]
)
def test_special_cases_are_exact(tag: str) -> None:
    for case in [c for c in devset() if tag in c.tags][:6]:
        plan = plan_apply(
            case.original, case.sketch, language=case.language, selection=case.selection
        )
        assert plan.result == case.expected, case.name


def test_deterministic_results_verify_splice_and_edit_back() -> None:
    for case in devset()[::2]:
        plan = plan_apply(
            case.original, case.sketch, language=case.language, selection=case.selection
        )
        if plan.result is None:
            continue
        check = verify(
            case.original, plan.result, case.sketch, language=case.language, regions=plan.regions
        )
        assert check.ok, (case.name, check.reason)
        # the per-region check a model's rewrite must pass holds for every exact merge too
        for region in plan.regions:
            own = verify_rewrite(region.original, region.update, region.merged or "")
            assert own.ok, (case.name, own.reason)
        rewrites = [(r, r.merged or "") for r in plan.regions]
        assert splice(case.original, rewrites) == plan.result, case.name
        assert apply_edits(case.original, minimal_edits(case.original, plan.result)) == plan.result


# A merge that does not compile (the body at the header's depth): the model may re-indent it.
STORE = (
    "class Store:\n    def get(self, key, default=None):\n"
    "        return self.data.get(key, default)\n\n    def size(self):\n        return 1\n"
)
STORE_SKETCH = "def get(self, key, default=None):\nreturn default\n"
STORE_FIXED = STORE.replace("return self.data.get(key, default)", "return default")


def test_model_regions_carry_the_sketch_and_splice_back() -> None:
    """A deferred plan's regions cover the change: putting the expected text back is exact."""
    deferred = 0
    extra = [("store", STORE, STORE_SKETCH, STORE_FIXED, "python")]
    for case in [(c.name, c.original, c.sketch, c.expected, c.language) for c in devset()] + extra:
        name, original, sketch, expected, language = case
        if expected is None:
            continue
        plan = plan_apply(original, sketch, language=language)
        if plan.result is not None or not plan.regions:
            continue
        deferred += 1
        assert plan.regions
        for region in plan.regions:
            assert region.merged is None
            literal = [ln.text.strip() for ln in parse_sketch(region.update).lines if not ln.marker]
            assert any(literal), name
        if len(plan.regions) == 1:
            region = plan.regions[0]
            tail = len(original.split("\n")) - region.end_line
            expected_lines = expected.split("\n")
            new = "\n".join(expected_lines[region.start_line : len(expected_lines) - tail])
            spliced = splice(original, [(region, new + "\n" if new else "")])
            assert spliced == expected, name
    assert deferred >= 1


# -- verify catches corruption ---------------------------------------------------------
ORIGINAL = """import os


def area(width, height):
    \"\"\"The area.\"\"\"
    if width < 0:
        raise ValueError("width")
    return width * height


def perimeter(width, height):
    return 2 * (width + height)
"""
SKETCH = """def area(width, height):
    # ... existing code ...
    if width <= 0:
        raise ValueError("width")
    # ... existing code ...
"""


def _plan() -> tuple[str, tuple[Region, ...]]:
    plan = plan_apply(ORIGINAL, SKETCH, language="python")
    assert plan.result is not None
    assert "if width <= 0:" in plan.result and "if width < 0:" not in plan.result
    return plan.result, plan.regions


def test_verify_accepts_the_merge() -> None:
    result, regions = _plan()
    assert verify(ORIGINAL, result, SKETCH, language="python", regions=regions).ok


def test_verify_catches_a_missing_sketch_line() -> None:
    result, regions = _plan()
    broken = result.replace('        raise ValueError("width")\n', "")
    check = verify(ORIGINAL, broken, SKETCH, language="python", regions=regions)
    assert not check.ok and check.reason and "sketch line" in check.reason


def test_verify_catches_text_changed_outside_the_regions() -> None:
    result, regions = _plan()
    broken = result.replace("return 2 * (width + height)", "return 2 * width + height")
    check = verify(ORIGINAL, broken, SKETCH, language="python", regions=regions)
    assert not check.ok and check.reason and "changed" in check.reason
    # without regions: an added line that neither file nor sketch has
    check = verify(ORIGINAL, broken, SKETCH, language="python")
    assert not check.ok and check.reason and "neither" in check.reason


def test_verify_catches_a_new_syntax_error() -> None:
    result, regions = _plan()
    broken = result.replace("if width <= 0:", "if width <= 0:\n        x = (")
    sketch = SKETCH.replace("    if width <= 0:\n", "    if width <= 0:\n        x = (\n")
    check = verify(ORIGINAL, broken, sketch, language="python")
    assert not check.ok and check.reason and "does not compile" in check.reason
    # the same text with no grammar to check it passes that check
    assert verify(ORIGINAL, broken, sketch, language=None).ok


def test_verify_compiles_python_where_tree_sitter_sees_no_error() -> None:
    """A body at its header's depth, `return` outside a function: tree-sitter parses both."""
    original = "class Cache:\n    def get(self, key):\n        return self.d[key]\n"
    plan = plan_apply(original, "def get(self, key):\nreturn key\n", language="python")
    assert plan.result is None and plan.reason and "does not compile" in plan.reason
    flat = "class Cache:\n    def get(self, key):\n    return key\n"
    outside = original + "return key\n"
    for result in (flat, outside):
        check = verify(original, result, "return key", language="python")
        assert "does not compile" in (check.reason or ""), check
    # an original that already fails to compile (mid-edit elsewhere) is tree-sitter's to judge
    broken = original + "\ndef later(:\n    pass\n"
    fixed = broken.replace("self.d[key]", "self.d.get(key)")
    assert verify(broken, fixed, "        return self.d.get(key)\n", language="python").ok


def test_verify_catches_lost_line_endings_and_final_newline() -> None:
    crlf = ORIGINAL.replace("\n", "\r\n")
    plan = plan_apply(crlf, SKETCH, language="python")
    assert plan.result is not None and plan.result.count("\r\n") == crlf.count("\r\n")
    assert "\n" not in plan.result.replace("\r\n", "")
    lost = plan.result.replace("\r\n", "\n", 1)
    check = verify(crlf, lost, SKETCH, language="python")
    assert not check.ok and check.reason and "CRLF" in check.reason
    result, regions = _plan()
    check = verify(ORIGINAL, result.rstrip("\n"), SKETCH, language="python", regions=regions)
    assert not check.ok and check.reason and "final newline" in check.reason


def test_verify_catches_mixed_indentation_and_broken_encoding() -> None:
    tabbed = ORIGINAL.replace("    ", "\t")
    result = tabbed.replace("\tif width < 0:", "        if width <= 0:")
    check = verify(tabbed, result, SKETCH, language=None)
    assert not check.ok and check.reason and "spaces" in check.reason
    result, regions = _plan()
    check = verify(ORIGINAL, result.replace("area", "ar\ud800ea", 1), SKETCH, language=None)
    assert not check.ok and check.reason and "unencodable" in check.reason


def test_tabs_file_gets_tabs_from_a_spaces_sketch() -> None:
    tabbed = ORIGINAL.replace("    ", "\t")
    plan = plan_apply(tabbed, SKETCH, language="python")
    assert plan.result == tabbed.replace("\tif width < 0:", "\tif width <= 0:")


# -- sketches ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        "# ... existing code ...", "    // ... existing code ...", "/* ... */", "<!-- ... -->",
        "-- rest of the file unchanged --", "...", "  …", "# rest of the method", "// unchanged",
        "# ... remaining methods ...", "{/* ... existing code ... */}", "# existing code",
    ],
)  # fmt: skip
def test_markers_in_every_comment_syntax(line: str) -> None:
    assert parse_sketch(line + "\n").lines[0].marker


@pytest.mark.parametrize(
    "line",
    ["# compute the area", "x = f(...)", "--count;", "// TODO: handle this", "return ..."],
)
def test_code_and_plain_comments_are_not_markers(line: str) -> None:
    assert not parse_sketch(line + "\n").lines[0].marker


def test_a_comment_of_the_original_is_code_not_a_marker() -> None:
    original = "def f():\n    # the rest of the header\n    return 1\n"
    assert parse_sketch("# the rest of the header\n").lines[0].marker
    assert not parse_sketch("# the rest of the header\n", original).lines[0].marker


def test_sketch_in_a_code_fence() -> None:
    fenced = "```python\n" + SKETCH + "```\n"
    assert plan_apply(ORIGINAL, fenced, language="python").result == _plan()[0]


def test_reindented_method_and_signature_anchor() -> None:
    original = (
        "class Box:\n    def grow(self, by):\n        self.size += by\n"
        "        return self.size\n\n    def shrink(self):\n        self.size -= 1\n"
    )
    sketch = "def grow(self, by, times=1):\n    # ... existing code ...\n"
    plan = plan_apply(original, sketch, language="python")
    assert plan.result == original.replace("grow(self, by)", "grow(self, by, times=1)")
    sketch = "def shrink(self):\n    self.size -= 2\n"
    plan = plan_apply(original, sketch, language="python")
    assert plan.result == original.replace("size -= 1", "size -= 2")


def test_nowhere_gives_a_reason_and_nothing_else() -> None:
    plan = plan_apply(ORIGINAL, "def volume(a, b, c):\n    return a * b * c\n", language="python")
    assert plan.result is None and plan.regions == ()
    assert plan.reason and "matches nowhere" in plan.reason


def test_ambiguous_anchor_is_refused_with_the_places_and_a_selection_decides() -> None:
    """Tied places: no rewrite of one of them is provably the intended edit (a model's pick
    was verified, perhaps at the wrong one), so no model is asked."""
    original = "def a():\n    x = 1\n    return x\n\n\ndef b():\n    x = 1\n    return x\n"
    sketch = "    x = 1\n    y = 2\n    return x\n"
    plan = plan_apply(original, sketch, language="python")
    assert plan.result is None and plan.regions == ()
    assert plan.reason and "equally well at lines 2, 7" in plan.reason, plan.reason
    assert "select the code to change" in plan.reason
    plan = plan_apply(original, sketch, language="python", selection=(6, 8))
    assert plan.result == original.replace(
        "    x = 1\n    return x\n", "    x = 1\n    y = 2\n    return x\n"
    ).replace("    x = 1\n    y = 2\n    return x\n", "    x = 1\n    return x\n", 1)


def test_selection_is_replaced_by_a_sketch_without_markers() -> None:
    plan = plan_apply(ORIGINAL, "if width <= 0:\n    raise ValueError('w')\n", language="python",
                      selection=(5, 7))  # fmt: skip
    assert plan.result == ORIGINAL.replace(
        '    if width < 0:\n        raise ValueError("width")\n',
        "    if width <= 0:\n        raise ValueError('w')\n",
    )


def test_unknown_language_uses_indentation() -> None:
    plan = plan_apply(ORIGINAL, SKETCH, language=None)
    assert plan.result == _plan()[0]


# -- edits and diff ----------------------------------------------------------------------
def test_utf16_columns_with_astral_characters() -> None:
    original = 'name = "a😀b"\nother = 1\n'
    result = 'name = "a😀c"\nother = 1\n'
    (edit,) = minimal_edits(original, result)
    # 'name = "a' is 9 units, the emoji 2 more: 'b' starts at UTF-16 column 11
    assert (edit.start_line, edit.start_char_utf16, edit.end_line, edit.end_char_utf16) == (
        0, 11, 0, 12,
    )  # fmt: skip
    assert edit.new_text == "c"
    assert apply_edits(original, [edit]) == result


def test_edits_never_split_a_crlf() -> None:
    original = "a\r\nb\r\n"
    for result in ("a\r\nb\r\nc\r\n", "a\r\n", "a\nb\r\n", "x\r\nb\r\n"):
        edits = minimal_edits(original, result)
        assert apply_edits(original, edits) == result
        for e in edits:
            for line, char in ((e.start_line, e.start_char_utf16), (e.end_line, e.end_char_utf16)):
                assert char <= len(original.split("\n")[line].rstrip("\r")) if line < 2 else True


_LINE = st.text(alphabet=st.sampled_from(list("ab \t(){}é😀𝔘x=")), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=12),
    ops=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2), _LINE), max_size=4),
    crlf=st.booleans(),
    final=st.booleans(),
)
def test_minimal_edits_reproduce_the_result(
    lines: list[str], ops: list[tuple[int, int, str]], crlf: bool, final: bool
) -> None:
    eol = "\r\n" if crlf else "\n"
    new = list(lines)
    for at, drop, text in ops:
        at = min(at, len(new))
        new[at : at + drop] = [text]
    original = eol.join(lines) + (eol if final and lines else "")
    result = eol.join(new) + (eol if final and new else "")
    edits = minimal_edits(original, result)
    assert apply_edits(original, edits) == result
    spans = [(e.start_line, e.start_char_utf16, e.end_line, e.end_char_utf16) for e in edits]
    assert all(a[2:] <= b[:2] for a, b in zip(spans, spans[1:], strict=False))  # ordered, disjoint


def test_unified_diff_names_the_file() -> None:
    result, _ = _plan()
    diff = unified_diff(ORIGINAL, result, "pkg/geometry.py")
    assert diff.startswith("--- a/pkg/geometry.py\n+++ b/pkg/geometry.py\n@@")
    assert "-    if width < 0:\n+    if width <= 0:\n" in diff
    assert "No newline" in unified_diff("a\n", "b", "f.txt")
    assert unified_diff(ORIGINAL, ORIGINAL, "x.py") == ""


# -- placement decides only on evidence, defers otherwise ---------------------------------
TWIN_EXCEPTS = """def ratio(x):
    try:
        return x.as_integer_ratio()
    except AttributeError:
        pass
    try:
        return (x.numerator, x.denominator)
    except AttributeError:
        msg = f"can't convert {type(x).__name__}"
        raise TypeError(msg)


def other():
    return 1
"""


def test_a_tie_inside_a_function_is_broken_by_the_lines_around_it() -> None:
    """`except AttributeError:` is in the function twice; the nearest one (followed by `pass`)
    used to win, and the renamed lines were added there, beside the ones they rename."""
    sketch = (
        "def ratio(x):\n    # ... existing code ...\n    except AttributeError:\n"
        '        message = f"can\'t convert {type(x).__name__}"\n'
        "        raise TypeError(message)\n\n# ... existing code ...\n"
    )
    plan = plan_apply(TWIN_EXCEPTS, sketch, language="python")
    assert plan.result == TWIN_EXCEPTS.replace("msg = f", "message = f").replace(
        "(msg)", "(message)"
    )


def test_a_tie_nothing_breaks_is_ambiguous() -> None:
    original = "def f(xs):\n    t = 0\n    for x in xs:\n        t += x\n    for x in xs:\n"
    original += "        t += x\n    return t\n"
    sketch = "def f(xs):\n    # ...\n    for x in xs:\n        t += x * 2\n    # ...\n"
    plan = plan_apply(original, sketch, language="python")
    assert plan.result is None and plan.reason and "equally well at lines 3, 5" in plan.reason


def test_verify_catches_changed_lines_added_beside_their_originals() -> None:
    lines = TWIN_EXCEPTS.split("\n")
    new = [
        '        message = f"can\'t convert {type(x).__name__}"',
        "        raise TypeError(message)",
    ]
    wrong = "\n".join(lines[:4] + new + lines[4:])
    sketch = "    except AttributeError:\n" + "\n".join(new) + "\n    # ... existing code ...\n"
    check = verify(TWIN_EXCEPTS, wrong, sketch, language="python")
    assert not check.ok and check.reason and "rename 'msg' to 'message'" in check.reason
    right = TWIN_EXCEPTS.replace("msg = f", "message = f").replace("(msg)", "(message)")
    assert verify(TWIN_EXCEPTS, right, sketch, language="python").ok
    # Renamed copies are fine when the sketch shows the lines they copy (or uses the old name).
    copy = "\n".join(lines[:5] + new + lines[5:])
    shown = "    # ...\n        pass\n" + "\n".join(new + lines[5:10]) + "\n    # ...\n"
    assert verify(TWIN_EXCEPTS, copy, shown, language="python").ok


def test_renamed_line_at_a_block_edge_changes_it_when_the_block_confirms() -> None:
    original = (
        "def auth(self):\n    code = self.send()\n    while code == 334:\n"
        "        raise Loop(\n            'loop'\n            + repr((code, 1))\n        )\n"
        "    if code in (235, 503):\n        return code\n    raise Failed(code)\n\n\n"
        "def other():\n    return 2\n"
    )
    renamed = original.replace("code", "code_value").replace("code_value_", "code_")
    sketch = (
        "def auth(self):\n    # ... existing code ...\n            'loop'\n"
        "            + repr((code_value, 1))\n        )\n    if code_value in (235, 503):\n"
        "        return code_value\n    raise Failed(code_value)\n\n# ... existing code ...\n"
    )
    expected = original.replace("(code, 1)", "(code_value, 1)").replace(
        "    if code in (235, 503):\n        return code\n    raise Failed(code)",
        "    if code_value in (235, 503):\n        return code_value\n    raise Failed(code_value)",
    )
    assert renamed != expected  # the sketch leaves the top of the function alone
    assert plan_apply(original, sketch, language="python").result == expected
    # Nothing after the renamed line to confirm it: a change or an added line? Defer.
    short = "def auth(self):\n    # ... existing code ...\n            'loop'\n"
    short += "            + repr((code_value, 1))\n        # ... existing code ...\n"
    plan = plan_apply(original, short, language="python")
    assert plan.result is None and plan.reason and "may change original line 6" in plan.reason


def test_a_similar_line_is_added_when_the_sketch_still_uses_the_old_name() -> None:
    original = "class P:\n    def __init__(self, x, z):\n        self.x = x\n        self.z = z\n"
    sketch = "class P:\n    def __init__(self, x, y, z):\n        self.x = x\n"
    sketch += "        self.y = y\n        # ... existing code ...\n"
    expected = original.replace("x, z)", "x, y, z)").replace(
        "        self.z = z\n", "        self.y = y\n        self.z = z\n"
    )
    assert plan_apply(original, sketch, language="python").result == expected


def test_typescript_marker_before_a_methods_closing_brace_keeps_it() -> None:
    original = (
        "export class Q {\n    constructor(private readonly limit: number) {\n"
        '        if (limit < 1) {\n            throw new RangeError("limit");\n        }\n'
        "    }\n\n    size(): number {\n        return 0;\n    }\n}\n"
    )
    sketch = (
        "    constructor(private readonly limit: number) {\n        if (!(limit < 1)) {\n"
        '            throw new RangeError("limit");\n        }\n    // ... existing code ...\n'
    )
    plan = plan_apply(original, sketch, language="typescript")
    assert plan.result == original.replace("if (limit < 1)", "if (!(limit < 1))")


def test_typescript_rename_inside_braces() -> None:
    original = (
        'export async function run(job: Job): Promise<string> {\n    let lastError = "";\n'
        "    while (job.attempts < 3) {\n        try {\n            return await job.run();\n"
        "        } catch (err) {\n            lastError = String(err);\n        }\n    }\n"
        "    return lastError;\n}\n\nexport const other = 1;\n"
    )
    tail = (
        "    // ... existing code ...\n        } catch (err) {\n"
        "            lastErrorValue = String(err);\n        }\n    }\n    return lastErrorValue;\n"
        "}\n\n// ... existing code ...\n"
    )
    head = 'export async function run(job: Job): Promise<string> {\n    let lastErrorValue = "";\n'
    plan = plan_apply(
        original, head + "    while (job.attempts < 3) {\n" + tail, language="typescript"
    )
    assert plan.result == original.replace("lastError", "lastErrorValue")
    # The renamed declaration right before a marker: nothing in its block confirms it.
    plan = plan_apply(original, head + tail, language="typescript")
    assert plan.result is None and plan.reason and "may change original line 2" in plan.reason


BLANKS = """def add(self, name):
    tarinfo = self.gettarinfo(name)

    # Change or exclude the TarInfo object.
    if filter is not None:
        tarinfo = filter(tarinfo)

    # Append the header.
    self.addfile(tarinfo)
    return tarinfo


def other():
    return 1
"""


def test_blank_context_before_a_marker_deletes_when_nothing_else_changes() -> None:
    sketch = "def add(self, name):\n    # ... existing code ...\n"
    sketch += "    # Change or exclude the TarInfo object.\n\n    # ... existing code ...\n"
    plan = plan_apply(BLANKS, sketch, language="python")
    assert plan.result == BLANKS.replace(
        "    if filter is not None:\n        tarinfo = filter(tarinfo)\n", ""
    )


def test_blank_context_stays_uncertain_when_the_definition_changes_elsewhere() -> None:
    sketch = (
        "def add(self, name):\n    # ... existing code ...\n"
        "    # Change or exclude the TarInfo object.\n\n    # ... existing code ...\n"
        "    self.addfile(tarinfo)\n    return (tarinfo, name)\n"
    )
    plan = plan_apply(BLANKS, sketch, language="python")
    assert plan.result is None and plan.reason and "blank sketch line 4" in plan.reason


def test_blank_after_a_signature_deletes_nothing() -> None:
    sketch = "def add(self, name):\n\n    # ... existing code ...\n"
    sketch += "\n\ndef other():\n    return 2\n"
    plan = plan_apply(BLANKS, sketch, language="python")
    assert plan.result is None and plan.reason and "blank sketch line 2" in plan.reason


@pytest.mark.parametrize(
    ("name", "original", "sketch", "expected"),
    [
        (
            "a stub's `...` body is a marker: the new method's body is unknown",
            "class R(Protocol):\n    def read(self) -> bytes:\n        ...\n",
            "class R(Protocol):\n    def read(self) -> bytes:\n        ...\n\n"
            "    def close(self) -> None:\n        ...\n",
            None,
        ),
        (
            "a stub's signature changes, its `...` body stays",
            "class R(Protocol):\n    def read(self) -> bytes:\n        ...\n",
            "    def read(self, n: int = -1) -> bytes:\n        ...\n",
            "class R(Protocol):\n    def read(self, n: int = -1) -> bytes:\n        ...\n",
        ),
        (
            "`pass  # unchanged` as a body may be a placeholder",
            "def a():\n    x = 1\n    return x\n\n\ndef b():\n    return 2\n",
            "def a():\n    pass  # unchanged\n\n\ndef b():\n    return 3\n",
            None,
        ),
        (
            "`pass  # unchanged` that the original has is code",
            "def a(v):\n    if v:\n        pass  # unchanged\n    v = 2\n    return v\n",
            "def a(v):\n    if v:\n        pass  # unchanged\n    v = 3\n    return v\n",
            "def a(v):\n    if v:\n        pass  # unchanged\n    v = 3\n    return v\n",
        ),
        (
            "context lines that are in two functions, no header",
            "def a(xs):\n    r = []\n    r.append(xs)\n    return r\n\n\n"
            "def b(xs):\n    r = []\n    r.append(xs)\n    return r\n",
            "    r = []\n    r.append(xs * 2)\n    return r\n",
            None,
        ),
        (
            "context lines that are in two functions, the header decides",
            "def a(xs):\n    r = []\n    r.append(xs)\n    return r\n\n\n"
            "def b(xs):\n    r = []\n    r.append(xs)\n    return r\n",
            "# ... existing code ...\ndef b(xs):\n    r = []\n"
            "    r.append(xs * 2)\n    # ... existing code ...\n",
            "def a(xs):\n    r = []\n    r.append(xs)\n    return r\n\n\n"
            "def b(xs):\n    r = []\n    r.append(xs * 2)\n    return r\n",
        ),
        (
            "renamed lines whose originals are in two functions",
            "def p(x):\n    try:\n        return x.a\n    except KeyError:\n        msg = 'no'\n"
            "        raise TypeError(msg)\n\n\ndef q(x):\n    try:\n        return x.b\n"
            "    except KeyError:\n        msg = 'no'\n        raise TypeError(msg)\n",
            "    except KeyError:\n        message = 'no'\n        raise TypeError(message)\n",
            None,
        ),
        (
            "a body block under a signature that occurs twice: the body decides",
            "class A:\n    def run(self):\n        self.start()\n        return 1\n\n\n"
            "class B:\n    def run(self):\n        self.stop()\n        return 2\n",
            "    def run(self):\n        # ... existing code ...\n        self.stop()\n"
            "        return 3\n",
            "class A:\n    def run(self):\n        self.start()\n        return 1\n\n\n"
            "class B:\n    def run(self):\n        self.stop()\n        return 3\n",
        ),
    ],
)
def test_adversarial_sketches_are_exact_or_deferred(
    name: str, original: str, sketch: str, expected: str | None
) -> None:
    plan = plan_apply(original, sketch, language="python")
    assert plan.result == expected, name
    if expected is None:  # deferred to the model, or tied places refused with their lines
        assert plan.reason and (plan.regions or "equally well" in plan.reason), name


# -- a model's rewrite of one region -----------------------------------------------------
AREA = ORIGINAL[ORIGINAL.index("def area") : ORIGINAL.index("\n\n\ndef perimeter") + 1]
AREA_FIXED = AREA.replace("if width < 0:", "if width <= 0:")


def test_a_faithful_rewrite_passes() -> None:
    assert verify_rewrite(AREA, SKETCH, AREA_FIXED).ok


def test_a_rewrite_that_drops_elided_lines_fails() -> None:
    """The model forgot the docstring the sketch's first marker keeps: nothing is written."""
    dropped = AREA_FIXED.replace('    """The area."""\n', "")
    check = verify_rewrite(AREA, SKETCH, dropped)
    assert not check.ok and check.reason and "does not show removed" in check.reason
    # and a rewrite that keeps only the sketch's lines
    only = 'def area(width, height):\n    if width <= 0:\n        raise ValueError("width")\n'
    assert not verify_rewrite(AREA, SKETCH, only).ok


def test_a_rewrite_that_invents_a_line_fails() -> None:
    invented = AREA_FIXED.replace("    return width", "    print(width)\n    return width")
    check = verify_rewrite(AREA, SKETCH, invented)
    assert not check.ok and check.reason and "neither" in check.reason


def test_a_rewrite_that_changes_spacing_the_sketch_elides_fails() -> None:
    """The packaged Qwen 0.5B dropped one of the two blank lines before the next function
    (`lowentropy apply` on shapes.py): a whitespace edit nobody asked for, refused."""
    region = AREA + "\n\ndef perimeter(width, height):\n    return 2 * (width + height)\n"
    fixed = region.replace("if width < 0:", "if width <= 0:")
    assert verify_rewrite(region, SKETCH, fixed).ok
    for changed in (
        fixed.replace("\n\n\ndef", "\n\ndef"),
        fixed.replace("\n\n\ndef", "\n\n\n\ndef"),
    ):
        check = verify_rewrite(region, SKETCH, changed)
        assert not check.ok and check.reason and "blank line" in check.reason
    # spacing the sketch shows is the sketch's to change
    shown = (
        "def area(width, height):\n    # ... existing code ...\n    if width <= 0:\n"
        '        raise ValueError("width")\n    return width * height\n\n'
        "def perimeter(width, height):\n    # ... existing code ...\n"
    )
    assert verify_rewrite(region, shown, fixed.replace("\n\n\ndef", "\n\ndef")).ok


def test_a_deletion_the_sketch_shows_passes_and_one_it_hides_fails() -> None:
    without_check = AREA.replace('    if width < 0:\n        raise ValueError("width")\n', "")
    shown = '    # ... existing code ...\n    """The area."""\n    return width * height\n'
    assert verify_rewrite(AREA, shown, without_check).ok
    hidden = '    """The area."""\n    # ... existing code ...\n    return width * height\n'
    assert not verify_rewrite(AREA, hidden, without_check).ok
    # without markers the update is the region's whole new text: it may remove anything
    whole = 'def area(width, height):\n    """The area."""\n    return width * height\n'
    assert verify_rewrite(AREA, whole, without_check).ok


def test_drift_guard_stops_at_the_first_line_in_neither_region_nor_update() -> None:
    guard = DriftGuard(AREA, SKETCH)
    answer = AREA_FIXED + "(\n(\n"
    fed = [guard.feed(answer[k : k + 7]) for k in range(0, len(answer), 7)]
    assert guard.stopped and fed[-1] and not fed[0]
    assert guard.code == AREA_FIXED  # everything before the first unknown line
    # blank lines and fences are neutral; a faithful copy never stops
    calm = DriftGuard(AREA, SKETCH)
    assert not calm.feed("```python\n" + AREA_FIXED + "\n```\n") and not calm.stopped


def test_drift_guard_stops_at_a_marker_written_as_code() -> None:
    """The packaged Qwen 0.5B copies `# (unchanged)` into its rewrite: verify_rewrite refuses
    that, so the stream stops there and the miss comes back early."""
    guard = DriftGuard(AREA, SKETCH)
    head = "def area(width, height):\n"
    assert not guard.feed(head) and guard.feed("    # ... existing code ...\n    if")
    assert guard.code == head
    assert not verify_rewrite(AREA, SKETCH, head + "    # ... existing code ...\n").ok


def test_drift_guard_stops_when_a_kept_line_comes_before_the_sketchs_new_line() -> None:
    """The packaged model's miss on the rename cases: it copies the line the sketch changes
    and goes on to the next kept line; verification refuses that (the sketch's line is
    missing), so the stream stops at that kept line, not at the end of the region."""
    guard = DriftGuard(AREA, SKETCH)
    unchanged = 'def area(width, height):\n    """The area."""\n    if width < 0:\n'
    assert not guard.feed(unchanged)  # the old condition: a region line, nothing doomed yet
    assert guard.feed('        raise ValueError("width")\n')  # kept, with `<= 0` not written
    assert guard.code == unchanged and guard.reason and "if width <= 0:" in guard.reason
    assert guard.doomed  # the server refuses with this reason, not with what came before
    # what it was writing is refused anyway: the sketch's line is missing from the result
    check = verify(AREA, AREA, SKETCH, language="python")
    assert not check.ok and check.reason and "is missing from the result" in check.reason
    # the faithful rewrite, streamed in pieces, never stops
    calm = DriftGuard(AREA, SKETCH)
    assert not any(calm.feed(AREA_FIXED[k : k + 5]) for k in range(0, len(AREA_FIXED), 5))
    assert calm.feed("(\n") and not calm.doomed  # rambling after it: stopped, not doomed


LOAD = "def load(path):\n    text = open(path).read()\n    data = parse(text)\n    return data\n"


def test_drift_guard_stops_at_a_line_between_two_lines_the_sketch_shows_together() -> None:
    """The packaged model's rename miss, one line sooner: it copies the line the sketch
    changes, right after a kept line the sketch shows next to the new one. Nothing may stand
    between those two: stopped there, doomed (chat dev: the logging rename stops after 13 of
    its 20 lines instead of 16; the parse_headers deletion, before the deleted line instead
    of never)."""
    shown = "def load(path):\n    text = open(path).read()\n    data = parse_strict(text)\n"
    guard = DriftGuard(LOAD, shown + "    return data\n")
    head = "def load(path):\n    text = open(path).read()\n"
    assert not guard.feed(head) and guard.feed("    data = parse(text)\n")
    assert guard.doomed and guard.code == head and guard.reason
    assert "between the sketch's lines" in guard.reason
    # with a marker between them, the line may be one the marker keeps: no stop
    elided = "def load(path):\n    text = open(path).read()\n    # ...\n    return data\n"
    calm = DriftGuard(LOAD, elided)
    assert not calm.feed(head + "    data = parse(text)\n") and not calm.stopped
    # the right rewrite, in pieces, never stops
    fixed = LOAD.replace("parse(text)", "parse_strict(text)")
    right = DriftGuard(LOAD, shown + "    return data\n")
    assert not any(right.feed(fixed[k : k + 5]) for k in range(0, len(fixed), 5))


def test_drift_guard_stops_at_the_sketchs_abbreviation_written_as_code() -> None:
    """A sketch that drops a line's trailing comment still means the line with it (the merge
    keeps it whole): the packaged model copied the shortened line, which verification let
    through (a held-out 'model alone' wrong edit). Stopped there, doomed."""
    region = "def seed():\n    clock_seq = getrandbits(14) # instead of stable storage\n    return clock_seq\n"
    sketch = "def seed():\n    clock_seq = getrandbits(14)\n    return clock_seq\n"
    guard = DriftGuard(region, sketch)
    assert not guard.feed("def seed():\n") and guard.feed("    clock_seq = getrandbits(14)\n")
    assert guard.doomed and guard.reason and "abbreviation" in guard.reason
    right = DriftGuard(region, sketch)
    assert not any(right.feed(region[k : k + 5]) for k in range(0, len(region), 5))
