"""Hybrid search: vector and full-text results fused by reciprocal rank, then reranked.

Full text runs over every row at once; the vector side only sees rows whose
embedding is filled in, so a fresh index answers through full text while the
vectors arrive. A cross-encoder (`CrossEncoderReranker`, or any `Reranker`) can
reorder the fused list.

Hybrid search is on the typing path, so it keeps the critical path short: the
full-text query starts at once and runs in LanceDB's threads while the query is
embedded, both sides fetch only the candidates' ids, and the text and range are
fetched, in one query, for the fused rows that are returned (all of them when a
reranker needs their text).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from lowentropy.models.types import Embedder
from lowentropy.retrieval.query_rewrite import QueryRewriter
from lowentropy.retrieval.ranking import RankingConfig, rank_candidates
from lowentropy.retrieval.store import CANDIDATE_COLUMNS, RESULT_COLUMNS, ChunkStore
from lowentropy.retrieval.types import SearchHit, SearchMode, Span
from lowentropy.retrieval.words import fulltext_query

__all__ = ["CrossEncoderReranker", "Reranker", "Searcher", "reciprocal_rank_fusion"]


@runtime_checkable
class Reranker(Protocol):
    """Reorders hits for a query, best first (e.g. a cross-encoder); may drop hits."""

    async def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]: ...


class CrossEncoderReranker:
    """Rescores the first `top` hits with a sentence-transformers cross-encoder.

    Each (query, chunk text) pair is scored jointly, which ranks better than
    comparing two separately made vectors but costs a model pass per hit, so
    only the head of the fused list is reordered (the rest keeps its order
    after it). sentence-transformers loads on first use, and scoring runs in a
    worker thread. `model` may be any object with the CrossEncoder's
    `predict(pairs, batch_size=...)`, e.g. one already loaded.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        model: Any = None,
        top: int = 20,
        batch_size: int = 16,
        max_length: int = 512,
        device: str = "cpu",
    ) -> None:
        if model is None and not model_path:
            raise ValueError("CrossEncoderReranker needs a model_path or a model")
        self.model_path = model_path
        self.top = top
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self._model = model

    def _load(self) -> Any:
        if self._model is None:  # the loader caches per process, so a race loads once
            from lowentropy.models.embeddings import load_cross_encoder

            assert self.model_path is not None
            self._model = load_cross_encoder(self.model_path, self.device, self.max_length)
        return self._model

    def score_sync(self, query: str, texts: Sequence[str]) -> list[float]:
        """Blocking: one relevance score per text, higher is better."""
        if not texts:
            return []
        from lowentropy.models.embeddings import predict_sync

        return predict_sync(self._load(), [(query, t) for t in texts], self.batch_size)

    async def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        head, tail = list(hits[: self.top]), list(hits[self.top :])
        scores = await asyncio.to_thread(self.score_sync, query, [h.text for h in head])
        order = sorted(range(len(head)), key=lambda i: scores[i], reverse=True)
        return [attrs.evolve(head[i], score=scores[i]) for i in order] + tail


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Mapping[str, Any]]], k: int = 60
) -> list[tuple[Mapping[str, Any], float]]:
    """Rows by the sum of 1/(k + rank) over the rankings they appear in (rank from 1)."""
    scores: dict[str, float] = {}
    rows: dict[str, Mapping[str, Any]] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            key = row["id"]
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            rows.setdefault(key, row)
    ordered = sorted(scores, key=lambda key: scores[key], reverse=True)
    return [(rows[key], scores[key]) for key in ordered]


def _hit(root: Path, row: Mapping[str, Any], score: float) -> SearchHit:
    return SearchHit(
        path=str(root / row["path"]),
        rel_path=row["path"],
        span=Span(
            start_line=row["start_line"],
            start_col=row["start_col"],
            end_line=row["end_line"],
            end_col=row["end_col"],
        ),
        score=score,
        text=row["text"],
        symbol=row["symbol"],
        kind=row["kind"],
        language=row["language"],
    )


class Searcher:
    def __init__(
        self,
        store: ChunkStore,
        embedder: Embedder,
        root: Path,
        *,
        rrf_k: int = 60,
        candidates: int = 20,
        reranker: Reranker | None = None,
        ranking: RankingConfig | None = None,
        rewriter: QueryRewriter | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.root = root
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.reranker = reranker
        self.ranking = ranking or RankingConfig()
        self.rewriter = rewriter

    async def _vector(
        self, query: str, limit: int, columns: Sequence[str] = RESULT_COLUMNS, row_ids: bool = False
    ) -> list[dict[str, Any]]:
        if not await self.store.has_vectors_async():
            return []  # nothing embedded yet: don't pay for the query embedding
        (vector,) = await self.embedder.embed([query])
        return await self.store.nearest_async(vector, limit, columns, row_ids=row_ids)

    async def _fulltext(
        self, query: str, limit: int, columns: Sequence[str] = RESULT_COLUMNS, row_ids: bool = False
    ) -> list[dict[str, Any]]:
        return await self.store.fulltext_async(
            fulltext_query(query), limit, columns, row_ids=row_ids
        )

    async def _terms(self, query: str) -> str:
        """The rewriter's likely identifiers for the query, as one line ('' without one)."""
        return " ".join(await self.rewriter.terms(query)) if self.rewriter else ""

    async def _hybrid(self, query: str, limit: int) -> list[SearchHit]:
        n = max(limit, self.candidates)
        # A rewrite (cached by question) adds its names to the full-text side only:
        # appended to MiniLM's query they made the vector side worse on the dev set.
        terms = await self._terms(query)
        text_query = f"{query}\n{terms}" if terms else query
        text_task = asyncio.ensure_future(self._fulltext(text_query, n, CANDIDATE_COLUMNS, True))
        # Let it reach LanceDB before the embedding thread starts (its tokenizer
        # holds the GIL for a few ms), so full text runs alongside the model.
        await asyncio.sleep(0)
        try:
            vector_rows = await self._vector(query, n, CANDIDATE_COLUMNS, True)
        finally:
            text_rows = await text_task
        fused = reciprocal_rank_fusion([vector_rows, text_rows], self.rrf_k)
        fused = rank_candidates(query, fused, self.ranking)
        if self.reranker is None:
            fused = fused[:limit]
        rows = await self.store.rows_async(
            [row["id"] for row, _ in fused], [row.get("_rowid") for row, _ in fused]
        )
        # A row replaced since the candidates were found is dropped, not half shown.
        return [
            _hit(self.root, rows[row["id"]], score) for row, score in fused if row["id"] in rows
        ]

    async def search(
        self, query: str, limit: int = 10, mode: SearchMode = "hybrid"
    ) -> list[SearchHit]:
        if not query.strip() or limit <= 0:
            return []
        if mode == "fulltext":
            terms = await self._terms(query)
            rows = await self._fulltext(f"{query}\n{terms}" if terms else query, limit)
            hits = [_hit(self.root, r, float(r["_score"])) for r in rows]
        elif mode == "vector":
            terms = await self._terms(query)
            rows = await self._vector(f"{query}\n{terms}" if terms else query, limit)
            hits = [_hit(self.root, r, 1.0 - float(r["_distance"])) for r in rows]
        else:
            hits = await self._hybrid(query, limit)
        if self.reranker is not None and hits:
            hits = await self.reranker.rerank(query, hits)
        return hits[:limit]
