"""How many threads a llama.cpp model gets: the cores this process may use, halved."""

from __future__ import annotations

import os

__all__ = ["default_threads", "usable_cores"]


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads() -> int:
    """Threads for a model when the role sets none: half the cores, like llama-cpp-python.
    ggml's threads spin on barriers, so taking every core makes decoding collapse (~100x
    measured on 2 cores) as soon as the server's own work or anything else wants a core."""
    return max(1, usable_cores() // 2)
