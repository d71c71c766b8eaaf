"""Embeddings by content: hash(model id, chunk text) -> vector, in a LanceDB table.

A chunk whose text any file, branch or workspace has embedded before (with the
same model) is never embedded again. With a shared LanceDB URI the table is
shared by everyone using it; concurrent writers are fine because rows are
only ever inserted when their key is missing. Methods block.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from lancedb.index import BTree

from lowentropy.retrieval.store import sql_list

__all__ = ["EmbeddingCache", "cache_key"]

_IN_BATCH = 500


def cache_key(model_id: str, text: str) -> str:
    return hashlib.blake2b(f"{model_id}\0{text}".encode(), digest_size=20).hexdigest()


class EmbeddingCache:
    def __init__(self, db: Any, model_id: str, dimensions: int) -> None:
        self.db = db
        self.model_id = model_id
        self.dimensions = dimensions
        self.name = f"embed_cache_{dimensions}"
        self.schema = pa.schema(
            [
                pa.field("key", pa.string(), nullable=False),
                pa.field("vector", pa.list_(pa.float32(), dimensions), nullable=False),
            ]
        )
        self._table: Any = None
        self._indexed = False
        self._lock = threading.Lock()

    @property
    def table(self) -> Any:
        if self._table is None:
            self._table = self.db.create_table(self.name, schema=self.schema, exist_ok=True)
        return self._table

    def key(self, text: str) -> str:
        return cache_key(self.model_id, text)

    def get_many(self, keys: Sequence[str]) -> dict[str, list[float]]:
        """The known vectors among `keys`."""
        found: dict[str, list[float]] = {}
        unique = list(dict.fromkeys(keys))
        if not unique or self.table.count_rows() == 0:
            return found
        for i in range(0, len(unique), _IN_BATCH):
            batch = unique[i : i + _IN_BATCH]
            arrow = (
                self.table.search()
                .where(f"key IN {sql_list(batch)}")
                .select(["key", "vector"])
                .limit(len(batch))
                .to_arrow()
            )
            found.update(
                zip(
                    arrow.column("key").to_pylist(), arrow.column("vector").to_pylist(), strict=True
                )
            )
        return found

    def put_many(self, vectors: Mapping[str, Sequence[float]]) -> None:
        if not vectors:
            return
        keys = list(vectors)
        values = pa.array([list(vectors[k]) for k in keys], pa.list_(pa.float32(), self.dimensions))
        rows = pa.Table.from_arrays([pa.array(keys, pa.string()), values], schema=self.schema)
        with self._lock:
            self.table.merge_insert("key").when_not_matched_insert_all().execute(rows)
            if not self._indexed:
                if not any(ix.name == "key_idx" for ix in self.table.list_indices()):
                    self.table.create_index("key", config=BTree(), name="key_idx")
                self._indexed = True

    def optimize(self) -> None:
        with self._lock:
            if self.table.count_rows():
                self.table.optimize()
