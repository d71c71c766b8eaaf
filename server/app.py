"""The language server: state on a typed subclass, handlers wired in one place.

Each feature lives in its own module (`tab.py`, …) as functions taking the
server; this module registers them and owns lifecycle and configuration.
"""

from __future__ import annotations

import asyncio
import logging
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lowentropy.prompts.recorder import PromptRecorder

from . import chat, indexing, lsp_logging, protocol, tab, tab_lsp
from .apply import feature as apply_feature
from .backends import Backends
from .documents import DocumentState
from .model_setup import prepare_packaged_models
from .next_edit import feature as next_edit
from .ordered_sync import OrderedSyncProtocol
from .privacy import private_reason
from .settings import Settings, SettingsError, resolve, unwrap
from .stats import TabStats
from .tasks import TaskKeeper
from .trust import settings_sources
from .wire import structure, to_plain, unstructure

log = logging.getLogger(__name__)

_FENCED = re.compile(r"```[^\n]*\n(.*?)\n```", re.S)

try:
    __version__ = version("lowentropy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


class Documents:
    def __init__(self) -> None:
        self._states: dict[str, DocumentState] = {}

    def get(self, uri: str) -> DocumentState:
        state = self._states.get(uri)
        if state is None:
            state = self._states[uri] = DocumentState(uri=uri)
        return state

    def drop(self, uri: str) -> None:
        self._states.pop(uri, None)

    def uris(self) -> list[str]:
        return list(self._states)


class LowEntropyServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "lowentropy",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=OrderedSyncProtocol,
        )
        self.settings = Settings()
        self.documents = Documents()
        self.backends = Backends()
        self.tasks = TaskKeeper("server")  # the server's own background work (preloading...)
        self.tab_stats = TabStats()
        self.tab = tab.TabEngine(self)
        self.next_edits = next_edit.NextEdits(self)
        self.index = indexing.IndexService(self)
        self.recorder = PromptRecorder(None)
        self.last_chat_answer: str | None = None  # its code is what "Apply" offers by default
        self._raw_layers: dict[str, Any] = {}
        self.root: Path | None = None
        self.log_handler: logging.Handler | None = None

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve over stdio, resynchronising after a damaged frame and answering every request."""
        from .framing import serve_stdio

        serve_stdio(self, stdin, stdout)

    def start_tcp(self, host: str, port: int) -> None:
        """Serve one session over TCP, opened only with the token in a 0600 file (tcp.py)."""
        from .tcp import serve_tcp

        serve_tcp(self, host, port)

    # ---- configuration -------------------------------------------------------------------

    def apply_settings_layer(self, name: str, raw: Any) -> bool:
        """Add or replace one settings layer; on error keep the last good settings and say why."""
        layers = dict(self._raw_layers)
        layers[name] = unwrap(to_plain(raw))
        order = [layers[k] for k in ("user", "toml", "init", "client") if layers.get(k) is not None]
        try:
            settings = resolve(*order)
        except SettingsError as exc:
            message = f"lowentropy: invalid configuration ({name}): {exc}. Keeping the previous configuration."
            log.warning(message)
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=message)
            )
            return False
        self._raw_layers = layers
        self.settings = settings
        self.recorder = PromptRecorder(settings.record_prompts)
        return True

    def last_chat_code(self) -> str | None:
        """The longest fenced code block of the last chat answer, if it had one."""
        if not self.last_chat_answer:
            return None
        blocks = _FENCED.findall(self.last_chat_answer)
        return max(blocks, key=len) if blocks else None

    def relative_path(self, path: str) -> str:
        if self.root is not None:
            try:
                return str(Path(path).resolve().relative_to(self.root))
            except ValueError:
                pass
        return Path(path).name


def initialize(ls: LowEntropyServer, params: types.InitializeParams) -> None:
    root_uri = params.root_uri or (
        params.workspace_folders[0].uri if params.workspace_folders else None
    )
    if root_uri:
        path = to_fs_path(root_uri)
        ls.root = Path(path).resolve() if path else None
    # The user's file, then the workspace's without what only the user may set (trust.py).
    sources = settings_sources(ls.root)
    for warning in sources.warnings:
        log.warning("%s", warning)
        ls.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=warning)
        )
    if sources.user is not None:
        ls.apply_settings_layer("user", sources.user)
    if sources.workspace is not None:
        ls.apply_settings_layer("toml", sources.workspace)
    if params.initialization_options is not None:
        ls.apply_settings_layer("init", params.initialization_options)


async def initialized(ls: LowEntropyServer, params: types.InitializedParams) -> None:
    ls.log_handler = lsp_logging.attach(ls)

    # Load the Tab backend now so the first keystroke does not pay for it.
    async def preload() -> None:
        try:
            await prepare_packaged_models(ls)
            await ls.backends.get("tab", ls.settings.role("tab"))
        except Exception as exc:  # surfaced to the user, the server stays up
            log.warning("loading the tab backend failed: %s", exc)
            ls.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=f"lowentropy: {exc}")
            )

    loaded = ls.tasks.keep(asyncio.create_task(preload()))
    # Index in the background once the completion model is in: a first keystroke never waits.
    ls.index.start(after=loaded)
    _watch_files(ls)


def _watch_files(ls: LowEntropyServer) -> None:
    """Ask for `workspace/didChangeWatchedFiles` when the client can register it dynamically."""
    workspace = ls.client_capabilities.workspace
    watched = workspace.did_change_watched_files if workspace is not None else None
    if ls.index.index is None or watched is None or not watched.dynamic_registration:
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern="**/*")]
    )
    registration = types.Registration(
        id="lowentropy-watch",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=options,
    )
    future = ls.client_register_capability(types.RegistrationParams(registrations=[registration]))

    def done(f: Any) -> None:
        if f.exception() is not None:
            log.info("the client did not take the file watcher: %s", f.exception())

    future.add_done_callback(done)


def did_change_configuration(
    ls: LowEntropyServer, params: types.DidChangeConfigurationParams
) -> None:
    if params.settings is not None and ls.apply_settings_layer("client", params.settings):
        ls.tasks.keep(asyncio.create_task(ls.index.restart_if_changed()))


def did_open(ls: LowEntropyServer, params: types.DidOpenTextDocumentParams) -> None:
    state = ls.documents.get(params.text_document.uri)
    state.version = params.text_document.version
    state.language_id = params.text_document.language_id
    ls.tab.schedule_warm(params.text_document.uri, 0.0)
    if private_reason(ls, params.text_document.uri) is None:  # its edits may go in prompts
        ls.next_edits.opened(params.text_document.uri)


def did_change(ls: LowEntropyServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    state = ls.documents.get(uri)
    # pygls has applied the changes already; record them for edit history and warming.
    for change in params.content_changes:
        state.record_change(params.text_document.version, change)
        if isinstance(change, types.TextDocumentContentChangePartial):
            doc = ls.workspace.text_documents.get(uri)
            if doc is not None:
                index = state.index(doc.source)
                line = min(change.range.start.line, index.line_count - 1)
                end = change.text.count("\n")
                last = change.text.rsplit("\n", 1)[-1]
                target_line = min(line + end, index.line_count - 1)
                col = (0 if end else change.range.start.character) + len(last)
                state.last_edit_offset = index.offset(
                    target_line, min(col, len(index.line(target_line)))
                )
    ls.tab.schedule_warm(uri, ls.settings.completion.warm_delay_ms / 1000)
    if private_reason(ls, uri) is None:
        ls.next_edits.changed(uri, params.text_document.version)
    ls.index.schedule([uri])


def did_close(ls: LowEntropyServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.tab.forget(params.text_document.uri)
    ls.documents.drop(params.text_document.uri)
    ls.next_edits.closed(params.text_document.uri)


async def inline_completion(
    ls: LowEntropyServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList | None:
    return await tab_lsp.inline_completion(ls, params)


async def completion(
    ls: LowEntropyServer, params: types.CompletionParams
) -> types.CompletionList | None:
    return await tab_lsp.completion(ls, params)


def accept_completion(ls: LowEntropyServer, *args: Any) -> None:
    ls.tab_stats.accepted += 1


def did_show_completion(ls: LowEntropyServer, params: Any) -> None:
    ls.tab_stats.shown += 1


def did_partially_accept_completion(ls: LowEntropyServer, params: Any) -> None:
    ls.tab_stats.partially_accepted += 1


async def stats(ls: LowEntropyServer, params: Any) -> Any:
    request = structure(params, protocol.StatsParams)
    backends = []
    for role, backend in ls.backends.loaded().items():
        gen = backend.generator
        backends.append(
            protocol.BackendState(
                role=role,
                kind="embedded" if backend.config.embedded else "pool",
                name=gen.name,
                template=backend.template.name,
                tokenizer_exact=bool(backend.tokenizer.exact),
                detail=dict(gen.counters()),
            )
        )
    result = protocol.StatsResult(tab=ls.tab_stats.snapshot(), backends=backends)
    if request.reset:
        ls.tab_stats = type(ls.tab_stats)()
    return unstructure(result)


async def shutdown(ls: LowEntropyServer, params: Any) -> None:
    if ls.log_handler is not None:
        logging.getLogger("lowentropy").removeHandler(ls.log_handler)
    await ls.tasks.aclose()
    await ls.tab.aclose()
    await ls.next_edits.aclose()
    await ls.index.aclose()
    await ls.backends.aclose()


def create_server() -> LowEntropyServer:
    """A fresh server with every feature registered."""
    ls = LowEntropyServer()
    ls.feature(types.INITIALIZE)(initialize)
    ls.feature(types.INITIALIZED)(initialized)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    ls.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    ls.feature(types.TEXT_DOCUMENT_DID_SAVE)(indexing.did_save)
    ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)(indexing.did_change_watched_files)
    # pygls 2.1 advertises inline completion only when registered with its options.
    ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(
        inline_completion
    )
    ls.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", "(", " ", "=", ":"]),
    )(completion)
    ls.command(tab_lsp.ACCEPT_COMMAND)(accept_completion)
    ls.feature(protocol.DID_SHOW_COMPLETION)(did_show_completion)
    ls.feature(protocol.DID_PARTIALLY_ACCEPT_COMPLETION)(did_partially_accept_completion)
    ls.feature(protocol.STATS)(stats)
    ls.feature(protocol.SEARCH)(indexing.search)
    ls.feature(protocol.INDEX_STATUS)(indexing.index_status)
    ls.feature(protocol.CHAT)(chat.chat)
    apply_feature.register(ls)
    next_edit.register(ls)
    ls.feature(types.SHUTDOWN)(shutdown)
    return ls
