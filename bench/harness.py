"""Shared bench plumbing: start the real server over stdio and drive it like an editor.

Benches print their figures and PASS/FAIL lines; they are not tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import sysconfig
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lowentropy.server.inprocess import first_suggestion
from lowentropy.server.stats import percentile

SERVER = [sys.executable, "-m", "lowentropy.server", "--log-level", "WARNING", "serve"]
if os.environ.get("LOWENTROPY_BENCH_LOG"):  # a DEBUG log of the server, for digging into figures
    SERVER[3:5] = ["--log-level", "DEBUG", "--log-file", os.environ["LOWENTROPY_BENCH_LOG"]]


def stdlib_file(relative: str) -> Path:
    return Path(sysconfig.get_paths()["stdlib"]) / relative


@contextlib.asynccontextmanager
async def server(root: Path, options: dict[str, Any]) -> AsyncIterator[LanguageClient]:
    client = await ClientServerConfig(server_command=SERVER).start()
    assert isinstance(client, LanguageClient)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                initialization_options={"lowentropy": options},
            )
        )
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.shutdown_session()
        await client.stop()


class Editor:
    """One open document, edited with incremental changes as an editor sends them."""

    def __init__(
        self, client: LanguageClient, uri: str, text: str, language: str = "python"
    ) -> None:
        self.client = client
        self.uri = uri
        self.lines = text.split("\n")
        self.version = 1
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language, version=1, text=text
                )
            )
        )

    def replace(self, line: int, start: int, end: int, text: str) -> None:
        """Replace columns [start, end) of `line` (ASCII text, so code points = UTF-16)."""
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.version
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=line, character=start),
                            end=types.Position(line=line, character=end),
                        ),
                        text=text,
                    )
                ],
            )
        )
        old = self.lines[line]
        self.lines[line] = old[:start] + text + old[end:]

    async def inline(self, line: int, character: int) -> str:
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        return first_suggestion(result)


async def wait_ready(client: LanguageClient, timeout: float = 180.0) -> None:
    """Until the server has loaded its Tab backend (it preloads after `initialized`) and
    its background indexing of the workspace (on by default) is done: figures describe
    the steady state, not the first minute of a fresh workspace."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (await stats(client)).backends:
        if loop.time() > deadline:
            raise TimeoutError("the server did not load its Tab backend")
        await asyncio.sleep(0.1)
    while True:
        status = await client.protocol.send_request_async("lowentropy/indexStatus", {})
        if getattr(status, "state", "off") in ("ready", "off"):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"the index did not get ready: {status}")
        await asyncio.sleep(0.2)


async def stats(client: LanguageClient, reset: bool = False) -> Any:
    return await client.protocol.send_request_async("lowentropy/stats", {"reset": reset})


def pct(values: list[float], q: float) -> float:
    return percentile(values, q) if values else float("nan")


def verdict(name: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    return ok


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
