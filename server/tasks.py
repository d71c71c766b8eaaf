"""The server's shared task mechanisms: superseding per document, and background tasks.

`Supersede`: one request in flight per key (a document's URI); a newer request
cancels the older one, which then answers `Superseded` (LSP ServerCancelled)
instead of a plain cancellation. `TaskKeeper`: background tasks held by
reference (the event loop keeps only weak ones), their failures logged, all of
them cancelled on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException

log = logging.getLogger(__name__)

T = TypeVar("T")


class Superseded(JsonRpcException):
    """A newer request for the same document took this one's place."""

    CODE = int(types.LSPErrorCodes.ServerCancelled)
    MESSAGE = "superseded by a newer request for this document"


class Supersede:
    """One request in flight per key: a newer request cancels the older one.

    `what` names the requests in the error the older one answers with."""

    def __init__(self, what: str) -> None:
        self.message = f"superseded by a newer {what} request for this document"
        self.inflight: dict[str, asyncio.Task[Any]] = {}
        self._superseded: set[asyncio.Task[Any]] = set()

    def running(self, key: str) -> bool:
        """Whether a request for `key` is in flight."""
        return key in self.inflight

    @contextlib.contextmanager
    def latest(self, key: str) -> Iterator[None]:
        """Run the body as the current task's request for `key`, cancelling an older one.

        Raises `Superseded` when a newer request for `key` cancels this one; any other
        cancellation propagates unchanged."""
        task = asyncio.current_task()
        assert task is not None, "Supersede.latest runs inside a task"
        previous = self.inflight.get(key)
        if previous is not None and not previous.done():
            self._superseded.add(previous)
            previous.cancel()
        self.inflight[key] = task
        try:
            yield
        except asyncio.CancelledError:
            if task in self._superseded:
                self._superseded.discard(task)
                raise Superseded(message=self.message) from None
            raise
        finally:
            if self.inflight.get(key) is task:
                del self.inflight[key]


class TaskKeeper:
    """Background tasks held until they finish; a failure is logged (or handed to
    `on_failure`), and `aclose` cancels and awaits every one still running."""

    def __init__(
        self, what: str, on_failure: Callable[[BaseException], None] | None = None
    ) -> None:
        self.what = what
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()

    def keep(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        """Hold `task` until it is done; returns it."""
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def __contains__(self, task: object) -> bool:
        return task in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if self._on_failure is not None:
            self._on_failure(exc)
        else:
            log.warning("%s background task failed: %s", self.what, exc)

    async def aclose(self) -> None:
        """Cancel every task still running and wait for each (shutting down: their
        errors were logged). The keeper can be used again afterwards."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
