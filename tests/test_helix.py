"""Helix 25.01 (Debian trixie's `hx`, run with its own loader) against `lowentropy serve`.

Helix runs in a tmux pane with `clients/helix/languages.toml` as the user's config,
unchanged, and finds `lowentropy` on PATH; keys go in with `send-keys` and the screen
comes back with `capture-pane`. Data: the texts in `tests/editor_env.py`.

- `hx --health` names the server as found, for every language the block configures.
- C-x in insert mode shows our completion item; Tab and Enter put the Tab suggestion
  into the buffer, and `:w` writes exactly that (compared with the suggestion the
  server gives in-process for the same text and cursor).
- After renaming a parameter by typing in Helix, `space a` lists "lowentropy: Next edit:
  …", and choosing it changes the buffer: the next use is renamed too (`:w` writes it).
- `space a` on a selection lists "lowentropy: Edit selection…", and choosing it sends
  `workspace/executeCommand` with the selection to the server.

What it cannot show: the apply actions changing the buffer. Helix has no way to send a
custom request (`lowentropy/chat`) or to ask the user for an instruction, so the two
apply actions (apply the last chat answer, edit the selection with an instruction)
cannot run from Helix; the server refuses the empty instruction, and the test checks
that refusal reached Helix's log and left the file alone.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from editor_env import (
    HX,
    REPO,
    SHAPES,
    SHAPES_CURSOR,
    editor_env,
    lowentropy_bin,
    require_tool,
    workspace,
)

from lowentropy.server.inprocess import complete_at

LANGUAGES_TOML = REPO / "clients" / "helix" / "languages.toml"
DOC = REPO / "docs" / "editors" / "helix.md"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_sessions = itertools.count()


class Pane:
    """One Helix in a tmux pane on a private tmux server (its own socket and environment)."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.socket = f"lowentropy-hx-{os.getpid()}-{next(_sessions)}"
        self.env = env
        self._tmux(
            "new-session", "-d", "-s", "hx", "-x", "100", "-y", "30", "-c", str(cwd),
            shlex.join(command),
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "hx", *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "hx")

    def wait_for(self, text: str, seconds: float, retry: tuple[str, ...] = ()) -> str:
        """The screen once it shows `text`; `retry` keys are sent again every 3 s meanwhile."""
        deadline = time.monotonic() + seconds
        next_retry = time.monotonic() + 3
        screen = self.screen()
        while text not in screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {seconds} s:\n{screen}")
            if retry and time.monotonic() > next_retry:
                self.keys(*retry)
                next_retry = time.monotonic() + 3
            time.sleep(0.2)
            screen = self.screen()
        return screen

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, check=False)
        # tmux leaves the socket file behind.
        folder = Path(self.env.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (folder / self.socket).unlink(missing_ok=True)


@pytest.fixture
def helix_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A home whose Helix config is the shipped languages.toml, and the editor's environment."""
    require_tool(HX, "Helix (hx from Debian trixie)")
    require_tool("tmux", "tmux")
    env = editor_env(tmp_path, lowentropy_bin(tmp_path))
    env.pop("TMUX", None)
    config = Path(env["XDG_CONFIG_HOME"]) / "helix"
    config.mkdir(parents=True)
    shutil.copy(LANGUAGES_TOML, config / "languages.toml")
    return tmp_path, env


@pytest.fixture
def helix(helix_home: tuple[Path, dict[str, str]]) -> Iterator[tuple[Pane, Path, Path]]:
    """Helix on ws/shapes.py with the cursor on line 6, logging LSP traffic to helix.log."""
    tmp, env = helix_home
    root = workspace(tmp, {"shapes.py": SHAPES})
    log = tmp / "helix.log"
    line = SHAPES_CURSOR[0] + 1
    pane = Pane([str(HX), "-v", "--log", str(log), f"shapes.py:{line}"], root, env)
    try:
        pane.wait_for("shapes.py", 10)
        yield pane, root, log
    finally:
        pane.close()


def test_health_names_the_server_for_each_language(
    helix_home: tuple[Path, dict[str, str]],
) -> None:
    """`hx --health LANG` lists lowentropy as found (it exits 0 even when the config is broken)."""
    tmp, env = helix_home
    shipped = LANGUAGES_TOML.read_text(encoding="utf-8")
    assert f"```toml\n{shipped}```" in DOC.read_text(encoding="utf-8"), "docs differ from the file"
    config = tomllib.loads(shipped)
    assert config["language-server"]["lowentropy"] == {"command": "lowentropy", "args": ["serve"]}
    languages = [entry["name"] for entry in config["language"]]
    assert "python" in languages
    found = re.compile(r"✓ lowentropy: (\S+)")
    for language in languages:
        done = subprocess.run(
            [str(HX), "--health", language], env=env, capture_output=True, text=True, timeout=30
        )
        report = _ANSI.sub("", done.stdout + done.stderr)
        match = found.search(report)
        assert match, f"hx --health {language}:\n{report}"
        assert Path(match.group(1)).resolve() == (tmp / "bin" / "lowentropy").resolve()


async def test_completion_item_accepted_into_the_buffer(
    helix: tuple[Pane, Path, Path],
) -> None:
    pane, root, log = helix
    path = root / "shapes.py"
    line, column = SHAPES_CURSOR
    suggestion = await complete_at(path, line, column, root=root)
    assert suggestion.strip(), "the server gives no suggestion here"
    # Our item's label: the suggestion's first line (the cursor follows a space, so no
    # typed word heads it).
    label = suggestion.split("\n")[0]

    pane.keys("A")  # insert at the end of line 6, after "return "
    pane.wait_for("INS", 5)
    # C-x asks for completion; until the server has started Helix has nobody to ask.
    screen = pane.wait_for(label, 45, retry=("C-x",))
    assert f"{label} text" in screen  # the menu row: label, then the item's kind
    pane.keys("Tab")  # select the first item: Helix previews it and shows its detail
    screen = pane.wait_for("lowentropy", 5)
    pane.keys("Enter", "Escape")
    pane.wait_for("NOR", 5)
    pane.keys(":w", "Enter")
    pane.wait_for("written", 5)

    lines = SHAPES.split("\n")
    lines[line] = lines[line][:column] + suggestion + lines[line][column:]
    assert path.read_text(encoding="utf-8") == "\n".join(lines), _tail(log)


def test_next_edit_code_action_changes_the_buffer(helix: tuple[Pane, Path, Path]) -> None:
    pane, root, log = helix
    path = root / "shapes.py"
    # Type only once the server runs: an edit before that is folded into didOpen, and the
    # server then has no edit to propagate.
    _wait_for_message(log, "->", "initialized", 45)
    pane.keys("g", "g", "f", "(", "l")  # the first parameter, `w`, selected
    pane.keys("c")
    pane.wait_for("INS", 5)
    pane.keys("width", "Escape")
    pane.wait_for("NOR", 5)
    assert _wait_for_message(log, "->", "textDocument/didChange", 45)
    # Let the typing burst end (the history merges edits within a second) before asking.
    time.sleep(1.5)
    screen = ""
    for _ in range(3):  # ask again from normal mode only: a stray `a` would append text
        pane.keys("Escape")
        pane.wait_for("NOR", 5)
        pane.keys("Space")
        time.sleep(0.3)
        pane.keys("a")
        try:
            screen = pane.wait_for("lowentropy: Next edit: width", 10)
            break
        except AssertionError:
            continue
    assert "lowentropy: Next edit: width" in screen, _tail(log)
    pane.keys("Enter")  # the first action: ours
    pane.wait_for("NOR", 5)
    pane.keys(":w", "Enter")
    pane.wait_for("written", 5)
    expected = SHAPES.replace("area(w, h)", "area(width, h)").replace("w * h", "width * h")
    assert path.read_text(encoding="utf-8") == expected, _tail(log)


def test_code_action_menu_lists_ours_and_runs_the_command(
    helix: tuple[Pane, Path, Path],
) -> None:
    pane, root, log = helix
    pane.keys("%")  # select the whole file
    # Until the server has started there are no actions: close the message and ask again.
    pane.keys("Space", "a")
    screen = pane.wait_for("lowentropy: Edit selection…", 45, retry=("Escape", "%", "Space", "a"))
    # Without a chat answer in this server there is no "Apply the code…" action.
    assert "last chat answer" not in screen
    pane.keys("Enter")

    sent = _wait_for_message(log, "->", "workspace/executeCommand", 10)
    (argument,) = sent["params"]["arguments"]
    assert sent["params"]["command"] == "lowentropy.editSelection"
    assert argument["textDocument"]["uri"] == (root / "shapes.py").as_uri()
    assert argument["range"]["start"] == {"line": 0, "character": 0}
    assert argument["range"]["end"]["line"] >= SHAPES.count("\n") - 1
    # Helix has no prompt for the instruction: the server refuses, and nothing is written.
    reply = _wait_for_message(log, "<-", "", 10, id=sent["id"])
    assert "the instruction is empty" in reply["error"]["message"]
    pane.keys(":w", "Enter")
    pane.wait_for("written", 5)
    assert (root / "shapes.py").read_text(encoding="utf-8") == SHAPES


def _messages(log: Path, direction: str) -> Iterator[dict[str, Any]]:
    """The JSON-RPC messages Helix logged as sent (`->`) to or received (`<-`) from lowentropy."""
    marker = f"lowentropy {direction} "
    if not log.is_file():
        return
    for entry in log.read_text(encoding="utf-8", errors="replace").splitlines():
        _, found, payload = entry.partition(marker)
        if found and payload.startswith("{"):
            try:
                yield json.loads(payload)
            except json.JSONDecodeError:
                continue


def _wait_for_message(
    log: Path, direction: str, method: str, seconds: float, id: Any = None
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message in _messages(log, direction):
            if method and message.get("method") == method:
                return message
            if id is not None and message.get("id") == id and "method" not in message:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no {method or id} {direction} in the Helix log:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.is_file() else ""
