"""Next edit without a server: edit history, diffs and deterministic propagation (pure)."""

from __future__ import annotations

from typing import Any

from lowentropy.server.next_edit.diffs import minimal_changes
from lowentropy.server.next_edit.history import EditHistory
from lowentropy.server.next_edit.propagate import FileText, order, plan, signature_elsewhere
from lowentropy.server.text_edits import region_diff

FUNC = "def f(items):\n    count = 0\n    for x in items:\n        count += x\n    return count\n"


def test_bursts_merge_and_finished_events_only_grow() -> None:
    h = EditHistory(burst_s=1.0)
    h.opened("u", "a = 1\n")
    h.record("u", "a.py", "a = 12\n", 2, now=0.0)
    h.record("u", "a.py", "a = 123\n", 3, now=0.5)  # same burst
    assert len(h.events()) == 1 and "+a = 123" in h.events()[0].diff
    h.record("u", "a.py", "a = 123\nb = 2\n", 4, now=5.0)  # a pause: a new event
    first = h.diffs()
    assert len(first) == 2 and first[0].startswith("--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@")
    h.record("u", "a.py", "a = 123\nb = 2\nc = 3\n", 5, now=9.0)
    assert h.diffs()[:2] == first  # appended, never rewritten


def test_history_is_bounded_and_drops_the_oldest_half_at_once() -> None:
    h = EditHistory(max_events=4)
    text = ""
    h.opened("u", text)
    for i in range(9):
        text += f"x{i} = {i}\n"
        h.record("u", "a.py", text, i + 2, now=float(i * 10))
    diffs = h.diffs()
    assert len(diffs) <= 4 and "+x8 = 8" in diffs[-1]


def test_typing_a_word_is_one_site() -> None:
    h = EditHistory()
    h.opened("u", "x = count\n")
    for i, text in enumerate(["x = \n", "x = t\n", "x = to\n", "x = tot\n"]):
        h.record("u", "a.py", text, i + 2, now=float(i * 3))  # pauses, still one site
    site = h.last_site(now=10.0)
    assert site is not None and site.before == "x = count\n" and site.after == "x = tot\n"


def test_unified_diff_line_numbers_and_minimal_changes() -> None:
    before = "".join(f"line {i}\n" for i in range(10))
    after = before.replace("line 6\n", "line six\n")
    diff = region_diff(before, after, "p.py")
    assert "@@ -5,5 +5,5 @@" in diff and "-line 6" in diff and "+line six" in diff
    (ch,) = minimal_changes("u", "a = foo(1)\n", "a = bar(1)\n", 100)
    assert (ch.start, ch.end, ch.new) == (104, 107, "bar")


def test_rename_in_function_scope() -> None:
    after = FUNC.replace("count = 0", "total = 0") + "count = 1\n"
    p = plan("u", FUNC + "count = 1\n", after, "python")
    assert p.kind == "rename"
    lines = [after.count("\n", 0, c.start) for c in p.local]
    assert lines == [3, 4] and all(c.new == "total" for c in p.local)


def test_rename_skips_strings_and_comments() -> None:
    before = "value = 1\nprint('value', value)  # value\n"
    after = before.replace("value = 1", "amount = 1", 1)
    p = plan("u", before, after, "python")
    use = after.index(", value") + 2
    assert [(c.start, c.end) for c in p.local] == [(use, use + len("value"))]


def test_removed_parameter_fixes_calls_everywhere() -> None:
    before = "def area(w, h, unit):\n    return w * h\n\narea(1, 2, 'm')\n"
    after = before.replace(", unit)", ")")
    p = plan("u", before, after, "python")
    assert p.kind == "signature" and p.search == "area"
    (local,) = p.local
    assert after[local.start : local.end] == ", 'm'" and local.new == ""
    other = FileText(uri="o", text="area(5, 6, 'km')\narea(1, 2)\n", language="python")
    (c,) = signature_elsewhere(p, [other])
    assert other.text[c.start : c.end] == ", 'km'"


def test_added_required_parameter_is_a_jump_without_an_edit() -> None:
    before = "def area(w, h):\n    return w * h\n\narea(1, 2)\narea(w=1, h=2, d=3)\n"
    after = before.replace("(w, h):", "(w, h, d):")
    p = plan("u", before, after, "python")
    assert [c.new for c in p.local] == [None]  # the second call already passes d


def test_deleted_argument_repeats_on_calls_of_the_same_shape() -> None:
    before = "f(a, b, c)\nf(x, y, z)\nf(1, 2)\ng(x, y, z)\n"
    after = before.replace("f(a, b, c)", "f(a, c)")
    p = plan("u", before, after, "python")
    assert p.kind == "call"
    (c,) = p.local
    assert after[c.start : c.end] == "y, " and c.new == ""


def test_substitution_and_order_from_the_cursor() -> None:
    before = "print(value)\nprint(value)\nprint(value)\n"
    after = before.replace("print(value)", "print(self.value)", 1)
    p = plan("u", before, after, "python")
    ordered = order(p.local, "u", after.rindex("print"))  # from the last line, then wrap
    assert [after.count("\n", 0, c.start) for c in ordered] == [2, 1]


def test_unrelated_edits_determine_nothing() -> None:
    before = "import os\n\n\ndef home():\n    return os.getcwd()\n"
    for after in (
        before.replace("import os\n", "import os\n# a comment\n"),
        before + "\n\ndef other():\n    pass\n",
        before.replace("getcwd", "getcwdb"),
    ):
        assert plan("u", before, after, "python").local == ()


def _nodes(tree: Any) -> list[tuple[Any, ...]]:
    out, stack = [], [tree.root_node]
    while stack:
        n = stack.pop()
        out.append((n.type, n.start_byte, n.end_byte, n.start_point, n.end_point, n.has_error))
        stack.extend(n.children)
    return out


def test_a_reparse_from_the_last_tree_is_the_fresh_parse() -> None:
    from lowentropy.server.next_edit.syntax import Source

    text = "def f(a, b):\n    return a + b  # é\n\n\nclass C:\n    def g(self):\n        pass\n"
    edits = [
        text.replace("a + b", "a - b"),  # inside a line
        text.replace("# é", "# 😀 wider"),  # non-ASCII: bytes and code points differ
        text.replace("def g(self):", "def g(self:"),  # breaks the syntax
        text.replace("class C:", "x = 1\n\nclass C:"),  # adds lines
        "",  # all gone
    ]
    base = Source(text, "python")
    for after in edits:
        reparsed = Source(after, "python", base)
        assert reparsed.tree is not None
        assert _nodes(reparsed.tree) == _nodes(Source(after, "python").tree)
    # The base's own tree is untouched (it is shared by the parse cache).
    assert _nodes(base.tree) == _nodes(Source(text, "python").tree)
