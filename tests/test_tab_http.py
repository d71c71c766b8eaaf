"""Tab through the HTTP pool: a real llama.cpp server process, and fault-injection servers.

Data: tests/data/tab/fib.py (cursor after the final `return `).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import QUIET_TAB, Docs, first_text, lsp_client, stats
from lsprotocol import types

FIB = (Path(__file__).parent / "data" / "tab" / "fib.py").read_text(encoding="utf-8")
LINE, COL = 4, len("    return ")
TIMEOUTS = {"connect": 1.0, "read": 1.5, "total": 3.0}


def pool_options(*urls: str, **role: Any) -> dict[str, Any]:
    return {
        "lowentropy": {
            **QUIET_TAB,
            "tab": {"endpoints": [{"url": u} for u in urls], "timeouts": TIMEOUTS, **role},
        }
    }


async def test_completion_through_a_real_llama_cpp_server(
    llama_server: str, tmp_path: Path
) -> None:
    """fib.py through `python -m llama_cpp.server` on 127.0.0.1: non-empty and reproducible."""
    async with lsp_client(tmp_path, pool_options(llama_server)) as client:
        docs = Docs(client, tmp_path)
        uri = docs.open(FIB)
        first = first_text(await docs.inline(uri, LINE, COL))
        second = first_text(await docs.inline(docs.open(FIB), LINE, COL))
        assert first.strip() and first == second
        result = await stats(client)
        assert result.tab.backendCalls == 2 and result.tab.errors == 0
        (backend,) = result.backends
        assert backend.kind == "pool" and backend.role == "tab"
        # The tokenizer is the endpoint's own (/extras/tokenize), not an estimate.
        assert backend.tokenizerExact is True


def _warnings(client: Any) -> list[str]:
    return [m.message for m in client.log_messages if m.type == types.MessageType.Warning]


@pytest.mark.parametrize("mode", ["refused", "http500", "stall", "cut_stream"])
async def test_faults_give_an_empty_result_in_time_and_one_warning(
    mode: str, tmp_path: Path, fault_server: Any, refused_url: str
) -> None:
    """Each fault: an empty result within the configured total timeout, one warning, server up."""
    url = refused_url if mode == "refused" else (await fault_server(mode)).url
    async with lsp_client(tmp_path, pool_options(url, failureThreshold=100)) as client:
        docs = Docs(client, tmp_path)
        await asyncio.sleep(0.2)  # let the preload settle
        before = len(_warnings(client))
        started = time.perf_counter()
        result = await docs.inline(docs.open(FIB), LINE, COL)
        elapsed = time.perf_counter() - started
        assert not result.items
        # The pool retries a connection failure once on another replica; with one replica, once.
        assert elapsed < TIMEOUTS["total"] * 2 + 1.5, elapsed
        await asyncio.sleep(0.2)
        warnings = [w for w in _warnings(client)[before:] if "tab" in w]
        assert len(warnings) == 1, warnings
        assert (await stats(client)).tab.errors == 1  # and the server still answers


async def test_two_replicas_one_down_answers_come_from_the_other(
    llama_server: str, refused_url: str, tmp_path: Path
) -> None:
    """fib.py with a refused replica listed first: every request is answered by the real one."""
    async with lsp_client(tmp_path, pool_options(refused_url, llama_server)) as client:
        docs = Docs(client, tmp_path)
        texts = [first_text(await docs.inline(docs.open(FIB), LINE, COL)) for _ in range(4)]
        assert all(t.strip() for t in texts)
        assert len(set(texts)) == 1
        result = await stats(client)
        assert result.tab.errors == 0
