"""Embedders: the packaged MiniLM, a real llama.cpp `/v1/embeddings` server, faults;
and the retrieval package's public surface."""

from __future__ import annotations

import math
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import FaultInjectionServer, running_llama_server

import lowentropy.retrieval as retrieval
from lowentropy.models.embeddings import OpenAIEmbedder, SentenceTransformerEmbedder
from lowentropy.models.errors import BackendHTTPError, BackendUnavailable
from lowentropy.models.types import Embedder
from lowentropy.retrieval import Index, IndexConfig

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp server with embeddings on (SmolLM2-135M); yields its base URL."""
    log_dir = tmp_path_factory.mktemp("embedding_server")
    with running_llama_server(
        log_dir, "--embedding", "True", "--n_ctx", "2048", name="embedding_server"
    ) as url:
        yield url


async def test_minilm_embeds_normalised_vectors_and_counts() -> None:
    embedder = SentenceTransformerEmbedder()
    assert isinstance(embedder, Embedder)
    texts = ["def add(a, b): return a + b", "sum two numbers", "parse an email header"]
    vectors = await embedder.embed(texts)
    assert len(vectors) == 3
    assert all(len(v) == embedder.dimensions == 384 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-4 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert (embedder.stats.calls, embedder.stats.texts) == (1, 3)
    assert await embedder.embed([]) == []
    assert embedder.stats.calls == 1


async def test_openai_embedder_on_a_real_server(embedding_server: str) -> None:
    embedder = OpenAIEmbedder(embedding_server)
    try:
        assert isinstance(embedder, Embedder)
        assert await embedder.probe_dimensions() == embedder.dimensions > 0
        vectors = await embedder.embed(["hello world", "def foo(): pass", "hello world"])
        assert len(vectors) == 3
        assert {len(v) for v in vectors} == {embedder.dimensions}
        # one flat vector per input, in input order (the server returns per-token vectors)
        assert cosine(vectors[0], vectors[2]) > 0.999
        assert cosine(vectors[0], vectors[1]) < 0.99
        assert embedder.stats.texts == 3
    finally:
        await embedder.aclose()


async def test_index_through_the_openai_embedder(embedding_server: str, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "mime").mkdir(parents=True)
    # small files: SmolLM2 on one thread embeds about one long chunk per second
    (root / "mime/audio.py").write_text(
        'class MIMEAudio:\n    """Audio attachment."""\n\n\n'
        "def guess_audio(data):\n    return 'basic'\n"
    )
    (root / "mime/text.py").write_text('class MIMEText:\n    """Plain text part."""\n')
    embedder = OpenAIEmbedder(embedding_server + "/v1", batch_size=8)
    index = Index(root, embedder, IndexConfig(cache_dir=str(tmp_path / "state")))
    try:
        await index.sync()
        assert await index.fill_vectors() == 3
        status = await index.status()
        assert status.pending_embeddings == 0
        hits = await index.search("MIMEAudio", 3)
        assert hits[0].rel_path == "mime/audio.py"
    finally:
        await embedder.aclose()


async def test_openai_embedder_http_500_is_a_retryable_error() -> None:
    async with FaultInjectionServer("http500") as server:
        embedder = OpenAIEmbedder(server.url, model="m")
        try:
            with pytest.raises(BackendHTTPError) as info:
                await embedder.embed(["x"])
            assert info.value.status == 500
            assert info.value.retryable
            assert server.requests[0].path == "/v1/embeddings"
            assert server.requests[0].json() == {"input": ["x"], "model": "m"}
        finally:
            await embedder.aclose()


async def test_openai_embedder_refused_connection(refused_url: str) -> None:
    embedder = OpenAIEmbedder(refused_url)
    try:
        with pytest.raises(BackendUnavailable):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()


def test_exported_members() -> None:
    """`__all__` names exactly the public members of lowentropy.retrieval."""
    public = {
        name
        for name, value in vars(retrieval).items()
        if not name.startswith("_") and not isinstance(value, type(retrieval))
    }
    assert set(retrieval.__all__) == public
    assert sorted(retrieval.__all__) == retrieval.__all__


def test_heavy_libraries_load_lazily() -> None:
    code = (
        "import sys, lowentropy.retrieval, lowentropy.models.embeddings;"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
