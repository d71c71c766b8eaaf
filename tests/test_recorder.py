"""The prompt recorder: off by default, JSONL round trip, replay with another template."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lowentropy.prompts import (
    PromptRecorder,
    Renderer,
    TabInputs,
    get_template,
    load_records,
    render_tab_inputs,
    replay,
)


def words(s: str) -> int:
    return len(s.split())


def _inputs(text: str, cursor: int) -> TabInputs:
    return TabInputs(
        text=text,
        cursor_offset=cursor,
        path="Lib/argparse.py",
        language="python",
        budget=300,
        reserve_output=40,
        suffix_share=0.2,
    )


def _argparse() -> str:
    with open(argparse.__file__, encoding="utf-8") as f:
        return f.read()


def test_off_by_default_records_nothing(tmp_path: Path) -> None:
    recorder = PromptRecorder()
    assert not recorder.enabled
    inputs = _inputs("x = 1\n", 3)
    recorder.record(
        inputs,
        render_tab_inputs(inputs, template=get_template("plain"), count=words),
        template="plain",
    )
    assert list(tmp_path.iterdir()) == []


def test_round_trip_and_text_written_once(tmp_path: Path) -> None:
    """Data: the standard library's argparse.py, three keystrokes on one line and one elsewhere."""
    src = _argparse()
    path = tmp_path / "logs" / "prompts.jsonl"
    recorder = PromptRecorder(path)
    assert recorder.enabled
    qwen = get_template("qwen")
    renderer = Renderer(words)
    cursor = src.index("def parse_known_args(")
    typed = [src[:cursor] + "def"[:k] + src[cursor:] for k in range(3)]
    all_inputs = [_inputs(t, cursor + k) for k, t in enumerate(typed)]
    all_inputs.append(_inputs(typed[0], 100))  # same text as the first, another cursor
    outputs = []
    for inputs in all_inputs:
        out = render_tab_inputs(inputs, template=qwen, count=words, renderer=renderer)
        recorder.record(inputs, out, template=qwen)
        outputs.append(out)

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4
    assert [("text" in row["inputs"]) for row in rows] == [True, True, True, False]
    assert rows[3]["inputs"]["text_sha256"] == rows[0]["inputs"]["text_sha256"]
    assert rows[0]["template"] == "qwen" and rows[0]["v"] == 1

    records = load_records(path)
    assert [r.inputs for r in records] == all_inputs
    assert [r.output for r in records] == outputs
    assert all(r.template == "qwen" for r in records)
    # A new recorder on the same file writes the text again (it cannot know the file's past).
    PromptRecorder(path).record(all_inputs[0], outputs[0], template="qwen")
    assert load_records(path)[-1].inputs == all_inputs[0]


def test_replay_with_another_template(tmp_path: Path) -> None:
    src = _argparse()
    path = tmp_path / "prompts.jsonl"
    recorder = PromptRecorder(path)
    for cursor in (src.index("class HelpFormatter"), src.index("def parse_args(")):
        inputs = _inputs(src, cursor)
        out = render_tab_inputs(inputs, template=get_template("qwen"), count=words)
        recorder.record(inputs, out, template="qwen")
    records = load_records(path)

    # Replaying with the same template reproduces the recorded prompts.
    same = replay(records, get_template("qwen"), count=words)
    assert [p.prompt for p in same] == [r.output.prompt for r in records]

    starcoder = replay(records, get_template("starcoder2"), count=words)
    plain = replay(records, get_template("plain"), count=words)
    for rec, sc, pl in zip(records, starcoder, plain, strict=True):
        assert sc.template == "starcoder2" and pl.template == "plain"
        assert sc.prompt.startswith("<fim_prefix>") and "<fim_suffix>" in sc.prompt
        assert sc.tokens <= rec.inputs.budget - rec.inputs.reserve_output
        # Prefix continuation spends the suffix's share on lines above.
        assert pl.suffix_lines_kept == 0
        assert pl.prefix_lines_kept >= sc.prefix_lines_kept
        assert src[: rec.inputs.cursor_offset].endswith(pl.prompt.split("\n", 1)[1])
