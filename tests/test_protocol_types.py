"""The VS Code extension's types (`clients/vscode/src/protocol.ts`) agree with `server/protocol.py`.

The server's side of the custom protocol is attrs classes written to the wire in
camelCase; the extension declares the same shapes in TypeScript by hand. A field
added, renamed or dropped on one side and not the other fails here, so the two
cannot drift apart silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from lowentropy.server import protocol, wire

TS = Path(__file__).parents[1] / "clients" / "vscode" / "src" / "protocol.ts"
INTERFACE = re.compile(r"export interface (\w+) \{\n(.*?)\n\}", re.S)
FIELD = re.compile(r"^  (\w+)(\??):", re.M)  # top-level fields only (two spaces)

PAIRS = {
    "DocumentRef": protocol.WireDocument,
    "NextEditItem": protocol.NextEditItem,
    "NextEditResult": protocol.NextEditResult,
    "ChatMessage": protocol.WireChatMessage,
    "ChatParams": protocol.ChatParams,
    "ChatResult": protocol.ChatResult,
    "IgnoredUri": protocol.IgnoredUri,
    "IndexStatus": protocol.IndexStatusResult,
    "SearchHit": protocol.SearchHit,
    "BackendState": protocol.BackendState,
    "StatsResult": protocol.StatsResult,
    "ApplyParams": protocol.ApplyParams,
    "EditSelectionParams": protocol.EditSelectionParams,
    "ApplyStats": protocol.ApplyStats,
    "ApplyResult": protocol.ApplyResult,
}


def _interfaces() -> dict[str, dict[str, bool]]:
    """Each interface's fields, and whether each is optional (`name?:`)."""
    return {
        name: {m[1]: m[2] == "?" for m in FIELD.finditer(body)}
        for name, body in INTERFACE.findall(TS.read_text())
    }


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_typescript_fields_are_the_servers(name: str) -> None:
    declared = _interfaces()
    assert name in declared, f"protocol.ts has no interface {name}"
    fields = {wire.camel(f.name): f for f in attrs.fields(PAIRS[name])}
    assert set(declared[name]) == set(fields), name
    for key, optional in declared[name].items():
        # A field the server may leave out (it has a default) is optional for the client
        # when it sends it; one the server always writes need not be.
        if fields[key].default is attrs.NOTHING and "Params" in name:
            assert not optional, f"{name}.{key} is required by the server"


def test_the_check_reads_every_interface_it_pairs() -> None:
    """The parser itself: every TypeScript interface named here has fields."""
    declared = _interfaces()
    assert all(declared.get(name) for name in PAIRS)
