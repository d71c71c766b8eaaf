"""One worker thread at background priority, for indexing work that must never slow a keystroke.

Embedding a folder keeps both cores of a small machine busy for minutes, and a
suggestion's model run needs them for the second it takes. The thread that
runs indexing batches lowers itself to Linux's idle scheduling class (else the
lowest nice value) before doing anything, so the threads it starts (torch's
OpenMP team) inherit that: the OS gives them a core only when nothing else
wants it, which pauses indexing while a suggestion is generated without any
signalling. Torch releases the GIL while it computes, so a starved batch does
not hold the interpreter.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()
priority = "not started"  # what the worker got: "idle", "nice 19" or "normal"


def background_priority() -> str:
    """Lower the calling thread (Linux: only it, and the threads it starts later)."""
    global priority
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        priority = "idle"
    except (AttributeError, OSError):
        try:
            os.nice(19 - os.nice(0))
            priority = "nice 19"
        except OSError:
            priority = "normal"
    return priority


def executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                1, thread_name_prefix="lowentropy-background", initializer=background_priority
            )
        return _executor


async def run_in_background(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`asyncio.to_thread`, on the background-priority worker."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor(), lambda: fn(*args, **kwargs))
