"""Zed: the documented settings and the extension's files parse and run `lowentropy serve`.

Zed cannot run here and the extension cannot be built (no crates registry), so this
checks only what can be checked without them: the `jsonc` block of
`docs/editors/zed.md` is valid JSON once its `//` comments go, its
`initialization_options` are settings the server accepts, every language it enables
lowentropy for is one the extension registers the server for, and
`clients/zed/{extension.toml,Cargo.toml,src/lib.rs}` agree on the server's name and
command. Whether Zed loads the extension is not tested.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from editor_env import REPO

from lowentropy.server.settings import resolve

ZED = REPO / "clients" / "zed"
DOC = REPO / "docs" / "editors" / "zed.md"


def strip_line_comments(text: str) -> str:
    """JSON with `//` comments → JSON (a `//` inside a string stays)."""
    out: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_string:
            if char == '"' and not escaped:
                in_string = False
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
        elif text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        out.append(char)
        i += 1
    return "".join(out)


def documented_settings() -> dict[str, Any]:
    blocks = re.findall(r"```jsonc\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, f"{DOC}: expected one jsonc block, found {len(blocks)}"
    settings: dict[str, Any] = json.loads(strip_line_comments(blocks[0]))
    return settings


def test_comment_stripping_keeps_strings() -> None:
    text = '{\n  // a comment\n  "url": "http://x//y", // trailing\n  "n": "a\\"//b"\n}'
    assert json.loads(strip_line_comments(text)) == {"url": "http://x//y", "n": 'a"//b'}


def test_documented_settings_run_lowentropy_serve() -> None:
    settings = documented_settings()
    server = settings["lsp"]["lowentropy"]
    assert server["binary"]["path"].endswith("/lowentropy")
    assert server["binary"]["arguments"] == ["serve"]
    # The options are the server's own settings: it would reject an unknown key.
    resolve(server["initialization_options"])
    for language, options in settings["languages"].items():
        assert "lowentropy" in options["language_servers"], language


def test_extension_registers_the_server_for_the_documented_languages() -> None:
    manifest = tomllib.loads((ZED / "extension.toml").read_text(encoding="utf-8"))
    assert manifest["id"] == "lowentropy" and manifest["schema_version"] == 1
    for key in ("name", "version", "description", "authors"):
        assert manifest[key], key
    registered = manifest["language_servers"]["lowentropy"]["languages"]
    assert set(documented_settings()["languages"]) <= set(registered)


def test_crate_is_a_zed_extension_that_runs_serve() -> None:
    cargo = tomllib.loads((ZED / "Cargo.toml").read_text(encoding="utf-8"))
    assert cargo["lib"]["crate-type"] == ["cdylib"]
    assert (ZED / cargo["lib"]["path"]).is_file()
    assert re.fullmatch(r"\d+\.\d+\.\d+", cargo["dependencies"]["zed_extension_api"])
    source = (ZED / "src" / "lib.rs").read_text(encoding="utf-8")
    assert 'const SERVER: &str = "lowentropy";' in source
    assert 'vec!["serve".to_string()]' in source
    assert "zed::register_extension!(LowEntropyExtension);" in source
    # Each method the extension overrides is one of zed::Extension's language-server hooks.
    methods = set(re.findall(r"\n    fn (\w+)\(", source))
    assert methods == {
        "new",
        "language_server_command",
        "language_server_initialization_options",
        "language_server_workspace_configuration",
    }
