"""Next edit's model path without a server: the Zeta prompt, judging a rewrite, merging.

The model's output is a string here: it goes through the same render -> judge
(`region_changes`) -> `merge` -> answer (`_prediction`) code that the feature runs
on a backend's stream.
"""

from __future__ import annotations

from lowentropy.models.remote_tokenizer import estimate_tokens
from lowentropy.prompts.next_edit import (
    NextEditInputs,
    NextEditPrompt,
    load_template,
    render_next_edit,
)
from lowentropy.server.next_edit.diffs import Change
from lowentropy.server.next_edit.feature import _prediction
from lowentropy.server.next_edit.history import EditHistory
from lowentropy.server.next_edit.jump import apply_edits
from lowentropy.server.next_edit.predict import merge, region_changes
from lowentropy.server.next_edit.propagate import Candidate, plan
from lowentropy.server.text_edits import region_diff

URI = "file:///w/totals.py"
BEFORE = (
    "def summarize(items):\n"
    "    count = 0\n"
    "    for item in items:\n"
    "        count += item.size\n"
    '    print("items:", count)\n'
    "    return count\n"
    "\n"
    "\n"
    "LIMIT = 10\n"
)
# The user renamed the first `count`; the model is to carry it on.
AFTER = BEFORE.replace("count = 0", "total = 0")
DIFF = region_diff(BEFORE, AFTER, "totals.py")


def _prompt(text: str, cursor: int, events: tuple[tuple[str, str], ...]) -> NextEditPrompt:
    return render_next_edit(
        NextEditInputs(text=text, cursor_offset=cursor, path="totals.py", events=events),
        count=estimate_tokens,
    )


def _judge(
    text: str,
    prompt: NextEditPrompt,
    raw: str,
    *,
    complete: bool = True,
    undo_of: str | None = None,
) -> tuple[tuple[Change, ...], str | None]:
    out = region_changes(URI, text, "python", prompt, raw, complete, DIFF, undo_of)
    return out.changes, out.rejected


# ---- the prompt ----------------------------------------------------------------------------


def test_prompt_is_edits_then_the_excerpt_with_region_and_cursor_marked() -> None:
    t = load_template()
    e1 = ("totals.py", DIFF)
    e2 = ("other.py", "--- a/other.py\n+++ b/other.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n")
    cursor = AFTER.index("count += ")
    p = _prompt(AFTER, cursor, (e1, e2))
    text = p.prompt
    assert text.startswith(t.instruction)
    at_edits = text.index(t.events_header)
    at_e1, at_e2 = text.index("-    count = 0\n+    total = 0"), text.index("+x = 2")
    at_excerpt = text.index(t.excerpt_header.format(path="totals.py"))
    at_region, at_cursor = text.index(t.region_start), text.index(t.cursor)
    at_end = text.index(t.region_end)
    assert at_edits < at_e1 < at_e2 < at_excerpt < at_region < at_cursor < at_end  # oldest first
    assert text.endswith(t.response.format(path="totals.py"))
    # The region is whole lines around the cursor (2 above, 3 below), marked in the excerpt
    # with the cursor exactly where it is in the document.
    assert p.region == "".join(AFTER.splitlines(keepends=True)[1:7])
    assert p.region_start == AFTER.index("    total = 0")
    marked = p.region[: p.cursor_in_region] + t.cursor + p.region[p.cursor_in_region :]
    assert t.region_start + marked + t.region_end in text
    assert marked.splitlines()[2] == f"        {t.cursor}count += item.size"
    # The lines above the region are excerpt context, outside the markers.
    assert text.index("def summarize(items):") < at_region


def test_appending_an_edit_keeps_the_prompt_prefix() -> None:
    """The history only grows at its end: the prompt for [e1, e2] starts with the stable
    prefix (instruction and edits) of the prompt for [e1], byte for byte, so a backend's
    prefix cache keeps it; only the excerpt after the edits changes."""
    e1 = ("totals.py", DIFF)
    later = AFTER.replace("count += item", "total += item")
    e2 = ("totals.py", region_diff(AFTER, later, "totals.py"))
    t = load_template()
    one = _prompt(AFTER, AFTER.index("count +="), (e1,))
    two = _prompt(later, later.index("count)"), (e1, e2))
    assert one.stable_prefix and two.prompt.startswith(one.stable_prefix)
    excerpt = t.excerpt_header.format(path="totals.py")
    assert one.stable_prefix == one.prompt[: one.prompt.index(excerpt)]
    assert two.stable_prefix.startswith(one.stable_prefix)
    assert two.stable_prefix[len(one.stable_prefix) :].startswith('User edited "totals.py"')
    assert "-        count += item.size" in two.stable_prefix[len(one.stable_prefix) :]


def test_history_feeds_the_prompt_in_order_and_closing_keeps_its_events() -> None:
    h = EditHistory(burst_s=1.0)
    h.opened(URI, BEFORE)
    h.record(URI, "totals.py", AFTER, 2, now=0.0)
    later = AFTER.replace("count += item", "total += item")
    h.record(URI, "totals.py", later, 3, now=5.0)
    h.opened("file:///w/b.py", "b = 1\n")
    h.record("file:///w/b.py", "b.py", "b = 2\n", 2, now=6.0)
    h.closed("file:///w/b.py")  # its open burst is finished, not lost
    h.closed(URI)
    events = [(e.path, e.diff) for e in h.events()]
    assert [p for p, _ in events] == ["totals.py", "totals.py", "b.py"]
    assert "+    total = 0" in events[0][1] and "+        total += item.size" in events[1][1]
    assert h.text(URI) is None and h.last_site(now=7.0) is None  # the texts are released
    prompt = _prompt(later, later.index("count)"), tuple(events)).prompt
    assert (
        prompt.index("+    total = 0") < prompt.index("+        total += ") < prompt.index("+b = 2")
    )


def test_history_bound_is_in_tokens_and_keeps_the_count_bound() -> None:
    text = ""
    h = EditHistory(max_events=100, max_tokens=400)
    h.opened("u", text)
    for i in range(12):
        text += f"value_{i} = {'x' * 60}\n"  # each event's diff is ~30-50 tokens
        h.record("u", "a.py", text, i + 2, now=float(i * 10))
    done = h.events()[:-1]  # the open burst is not bounded until it is finished
    assert sum(estimate_tokens(e.diff) for e in done) <= 400
    assert len(done) < 11 and "value_10" in done[-1].diff
    h = EditHistory(max_events=4, max_tokens=10_000)
    h.opened("u", "")
    text = ""
    for i in range(9):
        text += f"x{i} = {i}\n"
        h.record("u", "a.py", text, i + 2, now=float(i * 10))
    assert len(h.events()) <= 4 + 1


# ---- judging the model's rewrite -----------------------------------------------------------


def _region_prompt() -> tuple[int, NextEditPrompt]:
    cursor = AFTER.index("count += ")
    return cursor, _prompt(AFTER, cursor, (("totals.py", DIFF),))


def test_a_kept_rewrite_is_its_minimal_edit() -> None:
    t = load_template()
    cursor, p = _region_prompt()
    new_region = p.region.replace("count += item", "total += item")
    raw = new_region.replace("total += ", f"total += {t.cursor}")  # the model moved the cursor
    changes, rejected = _judge(AFTER, p, raw)
    assert rejected is None
    (ch,) = changes
    assert (ch.start, ch.end, ch.new) == (cursor, cursor + len("count"), "total")
    assert ch.apply(AFTER) == AFTER.replace("count += item", "total += item")


def test_a_rewrite_that_changes_nothing_is_no_edit() -> None:
    t = load_template()
    _, p = _region_prompt()
    assert _judge(AFTER, p, p.region) == ((), None)
    # With the region's start marker repeated and the cursor marker left in: still nothing.
    raw = (
        t.region_start + p.region[: p.cursor_in_region] + t.cursor + p.region[p.cursor_in_region :]
    )
    assert _judge(AFTER, p, raw) == ((), None)


def test_unconfident_rewrites_are_rejected() -> None:
    _, p = _region_prompt()
    wild = "".join(f"    total{i} = item.size * {i}\n" for i in range(6))
    cases = {
        "rewrites too much": wild,
        "invents": p.region.replace("count += item", "tally += item"),
        "adds syntax errors": p.region.replace("item.size\n", "item.size)\n"),
    }
    for why, raw in cases.items():
        changes, rejected = _judge(AFTER, p, raw)
        assert changes == () and rejected is not None and rejected.startswith(why), (why, rejected)
    good = p.region.replace("count += item", "total += item")
    assert _judge(AFTER, p, good, complete=False) == ((), "incomplete rewrite")
    # Undoing the user's last edit is never a suggestion.
    undo = p.region.replace("total = 0", "count = 0")
    assert _judge(AFTER, p, undo, undo_of=BEFORE) == ((), "undoes the last edit")


def test_region_at_the_end_of_a_file_without_a_final_newline() -> None:
    text = "a = 1\nb = a\nc = b"
    p = _prompt(text, len(text), ())
    assert p.region == text + "\n"
    out = region_changes(URI, text, "python", p, "a = 1\nb = a\nc = a\n", True, "")
    assert out.rejected is None
    changes = out.changes
    assert apply_edits(text, URI, [_candidate(c) for c in changes]) == "a = 1\nb = a\nc = a"
    assert all(c.end <= len(text) for c in changes)
    # Deleting the last line: the edit stays inside the document (LSP ranges must).
    out = region_changes(URI, text, "python", p, "a = 1\nb = a\n", True, "")
    assert out.rejected is None and all(c.end <= len(text) for c in out.changes)
    assert apply_edits(text, URI, [_candidate(c) for c in out.changes]) == "a = 1\nb = a"


# ---- merging with propagation --------------------------------------------------------------


def _candidate(ch: Change) -> Candidate:
    return Candidate(uri=ch.uri, start=ch.start, end=ch.end, new=ch.new, reason="model")


def test_places_without_an_edit_never_hide_the_models_edit() -> None:
    """A new required parameter: propagation knows the call to fix, not the argument (a
    place, no edit). The model's rewrite of the body is the answer, labelled `model`, and
    the place is where to go next (in the text after the model's edit)."""
    before = "def area(w, h):\n    return w * h\n\n\narea(1, 2)\n"
    after = before.replace("(w, h):", "(w, h, d):")
    found = plan(URI, before, after, "python")
    assert [c.new for c in found.local] == [None]
    cursor = after.index("):") + 1
    diff = region_diff(before, after, "area.py")
    p = _prompt(after, cursor, (("area.py", diff),))
    raw = p.region.replace("return w * h", "return w * h * d")
    out = region_changes(URI, after, "python", p, raw, True, diff)
    assert out.rejected is None and len(out.changes) == 1
    merged = merge(list(found.local), out.changes)
    pred = _prediction(URI, after, merged, {URI: after})
    assert pred.source == "model"
    (edit,) = pred.edits
    assert (edit.new, edit.reason) == (" * d", "model")
    edited = apply_edits(after, URI, pred.edits)
    assert edited == after.replace("w * h", "w * h * d")
    assert pred.jump is not None and pred.jump.uri == URI
    assert pred.jump.offset == edited.index("area(1, 2)")


def test_propagated_edits_come_first_and_win_over_a_conflicting_rewrite() -> None:
    found = plan(URI, BEFORE, AFTER, "python")
    assert found.local and all(c.new == "total" for c in found.local)
    first = found.local[0]
    same = Change(uri=URI, start=first.start, end=first.end, new="total")
    other = Change(uri=URI, start=0, end=3, new="async def")
    merged = merge(list(found.local), [same])  # they agree: propagation's stays, once
    assert merged == list(found.local)
    pred = _prediction(URI, AFTER, merged, {URI: AFTER})
    assert pred.source == "propagation" and pred.edits == (first,)
    clash = Change(uri=URI, start=first.start, end=first.end, new="tally")
    assert merge(list(found.local), [other, clash]) == list(found.local)  # whole rewrite goes
    kept = merge(list(found.local), [other])
    assert kept[: len(found.local)] == list(found.local) and kept[-1].reason == "model"


def test_a_multi_edit_rewrite_shifts_the_jump_by_all_its_edits() -> None:
    text = "x = 1\ny = 2\nz = 3\nw = 4\n"
    edits = [
        Candidate(uri=URI, start=4, end=5, new="10", reason="model"),
        Candidate(uri=URI, start=10, end=11, new="20", reason="model"),
    ]
    place = Candidate(uri=URI, start=text.index("w"), end=text.index("w"), new=None, reason="x")
    pred = _prediction(URI, text, [*edits, place], {URI: text})
    assert pred.edits == tuple(edits) and pred.source == "model"
    edited = apply_edits(text, URI, pred.edits)
    assert edited == "x = 10\ny = 20\nz = 3\nw = 4\n"
    assert pred.jump is not None and pred.jump.offset == edited.index("w")


def test_a_place_the_model_edits_is_not_also_the_next_jump() -> None:
    text = "def f(a, b):\n    pass\n\n\nf(1)\nf(2)\n"
    call1, call2 = text.index("f(1)"), text.index("f(2)")
    places = [
        Candidate(uri=URI, start=c, end=c, new=None, reason="signature") for c in (call1, call2)
    ]
    fix = Change(uri=URI, start=call1, end=call1 + 4, new="f(1, 0)")
    merged = merge(places, [fix])
    assert [(c.start, c.new) for c in merged] == [(call1, "f(1, 0)"), (call2, None)]
    pred = _prediction(URI, text, merged, {URI: text})
    assert pred.jump is not None
    assert pred.jump.offset == apply_edits(text, URI, pred.edits).index("f(2)")
