"""The index end to end on a real tree (copies of the standard library's `json` and
`email/mime` packages), real LanceDB in tmp folders and the real all-MiniLM-L6-v2.

Most tests share one LanceDB database, so the embedding cache filled by the first
index serves every later workspace: only the first one pays for embedding, and
tests can count exactly what is embedded again.
"""

from __future__ import annotations

import asyncio
import shutil
import sysconfig
import time
from pathlib import Path

import pytest
import pytest_asyncio

from lowentropy.models.embeddings import SentenceTransformerEmbedder
from lowentropy.models.embeddings import default_model_path as default_embedder_path
from lowentropy.retrieval import (
    CrossEncoderReranker,
    Index,
    IndexConfig,
    SearchHit,
    Span,
    SyncProgress,
    chunk_file,
    rank_candidates,
    workspace_id,
)
from lowentropy.retrieval.search import reciprocal_rank_fusion
from lowentropy.retrieval.store import RESULT_COLUMNS
from lowentropy.retrieval.words import fulltext_query

STDLIB = Path(sysconfig.get_paths()["stdlib"])
FAKE_KEY = "sk-" + "proj-" + "Tq4vB8nK2xR6mW1pZ9cL3hJ7"
FAKE_GITHUB = "ghp_" + "Zx9Yw8Vu7T" * 4


def copy_package(name: str, dest: Path) -> None:
    shutil.copytree(
        STDLIB / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )


def make_workspace(root: Path) -> Path:
    copy_package("json", root)
    copy_package("email/mime", root)
    return root


def rows_by_path(index: Index) -> dict[str, int]:
    return {p: n for p, (_, n) in index.store.path_summary().items()}


def consistent(index: Index) -> None:
    """Every path's rows match the saved tree: hash and count."""
    summary = index.store.path_summary()
    tree = index.tree
    for path, (hashes, count) in summary.items():
        assert path in tree.files, f"stale rows for {path}"
        assert hashes == {tree.files[path].hash}, path
        assert count == tree.files[path].chunks, path
    for path, leaf in tree.files.items():
        assert leaf.chunks == 0 or path in summary, f"rows missing for {path}"
    ids = index.store.table.search().select(["id"]).limit(None).to_arrow().column("id")
    assert len(set(ids.to_pylist())) == len(ids)


class FaultInjected(Exception):
    """Raised by a progress callback to kill a sync midway."""


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("shared-lancedb"))


def new_index(
    root: Path, embedder: SentenceTransformerEmbedder, db: str | None, **config: object
) -> Index:
    cfg = IndexConfig(db_uri=db, cache_dir=str(root.parent / "state"), **config)  # type: ignore[arg-type]
    return Index(root, embedder, cfg)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def warm(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder, shared_db: str
) -> Index:
    """An index with every vector filled; its embeddings fill the shared cache."""
    root = make_workspace(tmp_path_factory.mktemp("warm") / "ws")
    index = new_index(root, embedder, shared_db)
    before = embedder.stats.texts
    await index.sync()
    embedded = await index.fill_vectors()
    status = await index.status()
    assert status.pending_embeddings == 0
    # equal texts (e.g. two identical `__init__` bodies) are embedded once
    assert embedder.stats.texts - before == embedded > 40
    return index


async def test_full_text_answers_before_any_vector(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    index = new_index(make_workspace(tmp_path / "ws"), embedder, str(tmp_path / "own-db"))
    before = embedder.stats.texts
    result = await index.sync()
    status = await index.status()
    assert status.files == result.files == len(result.added) > 10
    assert status.chunks == result.chunks_written > 40
    assert status.pending_embeddings == status.chunks  # nothing embedded yet
    assert status.root_hash == result.root_hash == index.tree.root_hash
    assert status.model == embedder.name

    hits = await index.search("JSONDecodeError lineno colno", 3, mode="fulltext")
    assert hits[0].rel_path == "json/decoder.py"
    assert hits[0].symbol == "JSONDecodeError"
    assert hits[0].path == str(index.root / "json/decoder.py")
    source = (index.root / hits[0].rel_path).read_text().split("\n")
    assert source[hits[0].span.start_line].startswith("class JSONDecodeError")
    # hybrid degrades to full text while no row has a vector, without embedding the query
    hybrid = await index.search("JSONDecodeError lineno colno", 3)
    assert [h.symbol for h in hybrid] == [h.symbol for h in hits]
    assert embedder.stats.texts == before


async def test_identifier_aware_full_text(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    root = tmp_path / "ws"
    (root / "net").mkdir(parents=True)
    (root / "net/http.py").write_text(
        "def parseHttpResponseHeader(raw):\n    return raw.split(':', 1)\n\n\n"
        "def unrelated():\n    return 42\n"
    )
    (root / "net/other.py").write_text("def something_else():\n    return 'x'\n")
    index = new_index(root, embedder, str(tmp_path / "own-db"))
    await index.sync()
    hits = await index.search("response header", 5, mode="fulltext")
    assert [h.symbol for h in hits] == ["parseHttpResponseHeader"]
    hits = await index.search("parseHttpResponseHeader", 5, mode="fulltext")
    assert hits[0].symbol == "parseHttpResponseHeader"


async def test_paraphrased_docstring_finds_its_function(warm: Index) -> None:
    # JSONDecodeError: "Subclass of ValueError with the following additional properties:
    # msg, doc, pos, lineno, colno"
    hits = await warm.search(
        "exception raised with line and column information when decoding fails", 3, mode="vector"
    )
    assert hits[0].symbol == "JSONDecodeError"
    # raw_decode: "Decode a JSON document from s (a str beginning with a JSON document)
    # and return a 2-tuple ... This can be used to decode a JSON document from a
    # string that may have extraneous data at the end."
    hits = await warm.search(
        "parse the first JSON value at the start of a string that may have trailing garbage, "
        "and give back the object plus the offset where it stopped",
        3,
    )
    assert "JSONDecoder.raw_decode" in [h.symbol for h in hits]


async def test_hybrid_fetching_only_the_winners_matches_fusing_full_rows(
    warm: Index, embedder: SentenceTransformerEmbedder
) -> None:
    """Candidates come as ids and paths, and only the returned rows are fetched: the
    hits are exactly those of fusing and ranking both sides' full rows."""
    for query in ("decode a JSON document", "MIMEText charset", "raw_decode"):
        (vector,) = await embedder.embed([query])
        store = warm.store
        n = max(7, warm.config.candidates)  # what the searcher asks each side for
        vector_rows = store.nearest(vector, n)
        text_rows = store.fulltext(fulltext_query(query), n)
        fused = reciprocal_rank_fusion([vector_rows, text_rows])
        want = rank_candidates(query, fused, warm.config.ranking)[:7]
        hits = await warm.search(query, 7)
        got = [(h.rel_path, h.span.start_line, h.symbol, h.text, h.score) for h in hits]
        assert got == [
            (r["path"], r["start_line"], r["symbol"], r["text"], pytest.approx(score))
            for r, score in want
        ]


async def test_rows_at_stale_addresses_are_found_by_id(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """A write between a search and the fetch of its winners moves or deletes rows:
    an address is only a hint, the id decides."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text(
        "def alpha():\n    return 1\n\n\ndef beta():\n    return 2\n", encoding="utf-8"
    )
    index = new_index(root, embedder, str(tmp_path / "own-db"))
    await index.sync()
    store = index.store
    found = await store.fulltext_async("alpha beta", 10, RESULT_COLUMNS, row_ids=True)
    by_symbol = {r["symbol"]: r for r in found}
    assert {"alpha", "beta"} <= set(by_symbol) and all("_rowid" in r for r in found)
    ids = [r["id"] for r in found]
    addresses = [r["_rowid"] for r in found]
    assert (await store.rows_async(ids, addresses)).keys() == set(ids)  # fresh: by address

    # alpha moves down two lines (same text: same id, rewritten row), beta goes
    (root / "a.py").write_text("# moved\n\ndef alpha():\n    return 1\n", encoding="utf-8")
    await index.sync([root / "a.py"])
    await asyncio.to_thread(store.optimize)  # compaction: old addresses point nowhere
    rows = await store.rows_async(ids, addresses)
    alpha = by_symbol["alpha"]["id"]
    assert by_symbol["beta"]["id"] not in rows
    assert rows[alpha]["start_line"] == by_symbol["alpha"]["start_line"] + 2
    assert rows[alpha]["text"] == by_symbol["alpha"]["text"]
    hits = await index.search("alpha beta", 5)
    assert [h.symbol for h in hits if h.symbol in ("alpha", "beta")] == ["alpha"]


async def test_editing_one_file_reembeds_only_its_changed_chunks(
    warm: Index, tmp_path: Path, embedder: SentenceTransformerEmbedder, shared_db: str
) -> None:
    index = new_index(make_workspace(tmp_path / "ws"), embedder, shared_db)
    before = embedder.stats.texts
    await index.sync()
    # another workspace already embedded every chunk: the shared cache serves them all
    assert (await index.status()).pending_embeddings == 0
    assert await index.fill_vectors() == 0
    assert embedder.stats.texts == before

    tree = index.tree
    target = index.root / "json/encoder.py"
    old_text = target.read_text()
    new_text = old_text.replace(
        "Return a JSON representation of a Python string",
        "Return the JSON form of a Python str, quoted",
    )
    assert new_text != old_text
    target.write_text(new_text)
    old_hashes = {c.hash for c in chunk_file("json/encoder.py", old_text)}
    changed = [c for c in chunk_file("json/encoder.py", new_text) if c.hash not in old_hashes]
    assert len(changed) == 1

    result = await index.sync([target])
    assert result.changed == ("json/encoder.py",)
    assert result.added == result.removed == ()
    assert (await index.status()).pending_embeddings == 1
    assert await index.fill_vectors() == 1
    assert embedder.stats.texts == before + 1

    assert result.root_hash != tree.root_hash
    assert index.tree.dir_hash("json") != tree.dir_hash("json")
    for untouched in ("email", "email/mime"):
        assert index.tree.dir_hash(untouched) == tree.dir_hash(untouched)

    # a full sync agrees, and looks no further than the root
    again = await index.sync()
    assert again.added == again.changed == again.removed == ()
    assert again.nodes_visited == 1
    consistent(index)


async def test_full_sync_descends_only_into_changed_directories(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    index = new_index(make_workspace(tmp_path / "ws"), embedder, str(tmp_path / "own-db"))
    await index.sync()
    path = index.root / "email/mime/text.py"
    path.write_text(path.read_text() + "\n# trailing comment\n")
    result = await index.sync()
    assert result.changed == ("email/mime/text.py",)
    # root's children (email, json) + email's (mime) + mime's files; json is never entered
    mime_files = len(index.tree.children["email/mime"])
    assert result.nodes_visited == 1 + 2 + 1 + mime_files


async def test_deleted_and_renamed_files_leave_no_stale_rows(
    warm: Index, tmp_path: Path, embedder: SentenceTransformerEmbedder, shared_db: str
) -> None:
    index = new_index(make_workspace(tmp_path / "ws"), embedder, shared_db)
    await index.sync()
    root = index.root
    (root / "json/tool.py").unlink()
    (root / "json/scanner.py").rename(root / "json/scan2.py")
    (root / "email/mime").rename(root / "email/mime2")
    before = embedder.stats.texts
    result = await index.sync()
    assert "json/tool.py" in result.removed
    assert "json/scanner.py" in result.removed
    assert "json/scan2.py" in result.added
    assert all(p.startswith("email/mime2/") for p in result.added if p.startswith("email"))

    paths = set(rows_by_path(index))
    assert "json/tool.py" not in paths
    assert "json/scanner.py" not in paths
    assert not any(p.startswith("email/mime/") for p in paths)
    assert "json/scan2.py" in paths
    hits = await index.search("py_make_scanner", 10, mode="fulltext")
    assert hits[0].rel_path == "json/scan2.py"
    assert "json/scanner.py" not in {h.rel_path for h in hits}
    # moved text keeps its vectors: nothing is embedded again
    assert (await index.status()).pending_embeddings == 0
    assert embedder.stats.texts == before

    # a deletion reported by path only (didChangeWatchedFiles)
    (root / "json/decoder.py").unlink()
    result = await index.sync([root / "json/decoder.py"])
    assert result.removed == ("json/decoder.py",)
    assert "json/decoder.py" not in rows_by_path(index)
    hits = await index.search("JSONDecodeError", 20, mode="fulltext")
    assert "json/decoder.py" not in {h.rel_path for h in hits}
    consistent(index)


async def test_secrets_and_ignored_files_are_never_indexed(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    root = make_workspace(tmp_path / "ws")
    (root / ".env").write_text(f"OPENAI_API_KEY={FAKE_KEY}\nQUOKKA_MARKER=1\n")
    (root / ".gitignore").write_text("private_notes.txt\n")
    (root / "private_notes.txt").write_text("quokka plans, not for the index\n")
    (root / "json/settings.py").write_text(f'GITHUB_TOKEN = "{FAKE_GITHUB}"\nquokka = True\n')
    (root / "deploy").mkdir()
    (root / "deploy/id_rsa").write_text("quokka\n")
    index = new_index(root, embedder, str(tmp_path / "own-db"))
    await index.sync()
    await index.sync([root / ".env", root / "json/settings.py", root / "private_notes.txt"])

    hidden = {".env", "private_notes.txt", "json/settings.py", "deploy/id_rsa"}
    assert hidden.isdisjoint(index.tree.files)
    assert hidden.isdisjoint(rows_by_path(index))
    assert await index.search("quokka", 10, mode="fulltext") == []
    hits = await index.search(FAKE_KEY, 10, mode="fulltext")
    assert not any(FAKE_KEY in h.text or "QUOKKA" in h.text for h in hits)

    # once the token is gone the file is ordinary code
    (root / "json/settings.py").write_text("quokka = True\n")
    result = await index.sync([root / "json/settings.py"])
    assert result.added == ("json/settings.py",)
    assert [h.rel_path for h in await index.search("quokka", 10, mode="fulltext")] == [
        "json/settings.py"
    ]
    # an ignore file's change is a change to the whole walk
    with (root / ".gitignore").open("a") as f:
        f.write("json/settings.py\n")
    result = await index.sync([root / ".gitignore"])
    assert result.removed == ("json/settings.py",)
    assert await index.search("quokka", 10, mode="fulltext") == []


async def test_a_sync_killed_midway_is_repaired_by_the_next(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    root = make_workspace(tmp_path / "ws")
    db = str(tmp_path / "own-db")
    batches = 0

    def fault_injection_progress(p: SyncProgress) -> None:
        nonlocal batches
        if p.phase == "index":
            batches += 1
            if batches == 3:
                raise FaultInjected

    index = new_index(root, embedder, db, write_batch_files=1)
    with pytest.raises(FaultInjected):
        await index.sync(progress=fault_injection_progress)
    written = rows_by_path(index)
    # the first three files' rows are committed (an empty file has none), the tree never saved
    assert 2 <= len(written) <= 3
    assert index.tree.files == {}

    # a restart: a new Index over the same state finds and repairs the mismatch
    restarted = new_index(root, embedder, db, write_batch_files=1)
    result = await restarted.sync()
    assert set(result.repaired) == set(written)
    consistent(restarted)
    assert (await restarted.status()).files == len(result.added) > 10

    # killed again in the middle of an incremental sync: a delete, an edit, an add
    (root / "json/tool.py").unlink()
    for name in ("json/decoder.py", "json/encoder.py"):
        (root / name).write_text((root / name).read_text() + "\n# edited\n")
    (root / "json/extra.py").write_text("def extra():\n    return 1\n")
    batches = 1  # dies after the second written file
    with pytest.raises(FaultInjected):
        await restarted.sync(progress=fault_injection_progress)
    again = new_index(root, embedder, db)
    result = await again.sync()
    assert "json/tool.py" not in rows_by_path(again)
    assert "json/extra.py" in rows_by_path(again)
    consistent(again)
    # and rows lost behind the tree's back are found too
    again.store.delete_paths(["json/decoder.py"])
    fresh = new_index(root, embedder, db)
    result = await fresh.sync()
    assert result.repaired == ("json/decoder.py",)
    assert "json/decoder.py" in rows_by_path(fresh)
    consistent(fresh)


KILLER = """
import asyncio, os, signal, sys
from lowentropy.models.embeddings import SentenceTransformerEmbedder
from lowentropy.retrieval import Index, IndexConfig

root, db, state = sys.argv[1:4]
batches = 0

def progress(p):
    global batches
    if p.phase == "index":
        batches += 1
        if batches == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally, no flush

cfg = IndexConfig(db_uri=db, cache_dir=state, write_batch_files=1)
asyncio.run(Index(root, SentenceTransformerEmbedder(), cfg).sync(progress=progress))
"""


async def test_a_process_killed_mid_sync_leaves_an_index_the_next_sync_repairs(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """A real SIGKILL in the middle of a first sync (files written one per commit)."""
    import signal
    import subprocess
    import sys

    root = make_workspace(tmp_path / "ws")
    db, state = str(tmp_path / "own-db"), str(tmp_path / "state")
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLER, str(root), db, state],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    index = Index(root, embedder, IndexConfig(db_uri=db, cache_dir=state))
    await index.open()
    written = rows_by_path(index)
    assert 2 <= len(written) <= 3  # the committed files' rows, and no saved tree
    assert index.tree.files == {}
    result = await index.sync()
    assert set(result.repaired) == set(written)
    consistent(index)
    assert (await index.status()).files == len(result.added) > 10


async def test_sync_never_blocks_the_event_loop(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    root = tmp_path / "ws"
    copy_package("email", root)
    index = new_index(root, embedder, str(tmp_path / "own-db"))
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    result = await index.sync()
    done.set()
    await task
    assert result.files >= 30
    assert len(gaps) >= 3  # the sync ran long enough to observe the loop
    assert max(gaps) < 0.25


async def test_priority_paths_are_embedded_first(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    root = tmp_path / "ws"
    copy_package("email/mime", root)
    index = new_index(
        root, embedder, str(tmp_path / "own-db"), embed_batch=4, vector_index_min_rows=10
    )
    await index.sync()
    target = "email/mime/multipart.py"
    task = index.request_fill([root / target])
    assert index.request_fill() is task  # one fill at a time
    # Once the first batch is written, the priority file has its vectors.
    while (await index.status()).pending_embeddings == (await index.status()).chunks:
        await asyncio.sleep(0.05)
    pending_target = index.store.count(f"path = '{target}' AND vector IS NULL")
    await task
    assert pending_target == 0
    assert (await index.status()).pending_embeddings == 0
    hits = await index.search("a MIME multipart container message", 3, mode="vector")
    assert target in [h.rel_path for h in hits]
    # enough vectors for an ANN index: optimize builds one, and search still finds it
    # (quantised distances may swap near ties, so only membership is compared)
    await asyncio.to_thread(index.store.optimize)
    assert "vector_idx" in {ix.name for ix in index.store.table.list_indices()}
    indexed = await index.search("a MIME multipart container message", 3, mode="vector")
    assert target in [h.rel_path for h in indexed]


async def test_default_location_is_the_user_cache_dir(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "ws"
    root.mkdir()
    (root / "main.py").write_text("def main():\n    return 0\n")
    index = Index(root, embedder)
    result = await index.sync()
    assert result.files == 1
    state = tmp_path / "xdg" / "lowentropy" / "index" / workspace_id(root)
    assert index.state_dir == state
    assert (state / "merkle.json").is_file()
    assert (state / "lancedb").is_dir()


@pytest.fixture(scope="module")
def cross_encoder() -> CrossEncoderReranker:
    """A real sentence-transformers CrossEncoder on the packaged MiniLM weights.

    No cross-encoder is packaged, so its classification head is freshly initialised
    (seeded, so the scores are reproducible): the scores mean nothing, but they are a
    real model's, and what is tested is that the reranker orders by them.
    """
    import torch

    torch.manual_seed(0)
    reranker = CrossEncoderReranker(default_embedder_path(), top=3)
    reranker.score_sync("warm", ["up"])  # loads the model
    return reranker


async def test_a_reranker_reorders_the_fused_hits(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, cross_encoder: CrossEncoderReranker
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "parsers.py").write_text(
        "def alpha(text):\n    # parser parser parser: the parser of parsers\n    return text\n\n\n"
        "def beta(text):\n    # a parser\n    return text.strip()\n\n\n"
        "def gamma(text):\n    # parse it\n    return text.split()\n"
    )
    db = str(tmp_path / "own-db")
    plain = new_index(root, embedder, db)
    await plain.sync()
    fused = await plain.search("parser", 5)
    cfg = IndexConfig(db_uri=db, cache_dir=str(root.parent / "state"))
    reranked = Index(root, embedder, cfg, reranker=cross_encoder)
    hits = await reranked.search("parser", 5)
    # the order is the model's scores, highest first, over the same hits
    scores = cross_encoder.score_sync("parser", [h.text for h in fused[:3]])
    want = sorted(zip(scores, [h.symbol for h in fused[:3]], strict=True), reverse=True)
    assert [h.symbol for h in hits[:3]] == [symbol for _, symbol in want]
    assert [h.score for h in hits[:3]] == pytest.approx([score for score, _ in want])
    assert {h.symbol for h in hits} == {h.symbol for h in fused}


async def test_cross_encoder_reranks_only_the_head(cross_encoder: CrossEncoderReranker) -> None:
    def hit(n: int) -> SearchHit:
        span = Span(start_line=n, start_col=0, end_line=n, end_col=1)
        return SearchHit(
            path=f"/w/{n}.py", rel_path=f"{n}.py", span=span, score=1.0 / (n + 1),
            text=f"def f{n}(x):\n    return x * {n}\n", symbol=f"f{n}", kind="function",
            language="python",
        )  # fmt: skip

    hits = [hit(n) for n in range(6)]
    out = await cross_encoder.rerank("multiply", hits)
    scores = cross_encoder.score_sync("multiply", [h.text for h in hits[:3]])
    head = sorted(range(3), key=lambda i: scores[i], reverse=True)
    assert [h.symbol for h in out] == [f"f{i}" for i in head] + ["f3", "f4", "f5"]
    assert [h.score for h in out[3:]] == [h.score for h in hits[3:]]  # the tail is not scored
    with pytest.raises(ValueError):
        CrossEncoderReranker()
