"""A chat answer in markdown, applied: its code block(s) found, the one for the file picked.

Data: `textwrap.py` of the standard library (read from disk; copied to a temporary folder
for the command-line test).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from lowentropy.server.apply import plan_apply
from lowentropy.server.apply.markdown import blocks_for, parse_answer

SOURCE = Path(textwrap.__file__).read_text(encoding="utf-8")
OLD = "            return line.strip()\n"
NEW = "            return line.strip() and not line.isspace()\n"
CHANGE = (
    "def indent(text, prefix, predicate=None):\n    # ... existing code ...\n"
    "    if predicate is None:\n        def predicate(line):\n"
    "            return line.strip() and not line.isspace()\n    # ... existing code ...\n"
)
EXPECTED = SOURCE.replace(OLD, NEW, 1)
USAGE = "```python\nimport textwrap\nprint(textwrap.indent('a\\n \\n', '> '))\n```\n"


def test_code_blocks_with_languages_paths_and_tildes() -> None:
    answer = (
        "Edit `src/pkg/util.py` as follows:\n\n```py\nx = 1\n```\n\n"
        "```python src/other.py\ny = 2\n```\n~~~bash\npytest\n~~~\n"
        "```src/pkg/util.ts\nlet z = 3;\n```\n"
    )
    blocks = parse_answer(answer)
    assert blocks is not None
    assert [(b.code, b.language, b.path) for b in blocks] == [
        ("x = 1\n", "python", "src/pkg/util.py"),
        ("y = 2\n", "python", "src/other.py"),
        ("pytest\n", "shell", None),
        ("let z = 3;\n", "typescript", "src/pkg/util.ts"),
    ]
    # the path picks the block, a shell block and another language never count
    assert [b.code for b in blocks_for(blocks, "pkg/util.py", "python")] == ["x = 1\n"]
    assert [b.code for b in blocks_for(blocks, "src/other.py", "python")] == ["y = 2\n"]
    assert blocks_for(blocks, "src/third.py", "python") == [blocks[0]]  # named only in prose


def test_a_sketch_is_no_answer() -> None:
    assert parse_answer(CHANGE) is None
    # a fence inside the file's own code (a docstring's example) is code, not markdown
    original = 'def f():\n    """Use it:\n```\nf()\n```\n    """\n    return 1\n'
    sketch = '    """Use it:\n```\nf()\n```\n    """\n    return 2\n'
    assert parse_answer(sketch, frozenset(line.strip() for line in original.split("\n"))) is None
    assert plan_apply(original, sketch, language="python").result == original.replace(
        "return 1", "return 2"
    )


def test_an_answer_with_prose_and_a_usage_block_applies_its_change() -> None:
    answer = f"Skip blank lines:\n\n```python\n{CHANGE}```\n\nFor example:\n\n{USAGE}\nDone.\n"
    plan = plan_apply(SOURCE, answer, language="python", path="textwrap.py")
    assert plan.result == EXPECTED
    assert plan.sketch == CHANGE


def test_a_change_split_over_two_blocks_applies_both() -> None:
    second = (
        "def dedent(text):\n    # ... existing code ...\n"
        "    if margin:\n        text = re.sub(r'(?m)^' + margin, '', text)\n"
        "    return text.rstrip(' ')\n"
    )
    answer = f"First:\n```python\n{CHANGE}```\nThen, in `dedent`:\n```python\n{second}```\n"
    plan = plan_apply(SOURCE, answer, language="python", path="textwrap.py")
    both = EXPECTED.replace("        text = re.sub(r'(?m)^' + margin, '', text)\n    return text\n",
                            "        text = re.sub(r'(?m)^' + margin, '', text)\n    return text.rstrip(' ')\n")  # fmt: skip
    assert both != EXPECTED
    assert plan.result == both


def test_the_block_whose_path_names_the_file_wins() -> None:
    decoy = "def indent(text, prefix, predicate=None):\n    return 'decoy'\n"
    answer = (
        f"In `other.py`:\n```python other.py\n{decoy}```\n"
        f"And in textwrap:\n```python lib/textwrap.py\n{CHANGE}```\n"
    )
    plan = plan_apply(SOURCE, answer, language="python", path="lib/textwrap.py")
    assert plan.result == EXPECTED


def test_an_answer_without_a_block_for_the_file_says_so() -> None:
    answer = "Run this:\n\n```bash\npip install --upgrade textwrap3\n```\n"
    plan = plan_apply(SOURCE, answer, language="python", path="textwrap.py")
    assert plan.result is None and not plan.regions
    assert plan.reason and "no code block for this file" in plan.reason


def test_the_command_line_applies_an_answer_and_prints_the_diff(tmp_path: Path) -> None:
    target = tmp_path / "textwrap_copy.py"
    target.write_text(SOURCE, encoding="utf-8")
    answer = f"Change the default predicate:\n\n```python textwrap_copy.py\n{CHANGE}```\n"
    command = [sys.executable, "-m", "lowentropy.server.apply", str(target), "--write"]
    done = subprocess.run(command, input=answer, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("--- a/textwrap_copy.py\n+++ b/textwrap_copy.py\n")
    assert "+" + NEW.rstrip("\n") in done.stdout.split("\n")
    assert target.read_text(encoding="utf-8") == EXPECTED
    refused = subprocess.run(command, input=USAGE, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "nothing applied" in refused.stderr
    assert target.read_text(encoding="utf-8") == EXPECTED
