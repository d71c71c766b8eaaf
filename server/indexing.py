"""The workspace's codebase index as a server feature: background sync, file events, search.

Initial indexing runs in the background once the Tab backend has loaded (so
the first completion never waits on it) and reports `$/progress`. The rows
are searchable by full text as soon as a file is chunked; vectors fill in
afterwards, open and recently edited files first.

The index describes files as saved on disk. didSave and
`workspace/didChangeWatchedFiles` re-sync their paths; a didChange re-syncs
its path after `index.syncDelayMs` of quiet, for editors that write files
without sending didSave (the Merkle leaf's size and mtime make that a no-op
when the file did not change on disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path

from lowentropy.retrieval import (
    CrossEncoderReranker,
    Index,
    IndexConfig,
    IndexStatus,
    Reranker,
    SearchHit,
    StoreUnavailableError,
    SyncProgress,
    WalkConfig,
)

from . import protocol, wire
from .settings import IndexOptions
from .tasks import TaskKeeper

if TYPE_CHECKING:
    from lowentropy.models.config import RoleConfig
    from lowentropy.models.types import Embedder

    from .app import LowEntropyServer

log = logging.getLogger(__name__)

_tokens = itertools.count(1)
MAX_SEARCH_LIMIT = 200


class IndexUnavailableError(RuntimeError):
    """The index is switched off or there is no workspace folder."""


def make_embedder(config: RoleConfig) -> Embedder:
    """The `embed` role: the pool's /v1/embeddings when configured, else the packaged MiniLM."""
    if config.endpoints:
        from lowentropy.models.embeddings import OpenAIEmbedder

        endpoint = config.endpoints[0]
        api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        return OpenAIEmbedder(
            endpoint.url,
            model=endpoint.model or config.model,
            api_key=api_key,
            timeouts=config.timeouts,
        )
    from lowentropy.models.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(config.model_path)


def make_reranker(options: IndexOptions) -> Reranker | None:
    """The configured cross-encoder; it loads on the first search that needs it."""
    if not options.rerank_model:
        return None
    return CrossEncoderReranker(options.rerank_model, top=options.rerank_top)


def index_config(options: IndexOptions) -> IndexConfig:
    return IndexConfig(
        db_uri=options.db_uri,
        cache_dir=options.cache_dir,
        walk=WalkConfig(exclude=options.exclude),
    )


class IndexService:
    """Owns the workspace's `Index` and keeps it in step with the files."""

    def __init__(self, ls: LowEntropyServer) -> None:
        self.ls = ls
        self.index: Index | None = None
        self.options: IndexOptions | None = None
        self.initial_sync: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self._pending: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks = TaskKeeper("indexing", on_failure=self._failed)

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, after: asyncio.Future[Any] | None = None) -> None:
        """Open the index for the workspace root and sync it in the background."""
        options = self.ls.settings.index
        self.options = options
        if not options.enabled or self.ls.root is None:
            return
        self.index = Index(
            self.ls.root,
            make_embedder(self.ls.settings.role("embed")),
            index_config(options),
            reranker=make_reranker(options),
        )
        self.initial_sync = self._tasks.keep(asyncio.create_task(self._initial_sync(after)))

    async def restart_if_changed(self) -> None:
        """Settings changed: reopen the index when its own options did."""
        if self.ls.settings.index == self.options:
            return
        await self.aclose()
        self.start()

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self._tasks.aclose()
        self._pending.clear()
        if self.index is not None:
            await self.index.aclose()
            await self.index.embedder.aclose()
        self.index = None

    def _failed(self, exc: BaseException) -> None:
        shown = self.last_error
        self.last_error = str(exc)
        if isinstance(exc, StoreUnavailableError):
            log.warning("indexing failed: %s", exc)  # the message says it all
        else:
            log.warning("indexing failed: %s", exc, exc_info=exc)
        if self.last_error != shown:  # once, not again on every save that fails alike
            self.ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Error,
                    message=f"lowentropy: indexing failed: {exc}",
                )
            )

    # ---- syncing -------------------------------------------------------------------------

    async def _initial_sync(self, after: asyncio.Future[Any] | None) -> None:
        if after is not None:
            await asyncio.wait([after])  # the completion backend loads first
        index = self.require()
        reporter = await self._progress_reporter()
        try:
            result = await index.sync(progress=reporter.threadsafe if reporter else None)
        except BaseException:
            if reporter is not None:
                reporter.end("indexing stopped")
            raise
        log.info(
            "indexed %d files (%d chunks written) in %.1f s",
            result.files,
            result.chunks_written,
            result.seconds,
        )
        if reporter is not None:
            reporter.end(f"{result.files} files indexed")
        self._fill()

    async def _progress_reporter(self) -> _ProgressReporter | None:
        caps = self.ls.client_capabilities.window
        if caps is None or not caps.work_done_progress:
            return None
        token = f"lowentropy/index/{next(_tokens)}"
        try:
            await self.ls.work_done_progress.create_async(token)
        except Exception as exc:  # the client said no: index without a progress bar
            log.info("no progress bar for indexing: %s", exc)
            return None
        reporter = _ProgressReporter(self.ls, token, asyncio.get_running_loop())
        reporter.begin()
        return reporter

    def _fill(self, priority: Iterable[str] = ()) -> None:
        index = self.index
        if index is None:
            return
        opened = [p for uri in self.ls.documents.uris() if (p := to_fs_path(uri))]
        task = index.request_fill(priority_paths=[*priority, *opened])
        if task not in self._tasks:
            self._tasks.keep(task)

    def schedule(self, uris: Iterable[str], *, delay: float | None = None) -> None:
        """Re-sync these documents' paths after `delay` seconds without further calls."""
        if self.index is None:
            return
        for uri in uris:
            path = to_fs_path(uri)
            if path is not None and self.index.walker.relative(path) is not None:
                self._pending.add(path)
        if not self._pending:
            return
        if delay is None:
            delay = (self.options or IndexOptions()).sync_delay_ms / 1000
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._kick)

    def _kick(self) -> None:
        self._timer = None
        if self._runner is None or self._runner.done():
            self._runner = self._tasks.keep(asyncio.create_task(self._run_pending()))

    async def _run_pending(self) -> None:
        index = self.require()
        if self.initial_sync is not None and not self.initial_sync.done():
            await asyncio.wait([self.initial_sync])  # a full sync covers these paths too
        while self._pending:
            paths = sorted(self._pending)
            self._pending.clear()
            result = await index.sync(paths)
            log.debug(
                "re-synced %d paths: +%d ~%d -%d",
                len(paths),
                len(result.added),
                len(result.changed),
                len(result.removed),
            )
            self._fill(paths)

    # ---- queries -------------------------------------------------------------------------

    def require(self) -> Index:
        if self.index is None:
            if self.ls.root is None:
                raise IndexUnavailableError("no workspace folder is open, so there is no index")
            raise IndexUnavailableError("the codebase index is switched off (index.enabled)")
        return self.index

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        index = self.require()
        with _store_unavailable():
            return await index.search(query, limit)

    async def status(self) -> IndexStatus:
        index = self.require()
        with _store_unavailable():
            return await index.status()


@contextlib.contextmanager
def _store_unavailable() -> Iterator[None]:
    """A database that cannot be reached makes the index unavailable, with its reason."""
    try:
        yield
    except StoreUnavailableError as exc:
        raise IndexUnavailableError(str(exc)) from exc


class _ProgressReporter:
    """`$/progress` for one sync; `threadsafe` is the callback for the sync's worker thread."""

    def __init__(self, ls: LowEntropyServer, token: str, loop: asyncio.AbstractEventLoop) -> None:
        self.ls = ls
        self.token = token
        self.loop = loop
        self._last: tuple[str, int | None] | None = None

    def begin(self) -> None:
        self.ls.work_done_progress.begin(
            self.token,
            types.WorkDoneProgressBegin(title="lowentropy: indexing", message="scanning files"),
        )

    def threadsafe(self, progress: SyncProgress) -> None:
        self.loop.call_soon_threadsafe(self.report, progress)

    def report(self, progress: SyncProgress) -> None:
        if progress.phase == "done":
            return
        if progress.phase == "scan":
            message, percentage = f"scanning: {progress.done} files", None
        else:
            total = max(progress.total, 1)
            message = f"{progress.done}/{progress.total} files"
            percentage = min(100, progress.done * 100 // total)
        if (message, percentage) == self._last:
            return
        self._last = (message, percentage)
        self.ls.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    def end(self, message: str) -> None:
        self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


def hit_location(hit: SearchHit) -> types.Location:
    span = hit.span
    return types.Location(
        uri=Path(hit.path).as_uri(),
        range=types.Range(
            start=types.Position(line=span.start_line, character=span.start_col),
            end=types.Position(line=span.end_line, character=span.end_col),
        ),
    )


# ---- handlers ----------------------------------------------------------------------------


def _unavailable(exc: IndexUnavailableError) -> JsonRpcException:
    return JsonRpcException(
        message=f"lowentropy: {exc}", code=int(types.LSPErrorCodes.RequestFailed)
    )


async def search(ls: LowEntropyServer, params: Any) -> Any:
    request = protocol.parse_params(params, protocol.SearchParams, protocol.SEARCH)
    if not request.query.strip():
        raise protocol.invalid_params(f"{protocol.SEARCH}: the query is empty")
    if not 1 <= request.limit <= MAX_SEARCH_LIMIT:
        raise protocol.invalid_params(
            f"{protocol.SEARCH}: limit must be within 1..{MAX_SEARCH_LIMIT}, got {request.limit}"
        )
    try:
        hits = await ls.index.search(request.query, request.limit)
    except IndexUnavailableError as exc:
        raise _unavailable(exc) from None
    found = [
        protocol.SearchHit(
            location=hit_location(hit),
            score=hit.score,
            text=hit.text,
            symbol=hit.symbol,
            kind=hit.kind,
        )
        for hit in hits
    ]
    return wire.unstructure(found)


def _no_status(state: str, model: str, error: str | None) -> Any:
    """indexStatus without an index to count: off, or its database unreachable."""
    return _status(state, 0, 0, 0, "", model, error)


def _status(
    state: str, files: int, chunks: int, pending: int, root: str, model: str, error: str | None
) -> Any:
    result = protocol.IndexStatusResult(
        state=state,
        files=files,
        chunks=chunks,
        pending_embeddings=pending,
        root_hash=root,
        model=model,
        error=error,
    )
    return wire.unstructure(result)


async def index_status(ls: LowEntropyServer, params: Any) -> Any:
    service = ls.index
    if service.index is None:
        return _no_status("off", "", service.last_error)
    try:
        status = await service.status()
    except IndexUnavailableError as exc:  # the database cannot be reached
        return _no_status("error", service.index.model, str(exc))
    syncing = service.initial_sync is not None and not service.initial_sync.done()
    state = "indexing" if syncing else "embedding" if status.pending_embeddings else "ready"
    return _status(
        state,
        status.files,
        status.chunks,
        status.pending_embeddings,
        status.root_hash,
        status.model,
        service.last_error,
    )


def did_save(ls: LowEntropyServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.index.schedule([params.text_document.uri], delay=0.0)


def did_change_watched_files(
    ls: LowEntropyServer, params: types.DidChangeWatchedFilesParams
) -> None:
    ls.index.schedule([change.uri for change in params.changes], delay=0.0)
