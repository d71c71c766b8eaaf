"""`Index`: keeps one workspace folder's chunk table in step with its files.

sync:   walk (or stat only the given paths) -> hash files, reusing the stored
        hash when size and mtime match -> Merkle diff against the stored tree
        -> chunk the changed files -> write their rows at once (vectors from the
        embedding cache where known, else pending) -> delete rows of removed
        files -> save the tree. Rows are searchable by full text right away.
fill_vectors: embed pending rows in batches, priority paths (open and
        recently edited files) first, through the embedding cache.

Crash safety: the tree is saved only after the rows it describes are written,
so a sync killed midway is redone by the next one; and the first sync of each
`Index` checks the rows against the saved tree (file hash and row count per
path) and redoes every path where they disagree.

Every blocking step runs in a worker thread; the async methods never block
the caller's event loop. Syncs are serialised, vector filling runs beside them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import lancedb

from lowentropy.models.background import run_in_background
from lowentropy.models.types import Embedder
from lowentropy.retrieval.chunker import chunk_file
from lowentropy.retrieval.config import (
    IndexConfig,
    checkout_id,
    default_cache_dir,
    workspace_id,
)
from lowentropy.retrieval.embed_cache import EmbeddingCache
from lowentropy.retrieval.merkle import FileLeaf, MerkleTree, diff, file_hash
from lowentropy.retrieval.search import Reranker, Searcher
from lowentropy.retrieval.secrets import mask_secrets
from lowentropy.retrieval.store import ChunkStore
from lowentropy.retrieval.store_errors import StoreUnavailableError, store_errors
from lowentropy.retrieval.types import (
    IndexStatus,
    ProgressCallback,
    SearchHit,
    SearchMode,
    SyncProgress,
    SyncResult,
)
from lowentropy.retrieval.walker import IGNORE_FILES, WalkEntry, Walker, decode_text, read_bytes

__all__ = ["Index"]

log = logging.getLogger(__name__)

# A file modified this close to the moment its stat was recorded may change
# again within the same mtime tick: hash it again rather than trust the stat.
_RACY_NS = 2_000_000_000
_RECENT = 64  # recently synced paths remembered as embedding priority
_OPTIMIZE_AFTER_FILES = 200
_OPTIMIZE_AFTER_ROWS = 256
# After the database could not be opened, calls fail at once with the same error
# for this long rather than each waiting out the object store's retries again.
_REOPEN_AFTER_S = 30.0


class Index:
    """The index of one workspace folder. Cheap to construct; opens on first use."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        embedder: Embedder,
        config: IndexConfig | None = None,
        *,
        reranker: Reranker | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.embedder = embedder
        self.config = config or IndexConfig()
        self.reranker = reranker
        self.walker = Walker(self.root, self.config.walk)
        base = Path(self.config.cache_dir) if self.config.cache_dir else default_cache_dir()
        self.state_dir = base / workspace_id(self.root)
        self.db_uri = self.config.db_uri or str(self.state_dir / "lancedb")
        self._tree_path = self.state_dir / "merkle.json"
        self._meta_path = self.state_dir / "meta.json"
        self._tree = MerkleTree({})
        self._store: ChunkStore | None = None
        self._cache: EmbeddingCache | None = None
        self._searcher: Searcher | None = None
        self._verified = False  # rows checked against the saved tree
        self._open_failure: tuple[float, StoreUnavailableError] | None = None
        self._open_lock = asyncio.Lock()
        # A cancelled `await sync()` leaves its worker thread running: the next
        # sync's thread waits for it here rather than racing it over the tree.
        self._sync_thread_lock = threading.Lock()
        self._sync_lock = asyncio.Lock()
        self._fill_lock = asyncio.Lock()
        self._fill_task: asyncio.Task[int] | None = None
        self._priority: deque[str] = deque(maxlen=_RECENT)
        # path -> content hash of files found not indexable (secret, not UTF-8)
        self._excluded: dict[str, str] = {}

    # -- opening ------------------------------------------------------------

    @property
    def model(self) -> str:
        return self.embedder.name

    @property
    def store(self) -> ChunkStore:
        if self._store is None:
            raise RuntimeError("Index is not open: await open() or sync() first")
        return self._store

    async def open(self) -> None:
        """Connect to the database and load the saved tree (idempotent)."""
        if self._store is not None:
            return
        async with self._open_lock:
            if self._store is not None:
                return
            if self._open_failure is not None:
                failed_at, error = self._open_failure
                if time.monotonic() - failed_at < _REOPEN_AFTER_S:
                    raise error.with_traceback(None)
            dims = self.embedder.dimensions
            if dims <= 0:
                probe = getattr(self.embedder, "probe_dimensions", None)
                dims = await probe() if probe else len((await self.embedder.embed(["probe"]))[0])
            try:
                await asyncio.to_thread(self._open_blocking, dims)
            except StoreUnavailableError as exc:
                self._open_failure = (time.monotonic(), exc)
                raise
            self._open_failure = None

    def _open_blocking(self, dims: int) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        name = self.config.table or (
            f"chunks_{checkout_id(self.root)}" if self.config.db_uri else "chunks"
        )
        meta = {"model": self.embedder.name, "dimensions": dims, "db": self.db_uri, "table": name}
        try:
            old_meta = json.loads(self._meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old_meta = None
        with store_errors(self.db_uri):
            db = lancedb.connect(self.db_uri)
            store = ChunkStore(db, name, dims, self.config.vector_index_min_rows)
            cache = EmbeddingCache(db, self.embedder.name, dims)
            if old_meta != meta:
                store.drop()  # another model (or database): its vectors describe something else
            # Reach both tables now: a wrong URI, bucket or key fails here, once, clearly.
            _ = store.table, cache.table
        if old_meta != meta:
            self._tree_path.unlink(missing_ok=True)  # so does the saved tree
            self._meta_path.write_text(json.dumps(meta), encoding="utf-8")
        self._tree = MerkleTree.load(self._tree_path)
        self._cache = cache
        self._store = store
        self._searcher = Searcher(
            store,
            self.embedder,
            self.root,
            rrf_k=self.config.rrf_k,
            candidates=self.config.candidates,
            reranker=self.reranker,
            ranking=self.config.ranking,
        )

    # -- sync ---------------------------------------------------------------

    async def sync(
        self,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        progress: ProgressCallback | None = None,
    ) -> SyncResult:
        """Bring the index up to date with the whole folder, or with `paths` only.

        `paths` may be files or directories, absolute or relative to the root;
        paths that no longer exist are removed from the index. `progress` is
        called from the worker thread (hand it to your loop with
        `call_soon_threadsafe`); an exception it raises aborts the sync, which
        the next sync then repairs.
        """
        await self.open()
        async with self._sync_lock:
            rels = None if paths is None else self._relative(paths)
            if rels is not None and any(r.rsplit("/", 1)[-1] in IGNORE_FILES for r in rels):
                self.walker.forget_ignore_files()
                rels = None  # ignore rules changed: anything may have come or gone
            result = await run_in_background(self._sync_locked, rels, progress)
        if rels is not None:  # edits: their chunks are embedded first
            self._priority.extendleft(p for p in (*result.changed, *result.added)[:_RECENT])
        return result

    def _relative(self, paths: Iterable[str | os.PathLike[str]]) -> list[str]:
        out: list[str] = []
        for p in paths:
            rel = self.walker.relative(p)
            if rel is not None:
                out.append(rel)
        return out

    def _scan(
        self, entries: Iterable[WalkEntry], old: MerkleTree, progress: ProgressCallback | None
    ) -> dict[str, FileLeaf]:
        """Leaves for the walked files; unchanged stats reuse the stored hash unread."""
        leaves: dict[str, FileLeaf] = {}
        max_bytes = self.config.walk.max_file_bytes
        for n, entry in enumerate(entries, start=1):
            if progress is not None and n % 500 == 0:
                progress(SyncProgress(phase="scan", done=n, total=0, path=entry.rel))
            leaf = old.files.get(entry.rel)
            if (
                leaf is not None
                and leaf.size == entry.size
                and leaf.mtime_ns == entry.mtime_ns
                and entry.mtime_ns < old.built_ns - _RACY_NS
            ):
                leaves[entry.rel] = leaf
                continue
            data = read_bytes(entry.path, max_bytes)
            if data is None:
                continue
            h = file_hash(data)
            if self._excluded.get(entry.rel) == h:  # known to hold a secret or bad text
                continue
            if leaf is not None and leaf.hash == h:  # touched, not changed
                leaves[entry.rel] = attrs.evolve(leaf, size=entry.size, mtime_ns=entry.mtime_ns)
            else:  # content checks happen when the file is chunked
                leaves[entry.rel] = FileLeaf(hash=h, size=entry.size, mtime_ns=entry.mtime_ns)
        return leaves

    def _new_tree(
        self, old: MerkleTree, rels: list[str] | None, progress: ProgressCallback | None
    ) -> MerkleTree:
        now = time.time_ns()
        if rels is None:
            return MerkleTree(self._scan(self.walker.walk(), old, progress), now)
        updates: dict[str, FileLeaf] = {}
        removed: set[str] = set()
        for rel in rels:
            path = self.root / rel
            if path.is_dir() and not path.is_symlink():
                skipped = rel != "" and self.walker.excluded_dir(rel)
                entries = [] if skipped else list(self.walker.walk(rel))
                found = self._scan(entries, old, None)
                updates.update(found)
                prefix = rel + "/" if rel else ""
                removed.update(p for p in old.files if p.startswith(prefix) and p not in found)
            else:
                entry = self.walker.entry(rel)
                found = self._scan([entry], old, None) if entry is not None else {}
                updates.update(found)
                if rel not in found:
                    removed.add(rel)
                prefix = rel + "/"  # a directory that was deleted
                removed.update(p for p in old.files if p.startswith(prefix))
        # Keep the old stat time: leaves scanned now are younger than it, so the
        # next full scan hashes them again instead of trusting a racy stat.
        return old.with_files(updates, removed, built_ns=old.built_ns or now)

    def _check_rows(self, tree: MerkleTree) -> set[str]:
        """Paths whose rows disagree with the saved tree (a sync killed midway)."""
        summary = self.store.path_summary()
        dirty = {
            path
            for path, (hashes, count) in summary.items()
            if (leaf := tree.files.get(path)) is None
            or hashes != {leaf.hash}
            or count != leaf.chunks
        }
        dirty.update(p for p, leaf in tree.files.items() if leaf.chunks and p not in summary)
        return dirty

    def _sync_locked(self, rels: list[str] | None, progress: ProgressCallback | None) -> SyncResult:
        with self._sync_thread_lock:
            return self._sync_blocking(rels, progress)

    def _sync_blocking(
        self, rels: list[str] | None, progress: ProgressCallback | None
    ) -> SyncResult:
        started = time.perf_counter()
        old = self._tree
        repaired = self._check_rows(old) if not self._verified else set()
        if rels is not None and repaired:
            rels = sorted({*rels, *repaired})  # a partial sync still fixes them all
        new = self._new_tree(old, rels, progress)
        # Repaired paths count as new, so they are written again (or deleted).
        d = diff(old.with_files({}, removed=repaired) if repaired else old, new)
        to_write = sorted({*d.added, *d.changed})
        to_delete = sorted({*d.removed, *(r for r in repaired if r not in new.files)})

        leaves = dict(new.files)
        if to_delete:
            self.store.delete_paths(to_delete)
        written = 0
        batch_size = max(1, self.config.write_batch_files)
        for i in range(0, len(to_write), batch_size):
            batch = to_write[i : i + batch_size]
            written += self._write_batch(batch, leaves)
            if progress is not None:
                done = min(i + batch_size, len(to_write))
                progress(
                    SyncProgress(phase="index", done=done, total=len(to_write), path=batch[-1])
                )

        tree = MerkleTree(leaves, new.built_ns)
        tree.save(self._tree_path)  # only now: the rows above are committed
        self._tree = tree
        self._verified = True
        if len(to_write) + len(to_delete) >= _OPTIMIZE_AFTER_FILES:
            self.store.optimize()
        if progress is not None:
            progress(SyncProgress(phase="done", done=len(to_write), total=len(to_write)))
        dropped = {p for p in to_write if p not in leaves and p in old.files}
        return SyncResult(
            added=tuple(p for p in d.added if p in leaves),
            changed=tuple(p for p in d.changed if p in leaves),
            removed=tuple(sorted({*to_delete, *dropped})),
            repaired=tuple(sorted(repaired)),
            chunks_written=written,
            files=len(tree.files),
            root_hash=tree.root_hash,
            nodes_visited=d.visited,
            seconds=time.perf_counter() - started,
        )

    def _write_batch(self, batch: Sequence[str], leaves: dict[str, FileLeaf]) -> int:
        """Chunk and write one batch of files; leaves get the hash and count written."""
        assert self._cache is not None
        chunks = []
        hashes: dict[str, str] = {}
        for rel in batch:
            data = read_bytes(self.root / rel, self.config.walk.max_file_bytes)
            text = decode_text(data) if data is not None else None
            if data is None or text is None:  # vanished, or became binary or secret
                if data is not None:
                    self._excluded[rel] = file_hash(data)
                leaves.pop(rel, None)
                continue
            # Weaker signs of a secret (a URL's password) are masked, same length.
            file_chunks = chunk_file(rel, mask_secrets(text), self.config.chunk)
            hashes[rel] = file_hash(data)
            leaf = leaves[rel]
            leaves[rel] = attrs.evolve(leaf, hash=hashes[rel], chunks=len(file_chunks))
            chunks.extend(file_chunks)
        keys = {c.hash: self._cache.key(c.text) for c in chunks}
        known = self._cache.get_many(list(keys.values()))
        vectors = {h: known[k] for h, k in keys.items() if k in known}
        self.store.replace_files(batch, chunks, hashes, vectors)
        return len(chunks)

    # -- vectors ------------------------------------------------------------

    def request_fill(
        self, priority_paths: Iterable[str | os.PathLike[str]] = ()
    ) -> asyncio.Task[int]:
        """Fill vectors in the background; a running fill takes the new priorities."""
        self._priority.extendleft(reversed(self._relative(priority_paths)))
        if self._fill_task is None or self._fill_task.done():
            self._fill_task = asyncio.create_task(self.fill_vectors())
        return self._fill_task

    async def fill_vectors(
        self,
        priority_paths: Iterable[str | os.PathLike[str]] = (),
        batch_size: int | None = None,
    ) -> int:
        """Embed every pending row, `priority_paths` and recent edits first.

        Returns the number of texts sent to the embedder (cache hits excluded).
        """
        await self.open()
        self._priority.extendleft(reversed(self._relative(priority_paths)))
        size = batch_size or self.config.embed_batch
        embedded = 0
        async with self._fill_lock:
            last_ids: set[str] = set()
            batches = filled = 0
            while True:
                pending = await run_in_background(self._next_pending, size)
                if not pending:
                    break
                ids = {row[0] for row in pending}
                if ids == last_ids:  # the write below did not take: don't spin
                    log.warning("vector fill made no progress on %d rows", len(ids))
                    break
                last_ids = ids
                embedded += await self._fill_batch(pending)
                batches += 1
                filled += len(pending)
                if batches % max(1, self.config.optimize_every) == 0:
                    await run_in_background(self._optimize)  # keep new vectors indexed
            if filled >= _OPTIMIZE_AFTER_ROWS:  # a few fresh rows are cheap to scan
                await run_in_background(self._optimize)
        return embedded

    def _next_pending(self, size: int) -> list[tuple[str, str, str]]:
        while self._priority:
            rows = self.store.pending(size, list(self._priority))
            if rows:
                return rows
            self._priority.clear()  # all embedded
        return self.store.pending(size)

    async def _fill_batch(self, pending: Sequence[tuple[str, str, str]]) -> int:
        cache = self._cache
        assert cache is not None
        keys = {text: cache.key(text) for _, _, text in pending}
        known = await run_in_background(cache.get_many, list(keys.values()))
        texts = [t for t, k in keys.items() if k not in known]
        fresh: dict[str, Any] = {}
        if texts:
            vectors = await self.embedder.embed(texts)
            fresh = {keys[t]: v for t, v in zip(texts, vectors, strict=True)}

        def write() -> None:
            cache.put_many(fresh)
            both = {**known, **fresh}
            self.store.set_vectors([r[0] for r in pending], [both[keys[r[2]]] for r in pending])

        await run_in_background(write)
        return len(texts)

    def _optimize(self) -> None:
        self.store.optimize()
        assert self._cache is not None
        self._cache.optimize()

    # -- queries ------------------------------------------------------------

    async def search(
        self, query: str, limit: int = 10, mode: SearchMode = "hybrid"
    ) -> list[SearchHit]:
        await self.open()
        assert self._searcher is not None
        return await self._searcher.search(query, limit, mode)

    async def status(self) -> IndexStatus:
        await self.open()

        def counts() -> tuple[int, int]:
            return self.store.count(), self.store.count_pending()

        chunks, pending = await asyncio.to_thread(counts)
        return IndexStatus(
            files=len(self._tree.files),
            chunks=chunks,
            pending_embeddings=pending,
            root_hash=self._tree.root_hash,
            model=self.embedder.name,
        )

    @property
    def tree(self) -> MerkleTree:
        """The tree as of the last completed sync."""
        return self._tree

    async def aclose(self) -> None:
        """Stop background filling; the database needs no closing."""
        if self._fill_task is not None and not self._fill_task.done():
            self._fill_task.cancel()
            try:
                await self._fill_task
            except asyncio.CancelledError:
                pass
        self._fill_task = None
