"""Emacs 28 + eglot 1.9 against `lowentropy serve`, at the protocol level in `emacs --batch`.

The driver `tests/editors/eglot_driver.el` loads the setup block of
`docs/editors/emacs.md` as an init file would, connects eglot to the server found on
PATH, and records what the editor sees in a JSON file: the completion item, the
buffer after `completion-at-point`, the result of `lowentropy-apply` and the buffer
after eglot applied its edit, the chat answer, the code actions and the buffer after
the "Apply the code from the last chat answer" action (the server's
`workspace/applyEdit`, confirmed with "y" on stdin as a user would). Data: the
texts in `tests/editor_env.py`.

What it cannot show: a person's view (batch Emacs draws nothing), company/corfu
popups, and timing as an interactive user feels it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest
from editor_env import (
    RECT,
    RECT_APPLIED,
    REPO,
    SHAPES,
    SHAPES_CURSOR,
    SKETCH,
    editor_env,
    lowentropy_bin,
    require_tool,
    workspace,
)

DOC = REPO / "docs" / "editors" / "emacs.md"
DRIVER = REPO / "tests" / "editors" / "eglot_driver.el"
_ELISP = re.compile(r"```elisp\n(.*?)```", re.S)
_FENCED = re.compile(r"```[^\n]*\n(.*?)\n```", re.S)


def documented_snippet() -> str:
    blocks = _ELISP.findall(DOC.read_text(encoding="utf-8"))
    assert blocks, f"{DOC} has no elisp block"
    return blocks[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One batch Emacs session through every step; the steps' tests read its record."""
    emacs = require_tool("emacs", "Emacs (Debian emacs-nox with elpa-eglot)")
    tmp = tmp_path_factory.mktemp("emacs")
    root = workspace(tmp, {"shapes.py": SHAPES, "rect.py": RECT})
    snippet = tmp / "init-snippet.el"
    snippet.write_text(documented_snippet(), encoding="utf-8")
    sketch = tmp / "sketch.py"
    sketch.write_text(SKETCH, encoding="utf-8")
    out = tmp / "out.json"
    started = time.monotonic()
    proc = subprocess.run(
        [emacs, "--batch", "-Q", "-l", str(DRIVER), str(snippet), str(root), str(sketch), str(out)],
        cwd=root,
        env=editor_env(tmp, lowentropy_bin(tmp)),
        input="y\n",  # the one confirmation eglot asks for: the server's workspace/applyEdit
        capture_output=True,
        text=True,
        timeout=120,
    )
    record: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    record["_log"] = proc.stdout[-4000:] + proc.stderr[-4000:]
    record["_seconds"] = time.monotonic() - started
    if "eglot" in record["_log"] and "Cannot open load file" in record["_log"]:
        pytest.fail(f"eglot is missing: run `bash scripts/install-editors.sh`\n{record['_log']}")
    return record


def _steps_ok(record: dict[str, Any], *steps: str) -> None:
    for step in steps:
        assert f"{step}-error" not in record, f"{step}: {record[f'{step}-error']}\n{record['_log']}"


def test_eglot_starts_the_documented_server(run: dict[str, Any]) -> None:
    assert run.get("done") is True, run["_log"]
    assert run["server"] == "lowentropy"
    assert run["contact"] == ["lowentropy", "serve"]
    # The snippet's :initializationOptions are settings the server accepts (it says so if not).
    assert "invalid configuration" not in run["_log"], run["_log"]


def test_completion_at_point_inserts_the_tab_suggestion(run: dict[str, Any]) -> None:
    _steps_ok(run, "completion")
    assert run["completion-point"] == list(SHAPES_CURSOR)
    candidates, annotations = run["completion-candidates"], run["completion-annotations"]
    assert len(candidates) == 1 and annotations == ["lowentropy"], (candidates, annotations)
    buffer: str = run["completion-buffer"]
    lines = SHAPES.split("\n")
    line, column = SHAPES_CURSOR
    prefix = "\n".join(lines[:line] + [lines[line][:column]])
    assert buffer.startswith(prefix) and buffer.endswith("\n"), buffer
    inserted = buffer[len(prefix) : -1]
    # The item's textEdit went in, not its label (the label starts with the word before it).
    assert inserted.strip() and not inserted.startswith("return"), buffer
    assert candidates[0].endswith(inserted.split("\n")[0]), (candidates, inserted)


def test_apply_sketch_verified_and_applied_by_eglot(run: dict[str, Any]) -> None:
    _steps_ok(run, "apply")
    assert run["apply-managed"] is True
    assert run["apply-verified"] is True, run.get("apply-reason")
    assert "-    return 2 * (w + h)\n+    return 2 * w + 2 * h\n" in run["apply-diff"]
    assert run["apply-buffer"] == RECT_APPLIED, run["apply-buffer"]


def test_chat_answer_then_its_code_action_applies_it(run: dict[str, Any]) -> None:
    _steps_ok(run, "chat")
    content: str = run["chat-content"]
    assert content.strip()
    actions: list[str] = run["actions"]
    assert "lowentropy: Edit selection…" in actions
    blocks = _FENCED.findall(content)
    if not blocks:
        # Without code in the answer there is nothing to apply, and nothing may be offered.
        assert not any("last chat answer" in a for a in actions), actions
        pytest.fail(f"the chat answer has no code block to apply: {content!r}")
    assert "lowentropy: Apply the code from the last chat answer" in actions
    assert run["actions-before-apply"] == RECT_APPLIED
    code = max(blocks, key=len)
    result = run["action-result"]
    assert result["verified"] is True, result.get("reason")
    assert result["applied"] is True, run["_log"]
    assert code in run["action-buffer"], (code, run["action-buffer"])
    assert run["action-buffer"] != run["actions-before-apply"]
