"""The ONNX Runtime path of the packaged MiniLM: same vectors as torch, for queries on a
session of their own and for indexing batches on another, rebuilt from a damaged cache,
refused for a model it cannot copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lowentropy.models.embeddings import (
    SentenceTransformerEmbedder,
    _encode_lock,
    _load,
    default_model_path,
)
from lowentropy.models.onnx_encoder import OnnxUnsupported, build_onnx_encoder

QUERIES = [
    "parse an email address into its parts",
    "JSONDecoder raw_decode",
    "  Where is the HTTP request line parsed?\n",
    "walk a directory tree " * 60,  # ~1300 chars, over 256 tokens: truncated
]


def torch_vectors(texts: list[str]) -> np.ndarray:
    reference = SentenceTransformerEmbedder(onnx_queries=False)
    return np.array(reference.embed_sync(texts))


def test_small_inputs_go_through_onnx_with_torchs_vectors() -> None:
    embedder = SentenceTransformerEmbedder()
    assert embedder.wait_for_onnx(timeout=120)
    one_by_one = np.array([embedder.embed_sync([q])[0] for q in QUERIES])
    padded = np.array(embedder.embed_sync(QUERIES[:3]))  # one batch, padded to the longest
    assert embedder.stats.onnx_calls == embedder.stats.calls == len(QUERIES) + 1
    expected = torch_vectors(QUERIES)
    assert np.abs(one_by_one - expected).max() < 1e-5
    assert np.abs(padded - expected[:3]).max() < 1e-5
    assert np.allclose(np.linalg.norm(one_by_one, axis=1), 1.0, atol=1e-5)


def test_batches_go_through_onnx_with_torchs_vectors() -> None:
    embedder = SentenceTransformerEmbedder()
    assert embedder.wait_for_onnx(timeout=120)
    # Lengths that differ (sub-batches sorted by length), one over 256 tokens (truncated).
    chunks = [f"def function_{i}(value):\n    return value * {i}\n" * (1 + i) for i in range(40)]
    assert sum(map(len, chunks)) > 2000
    vectors = np.array(embedder.embed_sync(chunks))
    assert (embedder.stats.calls, embedder.stats.onnx_calls) == (1, 1)
    assert np.abs(vectors - torch_vectors(chunks)).max() < 1e-4


def test_batches_on_torch_when_asked() -> None:
    embedder = SentenceTransformerEmbedder(onnx_batches=False)
    assert embedder.wait_for_onnx(timeout=120)
    chunks = [f"def function_{i}(value):\n    return value * {i}\n" * 8 for i in range(12)]
    assert sum(map(len, chunks)) > 2000
    vectors = embedder.embed_sync(chunks)
    assert (embedder.stats.calls, embedder.stats.onnx_calls) == (1, 0)
    assert len(vectors) == len(chunks)


def test_switched_off_means_torch() -> None:
    embedder = SentenceTransformerEmbedder(onnx_queries=False)
    embedder.embed_sync(["a query"])
    assert (embedder.stats.calls, embedder.stats.onnx_calls) == (1, 0)
    assert not embedder.wait_for_onnx(timeout=1)


def test_a_damaged_cached_export_is_exported_again(tmp_path: Path) -> None:
    model = _load(default_model_path(), "cpu")

    def reference(texts: list[str]) -> np.ndarray:
        return torch_vectors(texts)

    first = build_onnx_encoder(model, default_model_path(), reference, cache_dir=tmp_path)
    (export,) = tmp_path.glob("*.onnx")
    assert first.path == export
    export.write_bytes(b"not an onnx graph")
    second = build_onnx_encoder(
        model, default_model_path(), reference, export_lock=_encode_lock, cache_dir=tmp_path
    )
    assert second.path == export and export.stat().st_size > 1_000_000
    assert np.abs(second.encode(QUERIES) - torch_vectors(QUERIES)).max() < 1e-5
    assert list(tmp_path.glob("*.tmp")) == []  # no half-written file left behind


def test_a_model_it_cannot_copy_is_refused(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    base = _load(default_model_path(), "cpu")
    cls_pooled = SentenceTransformer(modules=[base[0], Pooling(384, pooling_mode="cls")])
    with pytest.raises(OnnxUnsupported, match="pooling 'cls'"):
        build_onnx_encoder(cls_pooled, default_model_path(), torch_vectors, cache_dir=tmp_path)
    assert list(tmp_path.glob("*.onnx")) == []
