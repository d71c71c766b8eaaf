"""The custom `lowentropy/*` protocol, typed in one place (handlers, tests and client docs use it)."""

from __future__ import annotations

import attrs

STATS = "lowentropy/stats"
# Copilot's notifications, served so existing clients (copilot.lua, copilot.vim UIs) report acceptance.
DID_SHOW_COMPLETION = "textDocument/didShowCompletion"
DID_PARTIALLY_ACCEPT_COMPLETION = "textDocument/didPartiallyAcceptCompletion"


@attrs.define(kw_only=True)
class StatsParams:
    reset: bool = False


@attrs.define(kw_only=True)
class BackendState:
    role: str
    kind: str  # "embedded" | "pool"
    name: str
    template: str
    tokenizer_exact: bool
    detail: dict[str, object] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class StatsResult:
    tab: dict[str, object]
    backends: list[BackendState]
