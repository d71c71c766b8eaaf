"""Tab through an existing router: sglang-router (PyPI, Rust) in front of two llama.cpp servers.

The router is the real package, unchanged, with its cache-aware policy (an approximate
radix tree of the prompts each worker has seen). Its workers are real llama.cpp server
processes (`python -m llama_cpp.server`, SmolLM2-135M) with one route added: GET /health,
which sglang-router's startup probe asks every worker for (llama.cpp's native server and
vLLM answer it; llama-cpp-python's server does not). lowentropy sees one endpoint: the router.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import QUIET_TAB, Docs, first_text, lsp_client, stats
from servers import free_port, smollm2_gguf

from lowentropy.models.vllm_launcher import start_process, stop_process, wait_ready

pytest.importorskip("sglang_router", reason="sglang-router (the `router` extra) is not installed")

FIB = (Path(__file__).parent / "data" / "tab" / "fib.py").read_text(encoding="utf-8")
LINE, COL = 4, len("    return ")
# llama-cpp-python's server plus the GET /health route the router probes workers with
WORKER = (
    "import llama_cpp.server.__main__ as m\n"
    "make = m.create_app\n"
    "def create_app(*a, **k):\n"
    "    app = make(*a, **k)\n"
    "    app.add_api_route('/health', lambda: {'status': 'ok'}, methods=['GET'])\n"
    "    return app\n"
    "m.create_app = create_app\n"
    "m.main()\n"
)


@contextlib.contextmanager
def worker(log_dir: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-c", WORKER, "--model", str(smollm2_gguf()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    mp = start_process("llama_worker", command, url, log_dir / "server.log")
    try:
        wait_ready(mp, timeout=60, path="/health")
        yield url
    finally:
        stop_process(mp, grace=5)


def wait_for_workers(url: str, timeout: float = 60.0) -> None:
    """Until the router lists a model, which it does once its workers are registered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(f"{url}/v1/models", timeout=2.0)
            if r.status_code == 200 and r.json().get("data"):
                return
        time.sleep(0.25)
    raise TimeoutError("sglang-router registered no worker in time")


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Path]]]:
    """(router URL, the workers' logs): sglang-router, cache-aware, over two llama.cpp servers."""
    root = tmp_path_factory.mktemp("router")
    logs = [root / "w0", root / "w1"]
    with contextlib.ExitStack() as stack:
        urls = []
        for log in logs:
            log.mkdir()
            urls.append(stack.enter_context(worker(log)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "sglang_router.launch_router",
            "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *urls,
            "--policy", "cache_aware", "--log-level", "warn",
        ]  # fmt: skip
        mp = start_process("sglang_router", command, url, root / "router.log")
        try:
            wait_ready(mp, timeout=60, path="/health")
            wait_for_workers(url)
            yield url, [log / "server.log" for log in logs]
        finally:
            stop_process(mp, grace=5)


def completions(log: Path) -> int:
    return len(re.findall(r"POST /v1/completions", log.read_text(errors="replace")))


async def test_tab_through_sglang_router(router: tuple[str, list[Path]], tmp_path: Path) -> None:
    """Tab suggestions come back through the router unchanged; the router keeps a document's
    keystrokes on the worker that already holds its prompt."""
    url, logs = router
    options = {
        "lowentropy": {
            **QUIET_TAB,
            # the router wants a model name in every request
            "tab": {
                "endpoints": [{"url": url}],
                "model": "smollm2",
                "maxTokens": 16,
                # the router has no tokenize route: count with the model's own vocabulary
                "tokenizer": str(smollm2_gguf()),
            },
        }
    }
    async with lsp_client(tmp_path, options) as client:
        docs = Docs(client, tmp_path)
        uri = docs.open(FIB)
        first = first_text(await docs.inline(uri, LINE, COL))
        assert first.strip(), "a suggestion through the router"
        served = [completions(log) for log in logs]
        assert sum(served) == 1
        home = served.index(1)
        # the same document, typed on: its requests share the prompt's prefix
        col = COL
        for text in ("n", " ", "*"):
            docs.insert(uri, LINE, col, text)
            col += len(text)
            await docs.inline(uri, LINE, col)
        result = await stats(client)
        assert result.tab.errors == 0 and result.tab.backendCalls >= 3
        after = [completions(log) for log in logs]
        assert after[home] == result.tab.backendCalls and after[1 - home] == 0, after
        (backend,) = result.backends
        assert backend.kind == "pool" and backend.role == "tab"
