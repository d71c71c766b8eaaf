"""What the real-editor tests share: the editors' paths, a workspace and a clean PATH.

The editors come from `scripts/install-editors.sh`; a test whose editor is missing
fails and says to run it (the tests themselves touch no network). The editor finds
`lowentropy` on a PATH that holds only it and the system folders, as a user's would,
so no other language server in the virtualenv (ruff's) joins in.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HX = REPO / ".cache" / "editors" / "helix" / "hx"
INSTALL = "bash scripts/install-editors.sh"

# The server's settings for editor tests, read from the workspace's lowentropy.toml so that the
# editors run the documented configuration unchanged: no index, no background warming.
QUIET_TOML = "[index]\nenabled = false\n\n[completion]\nwarmDelayMs = -1\nprefetch = false\nbudgetMs = 120000\n"

# The apply example of tests/test_emacs.py and its sketch.
RECT = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"
SKETCH = "def perimeter(w, h):\n    return 2 * w + 2 * h\n"
RECT_APPLIED = RECT.replace("2 * (w + h)", "2 * w + 2 * h")
# The Tab example: the cursor goes to the end of line 6 (0-based line 5, column 11).
SHAPES = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return \n"
SHAPES_CURSOR = (5, 11)


def require_tool(path: Path | str, what: str) -> str:
    """The tool's path, or a failed test that says how to install it."""
    found = str(path) if Path(path).is_file() and os.access(path, os.X_OK) else None
    found = found or shutil.which(str(path))
    if found is None:
        pytest.fail(f"{what} is not installed: run `{INSTALL}` (as root for its apt part)")
    return found


def lowentropy_bin(tmp: Path) -> Path:
    """A folder holding only a `lowentropy` link to this virtualenv's command."""
    command = Path(sys.executable).parent / "lowentropy"
    assert command.is_file(), f"{command} is missing: install the project (scripts/setup.sh)"
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "lowentropy").symlink_to(command)
    return bin_dir


def editor_env(tmp: Path, bin_dir: Path) -> dict[str, str]:
    """The editor's environment: a private home, cache and config, and a PATH without the venv."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH") and not key.startswith("XDG_")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PATH=os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"]),
        TERM="xterm-256color",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
    )
    return env


def workspace(tmp: Path, files: dict[str, str]) -> Path:
    root = tmp / "ws"
    root.mkdir()
    (root / "lowentropy.toml").write_text(QUIET_TOML, encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root
