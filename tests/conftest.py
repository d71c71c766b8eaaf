"""Shared fixtures: the real server over stdio (pytest-lsp), real models, real HTTP servers.

`lsp_client(...)` starts `python -m lowentropy.server serve` in its own
process with the given initializationOptions and a workspace folder. The
session-scoped `client` is the embedded-engine server most Tab tests share, so
the packaged model loads once for them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lowentropy.server.inprocess import first_suggestion

pytest_plugins = ["servers"]

SERVER_COMMAND = [sys.executable, "-m", "lowentropy.server", "--log-level", "DEBUG", "serve"]

# Tests never wait on warming or prefetch unless they ask for it.
# A budget no loaded CI machine misses: these tests check what a suggestion is, not when.
QUIET_TAB = {"completion": {"warmDelayMs": -1, "prefetch": False, "budgetMs": 120_000}}

# Tests of mechanics run on the packaged SmolLM2-135M (4x faster than the default Qwen
# coder model on 2 cores); tests about the default or about quality unset this.
os.environ.setdefault("LOWENTROPY_DEFAULT_MODEL", "smollm2-135m")

# Index state (LanceDB, Merkle tree) of every server a test starts goes under a
# private folder, never into the user's cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="lowentropy-test-cache-")


@contextlib.asynccontextmanager
async def lsp_client(
    root: Path,
    initialization_options: dict[str, Any] | None = None,
    *,
    capabilities: types.ClientCapabilities | None = None,
) -> AsyncIterator[LanguageClient]:
    # The codebase index loads torch and embeds in the background: only the tests
    # that are about it (and say so with an `index` block) switch it on.
    options = dict(initialization_options or {})
    options.setdefault("index", {"enabled": False})
    initialization_options = options
    config = ClientServerConfig(server_command=SERVER_COMMAND)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities or client_capabilities("visual-studio-code"),
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                initialization_options=initialization_options,
            )
        )
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.shutdown_session()
        await client.stop()


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(workspace: Path) -> AsyncIterator[LanguageClient]:
    """The embedded-engine server (packaged SmolLM2, greedy), shared by the session."""
    async with lsp_client(workspace, QUIET_TAB) as c:
        yield c


class Docs:
    """Open documents in a client and edit them like an editor would.

    A document's URI is `<root>/<name>`: the same name always gives the same path
    (and so the same prompt header), and opening it again closes it first, which
    makes the server forget its cached suggestions for it.
    """

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.versions: dict[str, int] = {}
        if not hasattr(client, "open_uris"):
            client.open_uris = set()  # type: ignore[attr-defined]

    def open(self, text: str, name: str = "fib.py", language: str = "python") -> str:
        uri = (self.root / name).as_uri()
        opened: set[str] = self.client.open_uris  # type: ignore[attr-defined]
        if uri in opened:
            self.client.text_document_did_close(
                types.DidCloseTextDocumentParams(
                    text_document=types.TextDocumentIdentifier(uri=uri)
                )
            )
        opened.add(uri)
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language, version=1, text=text
                )
            )
        )
        return uri

    def insert(self, uri: str, line: int, character: int, text: str) -> None:
        self.versions[uri] += 1
        pos = types.Position(line=line, character=character)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self.versions[uri]
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=pos, end=pos), text=text
                    )
                ],
            )
        )

    async def inline(self, uri: str, line: int, character: int) -> types.InlineCompletionList:
        result = await self.client.text_document_inline_completion_async(
            inline_params(uri, line, character)
        )
        assert isinstance(result, types.InlineCompletionList)
        return result


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )


def first_text(result: types.InlineCompletionList) -> str:
    return first_suggestion(result)


async def stats(client: LanguageClient) -> Any:
    return await client.protocol.send_request_async("lowentropy/stats", {})


@pytest.fixture
def docs(client: LanguageClient, workspace: Path) -> Docs:
    return Docs(client, workspace)


async def raw_request(client: LanguageClient, method: str, params: Any) -> Any:
    """Send a standard request and get its result as the JSON the server sent.

    lsprotocol's converter reads some results wrongly on the client side: the
    `(Command | CodeAction)[]` of a code action request comes back as Commands whose
    `command` is the CodeAction's command object printed as a string, its `edit` lost.
    An editor parses the JSON itself; so do these tests.
    """
    protocol = client.protocol
    protocol.get_result_type = lambda _method: None  # type: ignore[method-assign]
    try:
        return await protocol.send_request_async(method, params)
    finally:
        del protocol.get_result_type


# The tests that start a real editor (minutes, Debian packages): `pytest -m "not editors"`
# is the quick loop.
_EDITOR_MODULES = {"test_helix", "test_neovim", "test_emacs", "test_vscode", "test_zed_config"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in _EDITOR_MODULES:
            item.add_marker(pytest.mark.editors)
