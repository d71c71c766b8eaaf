"""VS Code (code-server 4.100.3 in Debian's headless Chromium) with the extension in clients/vscode.

The built `clients/vscode/lowentropy.vsix` is installed into a private extensions folder with
`code-server --install-extension`; code-server serves the workbench and runs the extension
host in Node, and `tests/editors/vscode_driver.mjs` opens it in Chromium through
puppeteer-core and clicks `shapes.py` in the Explorer. The extension's self-test
(`clients/vscode/src/selfTest.ts`, on only when LOWENTROPY_VSCODE_SELFTEST names a folder)
then runs the steps through VS Code's own commands and asks the driver for the keys and
clicks a user would give; it records what it saw in `result.json`, which these tests read.
The server is this virtualenv's `lowentropy`, named by the `lowentropy.serverPath` setting
(the extension host takes PATH from the login shell, not from code-server). Data: the
texts in `tests/editor_env.py`.

- Ghost text: `editor.action.inlineSuggest.trigger` at the end of line 6 asks the server
  over `textDocument/inlineCompletion`; the suggestion is drawn in the editor (the driver
  finds the ghost-text element) and a real Tab press accepts it; the saved file is the text
  with exactly the suggestion the server gives in-process for the same text and cursor.
- Apply: `lowentropy.apply` with the sketch opens a `vscode.diff` preview whose right side
  is the applied text; a click on the ✓ (Accept Edit) in the editor title writes it, and
  the saved file is the applied text.
- Chat streams pieces through `$/progress` and ends with an answer; the status item's
  requests answer (index off, as the workspace's lowentropy.toml says).

What it cannot show: how it looks to a person (it checks elements, not pixels), the chat
panel's rendering inside its webview, next-edit decorations, Edit Selection's input box
(the model's rewrite is not deterministic), and desktop VS Code itself, whose workbench
is the same code as code-server's but whose extension host runs in Electron.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
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

from lowentropy.server.inprocess import complete_at

EDITORS = REPO / ".cache" / "editors"
CODE_SERVER = EDITORS / "code-server" / "node_modules" / ".bin" / "code-server"
PUPPETEER = EDITORS / "node_modules" / "puppeteer-core"
CHROMIUM = Path("/usr/bin/chromium")
EXTENSION = REPO / "clients" / "vscode"
VSIX = EXTENSION / "lowentropy.vsix"
DRIVER = REPO / "tests" / "editors" / "vscode_driver.mjs"
QUESTION = "What does perimeter return?"

# The user's settings: nothing on screen but the workbench, no network, no automatic next edit.
USER_SETTINGS = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.welcomePage.walkthroughs.openOnInstall": False,
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "git.enabled": False,
    "editor.inlineSuggest.enabled": True,
    "lowentropy.client.nextEditDelayMs": -1,
}


def _built_vsix() -> Path:
    """The .vsix, if it is newer than every source of the extension."""
    if not VSIX.is_file():
        pytest.fail(f"{VSIX} is missing: run `bash clients/vscode/build.sh`")
    sources = [*(EXTENSION / "src").glob("*.ts"), EXTENSION / "package.json"]
    stale = [p.name for p in sources if p.stat().st_mtime > VSIX.stat().st_mtime]
    if stale:
        pytest.fail(f"{VSIX.name} is older than {stale}: run `bash clients/vscode/build.sh`")
    return VSIX


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"code-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"code-server did not listen on {port} within {seconds} s")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One code-server + Chromium session through every step; the tests read its record."""
    code_server = require_tool(CODE_SERVER, "code-server 4.100.3")
    chromium = require_tool(CHROMIUM, "Chromium (Debian chromium)")
    node = require_tool("node", "Node 20")
    if not (PUPPETEER / "package.json").is_file():
        pytest.fail("puppeteer-core is not installed: run `bash scripts/install-editors.sh`")
    vsix = _built_vsix()

    tmp = tmp_path_factory.mktemp("vscode")
    root = workspace(tmp, {"shapes.py": SHAPES, "rect.py": RECT})
    bin_dir = lowentropy_bin(tmp)
    env = editor_env(tmp, bin_dir)
    selftest = tmp / "selftest"
    selftest.mkdir()
    (selftest / "input.json").write_text(
        json.dumps(
            {
                "tabFile": "shapes.py",
                "tabCursor": list(SHAPES_CURSOR),
                "applyFile": "rect.py",
                "sketch": SKETCH,
                "question": QUESTION,
            }
        ),
        encoding="utf-8",
    )
    user_data, extensions = tmp / "user-data", tmp / "extensions"
    (user_data / "User").mkdir(parents=True)
    # VS Code's extension host takes PATH from the user's login shell (here /etc/profile's),
    # so the server is named the way the README tells users: lowentropy.serverPath.
    settings = {**USER_SETTINGS, "lowentropy.serverPath": str(bin_dir / "lowentropy")}
    (user_data / "User" / "settings.json").write_text(json.dumps(settings), "utf-8")
    dirs = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]

    installed = subprocess.run(
        [code_server, *dirs, "--install-extension", str(vsix)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "was successfully installed" in installed.stdout, installed.stdout + installed.stderr
    assert (extensions / "lowentropy.lowentropy-0.1.0" / "dist" / "extension.js").is_file()

    port = _free_port()
    log = (tmp / "code-server.log").open("wb")
    server = subprocess.Popen(
        [code_server, *dirs, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}",
         "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", str(root)],
        env={**env, "LOWENTROPY_VSCODE_SELFTEST": str(selftest)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    started = time.monotonic()
    try:
        _wait_for_port(port, server, 60)
        url = f"http://127.0.0.1:{port}/?folder={root}"
        driver = subprocess.run(
            [node, str(DRIVER), url, str(selftest), str(EDITORS), chromium, "shapes.py", "420"],
            env=env, capture_output=True, text=True, timeout=480,
        )  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    result = selftest / "result.json"
    record: dict[str, Any] = json.loads(result.read_text("utf-8")) if result.is_file() else {}
    record["_seconds"] = time.monotonic() - started
    record["_root"] = root
    record["_log"] = (
        f"driver (exit {driver.returncode}):\n{driver.stdout[-3000:]}{driver.stderr[-3000:]}\n"
        f"code-server:\n{(tmp / 'code-server.log').read_text('utf-8', 'replace')[-3000:]}\n"
        f"screenshots: {sorted(str(p) for p in selftest.glob('*.png'))}"
    )
    return record


def _steps_ok(record: dict[str, Any], *steps: str) -> None:
    assert "error" not in record, f"{record.get('error')}\n{record['_log']}"
    for step in steps:
        assert step in record.get("steps", []), f"step {step!r} did not finish\n{record['_log']}"


async def test_ghost_text_drawn_and_accepted_with_tab(run: dict[str, Any], tmp_path: Path) -> None:
    _steps_ok(run, "client", "tab")
    tab = run["tab"]
    assert tab["opened"] == SHAPES
    # The same text and cursor in-process: the suggestion VS Code got over the wire.
    line, column = SHAPES_CURSOR
    fresh = workspace(tmp_path, {"shapes.py": SHAPES})
    suggestion = await complete_at(fresh / "shapes.py", line, column, root=fresh)
    assert suggestion.strip(), "the server gives no suggestion here"
    assert tab["suggestion"] == suggestion
    # Drawn: the ghost-text element holds the suggestion's first line (spaces drawn as nbsp).
    assert tab["ghost"]["ok"], tab["ghost"]
    first = suggestion.split("\n")[0].strip()
    assert first in tab["ghost"]["text"].replace("\xa0", " "), tab["ghost"]
    assert tab["acceptedWith"] == "Tab", "Tab did not accept; the commit command did"

    lines = SHAPES.split("\n")
    lines[line] = lines[line][:column] + suggestion + lines[line][column:]
    expected = "\n".join(lines)
    assert tab["text"] == expected
    assert tab["saved"] is True
    assert (run["_root"] / "shapes.py").read_text("utf-8") == expected


def test_apply_previews_the_diff_and_accept_writes_it(run: dict[str, Any]) -> None:
    _steps_ok(run, "apply")
    apply = run["apply"]
    assert apply["before"] == RECT
    assert apply["diffOpen"], "no vscode.diff editor with the file and the proposal"
    assert apply["proposed"] == RECT_APPLIED
    assert apply["click"]["ok"], f"the Accept Edit action was not clickable: {apply['click']}"
    assert apply["outcome"] == "accepted"
    assert apply["text"] == RECT_APPLIED
    assert apply["saved"] is True
    assert (run["_root"] / "rect.py").read_text("utf-8") == RECT_APPLIED


def test_chat_streams_an_answer(run: dict[str, Any]) -> None:
    _steps_ok(run, "chat")
    chat = run["chat"]
    assert chat is not None, "the chat request failed"
    assert chat["content"].strip()
    assert chat["pieces"] > 0, "no $/progress piece arrived"
    assert chat["streamed"].strip()
    assert chat["content"].startswith(chat["streamed"].strip()[:20])


def test_status_item_reads_index_and_backends(run: dict[str, Any]) -> None:
    _steps_ok(run, "status")
    status = run["status"]
    assert "error" not in status, status
    assert status["index"]["state"] == "off"  # the workspace's lowentropy.toml turns it off
    roles = {b["role"]: b["kind"] for b in status["stats"]["backends"]}
    assert roles.get("tab") == "embedded", status["stats"]
    assert status["stats"]["tab"]["accepted"] >= 1, "the Tab acceptance did not reach the server"
