"""The index on object storage: an `s3://` LanceDB URI shared by two teammates.

A real S3-compatible server process (moto's server mode) on 127.0.0.1 holds the
tables; LanceDB reaches it through the standard AWS environment variables, as
it would reach MinIO, R2 or S3 itself. Each teammate keeps their own Merkle
tree in their own state folder; the chunk tables are per workspace, the
embedding cache is one, so what Alice embedded Bob never embeds again.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import QUIET_TAB, lsp_client
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from servers import bucket_keys, make_bucket, s3_env

from lowentropy.models.embeddings import SentenceTransformerEmbedder
from lowentropy.retrieval import Index, IndexConfig, StoreUnavailableError, chunk_file

STDLIB = Path(sysconfig.get_paths()["stdlib"])
BUCKET = "team-index"
URI = f"s3://{BUCKET}/lowentropy"
QUERY = "exception raised with line and column information when decoding fails"


@pytest.fixture(scope="module")
def s3(s3_server: str) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_env(s3_server).items():
            patch.setenv(name, value)
        make_bucket(s3_server, BUCKET)
        yield s3_server


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    # Torch only: the ONNX export would add seconds for nothing this module needs.
    return SentenceTransformerEmbedder(onnx_queries=False)


def teammate(base: Path, name: str, embedder: SentenceTransformerEmbedder, uri: str) -> Index:
    root = base / name / "ws"
    shutil.copytree(
        STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    config = IndexConfig(db_uri=uri, cache_dir=str(base / name / "state"))
    return Index(root, embedder, config)


async def test_teammates_share_one_embedding_cache_on_object_storage(
    s3: str, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    alice = teammate(tmp_path, "alice", embedder, URI)
    before = embedder.stats.texts
    await alice.sync()
    embedded = await alice.fill_vectors()
    assert embedded > 20 and embedder.stats.texts - before == embedded
    # The tables live in the bucket; only the Merkle tree and metadata stay local.
    keys = bucket_keys(s3, BUCKET)
    assert any(k.startswith("lowentropy/") and ".lance/" in k for k in keys), keys[:5]
    assert not (alice.state_dir / "lancedb").exists()
    assert {p.name for p in alice.state_dir.iterdir()} <= {"merkle.json", "meta.json"}

    # Bob has the same code at another path: nothing is embedded again.
    bob = teammate(tmp_path, "bob", embedder, URI)
    before = embedder.stats.texts
    await bob.sync()
    assert (await bob.status()).pending_embeddings == 0
    assert await bob.fill_vectors() == 0
    assert embedder.stats.texts == before
    hits = await bob.search(QUERY, 3, mode="vector")
    assert hits[0].symbol == "JSONDecodeError"
    assert Path(hits[0].path).is_relative_to(bob.root)

    # Bob edits one docstring: one chunk embedded; Alice's rows are not touched.
    alice_rows = alice.store.path_summary()
    target = bob.root / "json/encoder.py"
    old_text = target.read_text()
    new_text = old_text.replace(
        "Return a JSON representation of a Python string",
        "Return the JSON form of a Python str, quoted",
    )
    old_hashes = {c.hash for c in chunk_file("json/encoder.py", old_text)}
    changed = [c for c in chunk_file("json/encoder.py", new_text) if c.hash not in old_hashes]
    target.write_text(new_text)
    before = embedder.stats.texts
    result = await bob.sync([target])
    assert result.changed == ("json/encoder.py",)
    assert await bob.fill_vectors() == len(changed) == 1
    assert embedder.stats.texts == before + 1
    assert alice.store.path_summary() == alice_rows
    hits = await alice.search(QUERY, 1, mode="vector")
    assert Path(hits[0].path).is_relative_to(alice.root)
    await alice.aclose()
    await bob.aclose()


async def test_a_missing_bucket_is_a_clear_error(
    s3: str, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    index = teammate(tmp_path, "carol", embedder, "s3://no-such-bucket/lowentropy")
    with pytest.raises(StoreUnavailableError) as caught:
        await index.sync()
    message = str(caught.value)
    assert "s3://no-such-bucket/lowentropy" in message
    assert "NoSuchBucket" in message and "AWS_" in message
    assert len(message) < 600  # a sentence, not a Rust debug dump


async def test_an_unreachable_endpoint_is_a_clear_error(
    s3: str,
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    refused_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT", refused_url)
    index = teammate(tmp_path, "dave", embedder, URI)
    with pytest.raises(StoreUnavailableError) as caught:
        await index.sync()
    message = str(caught.value)
    assert URI in message and "could not connect" in message and refused_url in message
    assert len(message) < 600


async def test_the_server_says_why_the_shared_index_is_unreachable(s3: str, tmp_path: Path) -> None:
    """Over LSP: one showMessage, indexStatus in state "error", search a clear error."""
    (tmp_path / "app.py").write_text("def handler(event):\n    return event\n")
    uri = "s3://no-such-bucket/lowentropy"
    options = {**QUIET_TAB, "index": {"enabled": True, "dbUri": uri}}
    async with lsp_client(tmp_path, options) as client:
        for _ in range(600):
            if client.messages:
                break
            await asyncio.sleep(0.1)
        assert [m.type for m in client.messages] == [types.MessageType.Error]
        message = client.messages[0].message
        assert uri in message and "NoSuchBucket" in message, message
        status = await client.protocol.send_request_async("lowentropy/indexStatus", {})
        assert status.state == "error" and "NoSuchBucket" in status.error
        with pytest.raises(JsonRpcException) as err:
            await client.protocol.send_request_async("lowentropy/search", {"query": "handler"})
        assert err.value.code == types.LSPErrorCodes.RequestFailed
        assert "NoSuchBucket" in str(err.value)
        assert len(client.messages) == 1  # said once, not on every request


async def test_a_local_database_path_under_a_file_is_a_clear_error(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    (tmp_path / "plain-file").write_text("not a folder\n")
    uri = str(tmp_path / "plain-file" / "db")
    index = teammate(tmp_path, "erin", embedder, uri)
    with pytest.raises(StoreUnavailableError) as caught:
        await index.sync()
    assert str(caught.value).startswith(f"cannot use the index database {uri}: ")
    assert "Not a directory" in str(caught.value)
    assert "AWS_" not in str(caught.value)  # no object store hint for a local path


async def test_the_same_path_on_two_machines_keeps_two_tables(
    s3: str, tmp_path: Path, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dev containers and CI runners share paths: each machine still has its own rows."""
    index_a = teammate(tmp_path, "shared-path", embedder, URI)
    await index_a.sync()
    rows_a = index_a.store.path_summary()
    monkeypatch.setattr(socket, "gethostname", lambda: "another-machine")
    config = IndexConfig(db_uri=URI, cache_dir=str(tmp_path / "other-machine-state"))
    index_b = Index(index_a.root, embedder, config)  # the same path, another host
    target = index_b.root / "json/tool.py"
    target.write_text(target.read_text() + "\n\ndef only_on_machine_b():\n    return 2\n")
    await index_b.sync()
    assert index_b.store.name != index_a.store.name
    assert index_b.store.path_summary()["json/tool.py"] != rows_a["json/tool.py"]
    assert index_a.store.path_summary() == rows_a  # machine A's rows untouched
    await index_a.aclose()
    await index_b.aclose()
