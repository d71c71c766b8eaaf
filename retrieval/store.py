"""The LanceDB chunk table: rows, their vectors (filled in later) and a full-text index.

A sync replaces a batch of files' chunks in one `merge_insert`: rows of those
files that are no longer produced are deleted by the same call, so a reader
never sees a file half replaced. Rows are written without a vector when the
embedding cache does not know their text yet; full-text search finds them at
once (LanceDB scans rows the index has not absorbed yet) and vector search
skips them until `set_vectors` fills them in. The plain methods block: callers
run them in a worker thread. The `*_async` reads are for search, where each
millisecond counts: they await LanceDB's native async table on the caller's
loop (its work runs in LanceDB's own threads, the GIL released), which skips
the sync wrapper's round trips through its background loop (~1.5 ms a query)
and a worker-thread hop; on a table without one they fall back to the plain
methods in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import pyarrow as pa
from lancedb.index import FTS, BTree, HnswSq
from lancedb.table import AsyncTable

from lowentropy.retrieval.types import Chunk
from lowentropy.retrieval.words import index_words

__all__ = [
    "CANDIDATE_COLUMNS",
    "RESULT_COLUMNS",
    "ChunkStore",
    "chunk_schema",
    "sql_list",
    "sql_str",
]

RESULT_COLUMNS = [
    "id", "path", "start_line", "start_col", "end_line", "end_col",
    "symbol", "kind", "language", "text",
]  # fmt: skip
# What a fused search needs of each candidate (the path for its role, the symbol
# for names the query writes): the rest is fetched for the winners only (at 100k rows, 50 vector
# hits with every column cost ~13 ms, with the id ~10).
CANDIDATE_COLUMNS = ["id", "path", "symbol"]
_IN_BATCH = 500  # values per `IN (...)` filter
# Below this many vectors a flat scan is fast enough (~15 ms at 10k x 384);
# at 100k it takes ~145 ms against ~7 ms with an IVF-HNSW index.
VECTOR_INDEX_MIN_ROWS = 20_000


def chunk_schema(dimensions: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),
            pa.field("start_line", pa.int32()),
            pa.field("start_col", pa.int32()),
            pa.field("end_line", pa.int32()),
            pa.field("end_col", pa.int32()),
            pa.field("symbol", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("language", pa.string()),
            pa.field("text", pa.string()),
            pa.field("words", pa.string()),  # identifier-aware text for the full-text index
            pa.field("hash", pa.string()),  # of text: the embedding cache key's source
            pa.field("file_hash", pa.string()),  # lets a restart check rows against the tree
            pa.field("vector", pa.list_(pa.float32(), dimensions), nullable=True),
        ]
    )


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def _row_id(path: str, chunk_hash: str, occurrence: int) -> str:
    # Stable while a chunk's text is unchanged, even when it moves within the file.
    key = f"{path}\0{chunk_hash}\0{occurrence}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


class ChunkStore:
    def __init__(
        self,
        db: Any,
        name: str,
        dimensions: int,
        vector_index_min_rows: int = VECTOR_INDEX_MIN_ROWS,
    ) -> None:
        # `db` is a lancedb connection (local or remote); typed loosely because
        # the base class lacks `drop_table(ignore_missing=...)`.
        self.db = db
        self.name = name
        self.dimensions = dimensions
        self.schema = chunk_schema(dimensions)
        self.vector_index_min_rows = vector_index_min_rows
        self._table: Any = None
        self._indexed = False
        self._has_vectors: bool | None = None  # cached: vector search is skipped without
        self._write_lock = threading.Lock()  # sync and vector filling write concurrently

    # -- table --------------------------------------------------------------

    @property
    def table(self) -> Any:
        if self._table is None:
            self._table = self.db.create_table(self.name, schema=self.schema, exist_ok=True)
            existing = self._table.schema.field("vector").type
            if existing != self.schema.field("vector").type:  # another model's table
                self._table = self.db.create_table(self.name, schema=self.schema, mode="overwrite")
        return self._table

    def drop(self) -> None:
        with self._write_lock:
            self.db.drop_table(self.name, ignore_missing=True)
            self._table = None
            self._indexed = False
            self._has_vectors = None

    def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        names = {ix.name for ix in self.table.list_indices()}
        if "words_idx" not in names:
            self.table.create_index("words", config=FTS(), name="words_idx")
        if "path_idx" not in names:
            self.table.create_index("path", config=BTree(), name="path_idx")
        if "id_idx" not in names:  # merge_insert and vector updates join on id
            self.table.create_index("id", config=BTree(), name="id_idx")
        self._indexed = True

    def optimize(self) -> None:
        """Fold new rows into the indexes, compact small fragments, and build the
        vector index once there are enough vectors to need one."""
        with self._write_lock:
            if self.table.count_rows() == 0:
                return
            self._ensure_indexes()
            self.table.optimize(cleanup_older_than=timedelta(minutes=5))
            names = {ix.name for ix in self.table.list_indices()}
            if "vector_idx" not in names:
                vectors = self.table.count_rows("vector IS NOT NULL")
                if vectors >= self.vector_index_min_rows:
                    partitions = max(1, int(vectors**0.5) // 4)
                    config = HnswSq(distance_type="cosine", num_partitions=partitions)
                    self.table.create_index("vector", config=config, name="vector_idx")

    # -- writes -------------------------------------------------------------

    def _rows(
        self,
        chunks: Sequence[Chunk],
        file_hashes: Mapping[str, str],
        vectors: Mapping[str, Sequence[float]],
    ) -> pa.Table:
        seen: dict[tuple[str, str], int] = {}
        ids: list[str] = []
        for c in chunks:
            n = seen.get((c.path, c.hash), 0)
            seen[(c.path, c.hash)] = n + 1
            ids.append(_row_id(c.path, c.hash, n))
        columns: dict[str, list[Any]] = {
            "id": ids,
            "path": [c.path for c in chunks],
            "start_line": [c.span.start_line for c in chunks],
            "start_col": [c.span.start_col for c in chunks],
            "end_line": [c.span.end_line for c in chunks],
            "end_col": [c.span.end_col for c in chunks],
            "symbol": [c.symbol for c in chunks],
            "kind": [c.kind for c in chunks],
            "language": [c.language for c in chunks],
            "text": [c.text for c in chunks],
            "words": [index_words(c.text, c.symbol, c.path) for c in chunks],
            "hash": [c.hash for c in chunks],
            "file_hash": [file_hashes[c.path] for c in chunks],
            "vector": [vectors.get(c.hash) for c in chunks],
        }
        return pa.Table.from_pydict(columns, schema=self.schema)

    def replace_files(
        self,
        paths: Sequence[str],
        chunks: Sequence[Chunk],
        file_hashes: Mapping[str, str],
        vectors: Mapping[str, Sequence[float]],
    ) -> None:
        """Make `chunks` the only rows of `paths`, in one commit.

        `vectors` maps chunk hashes to known embeddings (from the cache); the
        other rows are written without a vector.
        """
        if not paths:
            return
        with self._write_lock:
            if not chunks:
                self.table.delete(f"path IN {sql_list(paths)}")
                return
            rows = self._rows(chunks, file_hashes, vectors)
            (
                self.table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"path IN {sql_list(paths)}")
                .execute(rows, on_bad_vectors="null")
            )
            self._ensure_indexes()
            if vectors:
                self._has_vectors = True

    def delete_paths(self, paths: Sequence[str]) -> None:
        with self._write_lock:
            for i in range(0, len(paths), _IN_BATCH):
                self.table.delete(f"path IN {sql_list(paths[i : i + _IN_BATCH])}")

    def set_vectors(self, ids: Sequence[str], vectors: Sequence[Sequence[float]]) -> None:
        """Fill vectors of existing rows; rows replaced meanwhile are simply not matched."""
        if not ids:
            return
        values = pa.array([list(v) for v in vectors], pa.list_(pa.float32(), self.dimensions))
        update = pa.Table.from_arrays([pa.array(ids, pa.string()), values], names=["id", "vector"])
        with self._write_lock:
            self.table.merge_insert("id").when_matched_update_all().execute(update)
            self._has_vectors = True

    # -- reads --------------------------------------------------------------

    def count(self, where: str | None = None) -> int:
        return int(self.table.count_rows(where))

    def count_pending(self) -> int:
        return self.count("vector IS NULL")

    def has_vectors(self) -> bool:
        if self._has_vectors is None:
            self._has_vectors = self.count("vector IS NOT NULL") > 0
        return self._has_vectors

    def path_summary(self) -> dict[str, tuple[frozenset[str], int]]:
        """path -> (file hashes seen in its rows, row count): checked against the tree."""
        table = self.table.search().select(["path", "file_hash"]).limit(None).to_arrow()
        groups: dict[str, tuple[set[str], list[int]]] = {}
        for path, fh in zip(
            table.column("path").to_pylist(), table.column("file_hash").to_pylist(), strict=True
        ):
            hashes, count = groups.setdefault(path, (set(), [0]))
            hashes.add(fh)
            count[0] += 1
        return {p: (frozenset(h), c[0]) for p, (h, c) in groups.items()}

    def pending(self, limit: int, paths: Sequence[str] = ()) -> list[tuple[str, str, str]]:
        """(id, hash, text) of rows without a vector, those of `paths` only when given."""
        where = "vector IS NULL"
        if paths:
            where += f" AND path IN {sql_list(paths[:_IN_BATCH])}"
        table = self.table.search().where(where).select(["id", "hash", "text"]).limit(limit)
        arrow = table.to_arrow()
        return list(
            zip(
                arrow.column("id").to_pylist(),
                arrow.column("hash").to_pylist(),
                arrow.column("text").to_pylist(),
                strict=True,
            )
        )

    def fulltext(
        self, query: str, limit: int, columns: Sequence[str] = RESULT_COLUMNS
    ) -> list[dict[str, Any]]:
        if not query.strip() or self.count() == 0:
            return []
        self._ensure_fts()
        q = self.table.search(query, query_type="fts", fts_columns="words")
        rows: list[dict[str, Any]] = q.select([*columns, "_score"]).limit(limit).to_list()
        return rows

    def _ensure_fts(self) -> None:
        if not self._indexed:
            with self._write_lock:
                self._ensure_indexes()

    def nearest(
        self, vector: Sequence[float], limit: int, columns: Sequence[str] = RESULT_COLUMNS
    ) -> list[dict[str, Any]]:
        """Nearest rows by cosine distance; rows without a vector are never returned.

        (LanceDB skips null vectors by itself; an explicit `IS NOT NULL` filter
        would stop it from using the vector index: 7 ms became 135 ms at 100k.)
        """
        q = self.table.search(list(vector), vector_column_name="vector").distance_type("cosine")
        rows: list[dict[str, Any]] = q.select([*columns, "_distance"]).limit(limit).to_list()
        return _with_distance(rows)

    def rows(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """id -> row (RESULT_COLUMNS) of those of `ids` that still exist."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), _IN_BATCH):
            part = ids[i : i + _IN_BATCH]
            q = self.table.search().where(f"id IN {sql_list(part)}").select(RESULT_COLUMNS)
            out.update((r["id"], r) for r in q.limit(len(part)).to_list())
        return out

    # -- async reads (search) ------------------------------------------------

    async def _async_table(self) -> AsyncTable | None:
        if self._table is None:  # opening may create the table: blocking
            await asyncio.to_thread(lambda: self.table)
        inner = getattr(self.table, "_table", None)  # a LanceTable's own AsyncTable
        return inner if isinstance(inner, AsyncTable) else None

    async def has_vectors_async(self) -> bool:
        if self._has_vectors is not None:
            return self._has_vectors
        return await asyncio.to_thread(self.has_vectors)

    async def fulltext_async(
        self,
        query: str,
        limit: int,
        columns: Sequence[str] = RESULT_COLUMNS,
        *,
        row_ids: bool = False,
    ) -> list[dict[str, Any]]:
        """As `fulltext`; `row_ids` adds `_rowid` (for `rows_async`) to each row."""
        table = await self._async_table()
        if table is None or not self._indexed:  # the first search may build the index
            return await asyncio.to_thread(self.fulltext, query, limit, columns)  # no _rowid
        if not query.strip():
            return []
        # (An indexed table answers an empty result when empty: no count needed first.)
        q = table.query().nearest_to_text(query, columns="words").select([*columns, "_score"])
        if row_ids:
            q = q.with_row_id()
        found: list[dict[str, Any]] = await q.limit(limit).to_list()
        return found

    async def nearest_async(
        self,
        vector: Sequence[float],
        limit: int,
        columns: Sequence[str] = RESULT_COLUMNS,
        *,
        row_ids: bool = False,
    ) -> list[dict[str, Any]]:
        """As `nearest`; `row_ids` adds `_rowid` (for `rows_async`) to each row."""
        table = await self._async_table()
        if table is None:
            return await asyncio.to_thread(self.nearest, vector, limit, columns)
        q = table.vector_search(list(vector)).column("vector").distance_type("cosine")
        q = q.select([*columns, "_distance"])
        if row_ids:
            q = q.with_row_id()
        return _with_distance(await q.limit(limit).to_list())

    async def rows_async(
        self, ids: Sequence[str], row_ids: Sequence[int | None] = ()
    ) -> dict[str, dict[str, Any]]:
        """id -> row (RESULT_COLUMNS) of those of `ids` that still exist.

        `row_ids` (each id's `_rowid` from a search, None where unknown) lets most
        rows be taken by address (~2 ms against ~3.5 for an `id IN` filter at
        100k rows). An address is only a hint: a row taken is kept only when its
        id is the one asked for, and the ids not found so are looked up by id
        (a write since the search may have deleted or compacted the row; LanceDB
        takes no deleted row).
        """
        table = await self._async_table()
        if table is None:
            return await asyncio.to_thread(self.rows, ids)
        out: dict[str, dict[str, Any]] = {}
        addresses = [r for r in row_ids if r is not None]
        if addresses:
            with contextlib.suppress(Exception):  # an address gone with compaction
                wanted = set(ids)
                taken = await table.take_row_ids(addresses).select(RESULT_COLUMNS).to_list()
                out.update((r["id"], r) for r in taken if r["id"] in wanted)
        missing = [i for i in ids if i not in out]
        for i in range(0, len(missing), _IN_BATCH):
            part = missing[i : i + _IN_BATCH]
            q = table.query().where(f"id IN {sql_list(part)}").select(RESULT_COLUMNS)
            out.update((r["id"], r) for r in await q.limit(len(part)).to_list())
        return out


def _with_distance(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["_distance"] is not None and r["_distance"] == r["_distance"]]
