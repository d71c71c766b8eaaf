"""The chat stream's loop guard: repeats stop the answer and never reach the client."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lowentropy.server.loop_guard import LoopGuard

LOADS = "The `json.loads()` function parses a JSON string into a Python object."
DUMPS = "The `json.dumps()` function serializes a Python object to a JSON string."


def stream(text: str, size: int) -> tuple[str, bool, str]:
    """Feeds `text` in pieces of `size`; returns (sent, stopped, sent at the end)."""
    guard = LoopGuard()
    sent: list[str] = []
    for start in range(0, len(text), size):
        fed = guard.feed(text[start : start + size])
        sent.append(fed.text)
        if fed.stop:
            return "".join(sent), True, ""
    return "".join(sent), False, guard.finish()


def test_an_answer_without_repeats_goes_through_whole_in_any_pieces() -> None:
    answer = (
        f"{LOADS} It reads the text. Then it builds dicts!\n\n"
        "```python\nimport json\n\nvalue = json.loads(text)\n```\n"
        f"{DUMPS} Is that all? Yes.\n- decoder.py [1]\n- encoder.py [2]"
    )
    for size in (1, 2, 3, 7, 64, len(answer)):
        sent, stopped, tail = stream(answer, size)
        assert not stopped, size
        assert sent + tail == answer, size


def test_a_repeated_sentence_stops_the_answer_before_it_is_sent() -> None:
    # What the packaged 135M model does greedily: paragraphs that say it again.
    answer = (
        f"{LOADS} It is a built-in function.\n\n{DUMPS}\n\n"
        f"{LOADS} This is a more flexible way.\n\nnever reached"
    )
    for size in (1, 3, 5, 11, len(answer)):
        sent, stopped, _ = stream(answer, size)
        assert stopped, size
        assert sent.count(LOADS) == 1 and sent.count(DUMPS) == 1, (size, sent)
        assert "more flexible" not in sent and "never reached" not in sent
        assert sent.startswith(f"{LOADS} It is a built-in function.\n\n{DUMPS}")


def test_text_that_only_starts_like_an_earlier_sentence_is_held_then_sent() -> None:
    guard = LoopGuard()
    assert guard.feed(LOADS + "\n").text == LOADS + "\n"
    same_start = LOADS[:30]
    assert guard.feed(same_start).text == ""  # could still become the repeat
    fed = guard.feed(" and more")  # it did not
    assert fed.text == same_start + " and more" and not fed.stop
    assert guard.feed(" words").text == " words"  # once different, it streams at once


def test_a_repeat_cut_short_by_the_token_limit_is_dropped_a_short_tail_kept() -> None:
    guard = LoopGuard()
    guard.feed(LOADS + "\n")
    guard.feed(LOADS[:50])
    assert guard.finish() == ""  # 50 characters into the same sentence again
    short = LoopGuard()
    short.feed(LOADS + "\n")
    short.feed("The")
    assert short.finish() == "The"


def test_short_lines_and_lines_in_code_fences_are_not_taken_for_a_loop() -> None:
    code = "\n".join(["else:", "    pass", "}"] * 3) + "\n"
    sent, stopped, tail = stream(code, 4)
    assert not stopped and sent + tail == code
    # In prose these lines would both start with the same 40+ character sentence;
    # in a fence only whole lines count, and the lines differ.
    fenced = (
        "```python\n"
        'log("Parse the JSON document and return the whole object. first")\n'
        'log("Parse the JSON document and return the whole object. second")\n'
        "```\n"
    )
    sent, stopped, tail = stream(fenced, 3)
    assert not stopped and sent + tail == fenced
    prose = fenced.replace("```python\n", "").replace("```\n", "")
    sent, stopped, _ = stream(prose, 3)
    assert stopped and "second" not in sent


def test_a_repeated_code_line_still_stops_a_loop() -> None:
    line = "    result = decoder.raw_decode(document, index=0)\n"
    sent, stopped, _ = stream("```python\n" + line * 5, 6)
    assert stopped and sent == "```python\n" + line


SENTENCES = [LOADS, DUMPS, "It is short.", "```", "    return value", "Why?", "\n", "\n\n"]


@given(
    parts=st.lists(st.sampled_from(SENTENCES), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
)
def test_what_is_sent_does_not_depend_on_how_the_stream_is_cut(
    parts: list[str], cuts: list[int]
) -> None:
    text = " ".join(parts)
    whole = LoopGuard()
    fed = whole.feed(text)
    expected = fed.text + ("" if fed.stop else whole.finish())
    assert text.startswith(expected)  # never a character the model did not write
    guard = LoopGuard()
    sent = []
    stopped = False
    edges = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    for start, end in zip(edges, edges[1:], strict=False):
        piece = guard.feed(text[start:end])
        sent.append(piece.text)
        if piece.stop:
            stopped = True
            break
    if not stopped:
        sent.append(guard.finish())
    assert stopped == fed.stop
    assert "".join(sent) == expected
