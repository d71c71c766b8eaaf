"""The codebase index and chat over LSP: the real server, the packaged MiniLM and SmolLM2, LanceDB.

One server indexes a copy of the standard library's `json` package (plus a
`.env` with a fake key and a gitignored file); the tests search it, change
files under it and ask it questions. Generation is greedy.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from conftest import QUIET_TAB, lsp_client
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path
from pytest_lsp import LanguageClient

FAKE_KEY = "sk-proj-" + "Zq7xR2mN9vLp4TcW8bYk3HdF6sJa1GeU5oXi0QnVr"
PACKAGE = Path(json.__file__).parent


def _workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for src in sorted(PACKAGE.glob("*.py")):
        shutil.copy(src, root / src.name)
    (root / ".env").write_text(f"OPENAI_API_KEY={FAKE_KEY}\n", encoding="utf-8")
    (root / ".gitignore").write_text("scratch_notes.py\n", encoding="utf-8")
    (root / "scratch_notes.py").write_text(
        "def ignored_helper_function():\n    return 'gitignored'\n", encoding="utf-8"
    )
    return root


def _partial_results(client: LanguageClient) -> dict[Any, list[Any]]:
    """Capture `$/progress` values that are partial results (no `kind`), keep the rest as before."""
    partials: dict[Any, list[Any]] = {}
    features = client.protocol.fm.features
    original: Callable[..., Any] = features[types.PROGRESS]

    def progress(params: types.ProgressParams) -> Any:
        value = params.value
        if isinstance(value, dict) and "kind" not in value:
            partials.setdefault(params.token, []).append(value)
            return None
        return original(params)

    features[types.PROGRESS] = progress
    return partials


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def indexed(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[LanguageClient, Path, dict[Any, list[Any]]]]:
    root = _workspace(tmp_path_factory.mktemp("jsonpkg"))
    options = {**QUIET_TAB, "index": {"enabled": True, "syncDelayMs": 50}}
    async with lsp_client(root, options) as client:
        partials = _partial_results(client)
        await _wait(client, lambda s: s.state != "indexing" and s.pendingEmbeddings == 0)
        yield client, root, partials


def _ns(value: Any) -> Any:
    """Results as attribute objects, whatever mix of dicts and named tuples the client made."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _ns(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return [_ns(v) for v in value]
    return value


async def _request(client: LanguageClient, method: str, params: Any) -> Any:
    return _ns(await client.protocol.send_request_async(method, params))


async def _status(client: LanguageClient) -> Any:
    return await _request(client, "lowentropy/indexStatus", {})


async def _wait(client: LanguageClient, done: Callable[[Any], bool], timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status = await _status(client)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"index did not get there: {status}"
        await asyncio.sleep(0.2)


async def _search(client: LanguageClient, query: str, limit: int = 10) -> list[Any]:
    return list(await _request(client, "lowentropy/search", {"query": query, "limit": limit}))


def _text_at(location: Any) -> str:
    path = to_fs_path(location.uri)
    assert path is not None
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    r = location.range
    assert 0 <= r.start.line <= r.end.line < len(lines), (r, len(lines))
    picked = lines[r.start.line : r.end.line + 1]
    picked[-1] = picked[-1][: r.end.character]
    picked[0] = picked[0][r.start.character :]
    return "\n".join(picked)


async def test_initial_index_reports_progress_and_status(indexed: Any) -> None:
    client, root, _ = indexed
    status = await _status(client)
    python_files = len(list(root.glob("*.py"))) - 1  # scratch_notes.py is gitignored
    assert status.state == "ready"
    assert status.files == python_files + 1  # + .gitignore, a text file
    assert status.chunks > status.files
    assert status.model.endswith("all-MiniLM-L6-v2")
    assert len(status.rootHash) >= 16
    reports = [r for token, r in client.progress_reports.items() if "index" in str(token)]
    assert reports, client.progress_reports
    kinds = [type(v).__name__ for v in reports[0]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert f"{status.files} files" in (reports[0][-1].message or "")


async def test_search_finds_the_function_and_its_real_range(indexed: Any) -> None:
    client, _, _ = indexed
    hits = await _search(client, "parse a JSON document that starts inside a longer string")
    assert hits
    top = [(Path(to_fs_path(h.location.uri) or "").name, h.symbol) for h in hits[:3]]
    assert ("decoder.py", "JSONDecoder.raw_decode") in top, top
    for hit in hits:
        assert _text_at(hit.location).strip() == hit.text.strip()
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_a_configured_cross_encoder_orders_the_search(tmp_path: Path) -> None:
    """`index.rerankModel` makes the server score the head of each search with that model.

    No cross-encoder is packaged: this one is the packaged MiniLM with a seeded,
    untrained scoring head, saved to a folder as a downloaded one would be. Its
    scores mean nothing, but they are a real model's, so the hits the server
    returns must carry exactly the scores this process gets from the same folder.
    """
    import torch
    from sentence_transformers import CrossEncoder

    from lowentropy.models.embeddings import default_model_path

    torch.manual_seed(0)
    folder = tmp_path / "cross-encoder"
    CrossEncoder(default_model_path(), num_labels=1).save(str(folder))
    root = tmp_path / "ws"
    root.mkdir()
    for name in ("decoder.py", "encoder.py", "scanner.py"):
        shutil.copy(PACKAGE / name, root / name)
    index = {"enabled": True, "syncDelayMs": 50, "rerankModel": str(folder), "rerankTop": 3}
    async with lsp_client(root, {**QUIET_TAB, "index": index}) as client:
        await _wait(client, lambda s: s.state != "indexing" and s.pendingEmbeddings == 0)
        hits = await _search(client, "decode a JSON string", 6)
    assert len(hits) >= 4
    model = CrossEncoder(str(folder))
    want = [float(x) for x in model.predict([("decode a JSON string", h.text) for h in hits[:3]])]
    assert [h.score for h in hits[:3]] == pytest.approx(want, abs=1e-4)
    assert want == sorted(want, reverse=True)
    assert all(h.score <= 2 / 61 for h in hits[3:])  # the tail keeps its fused (RRF) scores


async def test_secrets_and_ignored_files_are_not_searchable(indexed: Any) -> None:
    client, _, _ = indexed
    for query in (FAKE_KEY, "OPENAI_API_KEY", "ignored_helper_function gitignored"):
        for hit in await _search(client, query):
            name = Path(to_fs_path(hit.location.uri) or "").name
            assert name not in {".env", "scratch_notes.py"}, (query, name)
            assert FAKE_KEY not in hit.text


async def test_saved_and_deleted_files_resync_only_their_paths(indexed: Any) -> None:
    client, root, _ = indexed
    before = await _status(client)
    added = root / "recipes.py"
    added.write_text(
        "def pancake_batter_ratio(flour_grams):\n"
        '    """How much milk and how many eggs for this much flour."""\n'
        "    return {'milk_ml': flour_grams * 2, 'eggs': flour_grams // 100}\n",
        encoding="utf-8",
    )
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=added.as_uri())
        )
    )
    status = await _wait(client, lambda s: s.files == before.files + 1)
    assert status.rootHash != before.rootHash
    hits = await _search(client, "pancake_batter_ratio")
    assert hits and hits[0].symbol == "pancake_batter_ratio"

    added.unlink()
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=added.as_uri(), type=types.FileChangeType.Deleted)]
        )
    )
    status = await _wait(client, lambda s: s.files == before.files)
    assert status.rootHash == before.rootHash  # same files, same tree
    for hit in await _search(client, "pancake_batter_ratio"):
        assert "recipes.py" not in hit.location.uri


async def test_search_puts_source_before_tests_and_changelogs(indexed: Any) -> None:
    """A changelog entry and a test repeating the question's words rank below the
    source they describe (retrieval/ranking.py); both are still found."""
    client, root, _ = indexed
    before = await _status(client)
    words = "decode a JSON document from a string that has extra data at the end"
    added = {
        root / "CHANGES.md": f"# Changes\n\n- {words.capitalize()}: {words}.\n",
        root / "tests" / "test_extra_data.py": (
            f"def test_{words.replace(' ', '_')}():\n    # {words}\n    assert True\n"
        ),
    }
    for path, text in added.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=path.as_uri())
            )
        )
    await _wait(client, lambda s: s.files == before.files + 2 and s.pendingEmbeddings == 0)
    try:
        hits = await _search(client, words, 60)  # more than the chunks: all found
        uris = [h.location.uri for h in hits]
        assert uris[0].endswith("/decoder.py"), uris
        assert "raw_decode" in hits[0].text
        for path in added:  # found, below the source
            assert path.as_uri() in uris[1:], uris
    finally:
        for path in added:
            path.unlink()
        (root / "tests").rmdir()
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[
                    types.FileEvent(uri=p.as_uri(), type=types.FileChangeType.Deleted)
                    for p in added
                ]
            )
        )
        await _wait(client, lambda s: s.files == before.files)


async def test_chat_streams_and_cites_real_ranges(indexed: Any) -> None:
    client, root, partials = indexed
    decoder = (root / "decoder.py").as_uri()
    result = await _request(
        client,
        "lowentropy/chat",
        {
            "messages": [{"role": "user", "content": "Where is a JSON string decoded?"}],
            "context": {
                "textDocument": {"uri": decoder},
                "position": {"line": 340, "character": 0},
                # refused, each with its reason: a secret and a file outside the workspace
                "uris": [(root / ".env").as_uri(), (root.parent / "elsewhere.py").as_uri()],
            },
            "partialResultToken": "chat-1",
        },
    )
    assert result.content
    assert FAKE_KEY not in result.content
    assert [(i.uri, i.reason) for i in result.ignored] == [
        ((root / ".env").as_uri(), "a credentials file (by its name)"),
        ((root.parent / "elsewhere.py").as_uri(), "outside the workspace"),
    ]
    pieces = partials.get("chat-1", [])
    assert len(pieces) >= 2  # streamed, not sent at the end in one piece
    assert "".join(p["content"] for p in pieces).strip() == result.content
    assert result.citations
    searched = {
        (h.location.uri, h.location.range.start.line)
        for h in await _search(client, "Where is a JSON string decoded?", limit=8)
    }
    for loc in result.citations:
        assert _text_at(loc).strip()  # a real, non-empty range in a real file
        assert (loc.uri, loc.range.start.line) in searched


async def test_chat_and_search_reject_bad_params(indexed: Any) -> None:
    client, _, _ = indexed
    bad = [
        ("lowentropy/search", {"query": "  "}),
        ("lowentropy/search", {"query": "x", "limit": 0}),
        ("lowentropy/search", {"query": "x", "lmit": 3}),
        ("lowentropy/chat", {"messages": []}),
        ("lowentropy/chat", {"messages": [{"role": "robot", "content": "hi"}]}),
        (
            "lowentropy/chat",
            {"messages": [{"role": "user", "content": "hi"}], "partialResultToken": [1]},
        ),
    ]
    for method, params in bad:
        with pytest.raises(JsonRpcException) as err:
            await client.protocol.send_request_async(method, params)
        assert err.value.code == types.ErrorCodes.InvalidParams, (method, params)


async def test_search_with_the_index_off_is_a_clear_error(client: LanguageClient) -> None:
    with pytest.raises(JsonRpcException) as err:
        await _search(client, "anything")
    assert "switched off" in str(err.value)
    status = await _status(client)
    assert status.state == "off"


def test_chat_context_never_reads_secrets_ignored_or_outside_files(tmp_path: Path) -> None:
    from lowentropy.server.app import LowEntropyServer
    from lowentropy.server.chat import _allowed

    root = _workspace(tmp_path / "ws")
    (tmp_path / "outside.py").write_text("print('not in the workspace')\n", encoding="utf-8")
    (root / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\nx\n", encoding="utf-8")
    ls = LowEntropyServer()
    ls.root = root.resolve()
    assert _allowed(ls, str(root / "decoder.py")) == "decoder.py"
    for path in (
        root / ".env",
        root / "server.pem",
        root / "scratch_notes.py",
        tmp_path / "outside.py",
        root / ".." / "outside.py",
        Path("/etc/passwd"),
    ):
        assert _allowed(ls, str(path)) is None, path


async def test_chat_prompt_never_holds_secrets_ignored_or_outside_files(tmp_path: Path) -> None:
    """The real `lowentropy/chat` handler with a recording chat backend: the files of
    `context` it refuses are named in `ignored` with a reason, and none of their text
    (nor the fake key) is in the prompt; an allowed file is."""
    from pygls.workspace import Workspace

    from lowentropy.prompts.renderer import Renderer
    from lowentropy.server.app import LowEntropyServer
    from lowentropy.server.chat import chat

    root = _workspace(tmp_path / "ws").resolve()
    outside = tmp_path / "outside.py"
    outside.write_text("OUTSIDE_MARKER = 'not in the workspace'\n", encoding="utf-8")
    (root / "settings.py").write_text(f'API_TOKEN = "{FAKE_KEY}"\n', encoding="utf-8")
    (root / "tool_notes.md").write_text("# Notes\nALLOWED_MARKER is fine.\n", encoding="utf-8")
    ls = LowEntropyServer()
    ls.root = root
    ls.protocol._workspace = Workspace(root.as_uri())
    # an open buffer with a secret typed into it, never saved
    buffer = root / "decoder.py"
    ls.workspace.put_text_document(
        types.TextDocumentItem(
            uri=buffer.as_uri(),
            language_id="python",
            version=1,
            text=buffer.read_text(encoding="utf-8") + f"\nKEY = '{FAKE_KEY}'\n",
        )
    )
    requests: list[Any] = []

    class Recording:
        async def stream_chat(self, request: Any) -> AsyncIterator[str]:
            requests.append(request)
            for piece in ("It is ", "in tool_notes.md."):
                yield piece

    backend = SimpleNamespace(
        blocking_tokenizer=False,
        renderer=Renderer(lambda s: len(s.split())),
        generator=Recording(),
    )

    async def get(role: str, config: Any) -> Any:
        return backend

    ls.backends.get = get  # type: ignore[method-assign]
    uris = {
        ".env": (root / ".env").as_uri(),
        "outside": outside.as_uri(),
        "dotdot": (root / ".." / "outside.py").as_uri(),
        "ignored": (root / "scratch_notes.py").as_uri(),
        "token": (root / "settings.py").as_uri(),
        "passwd": Path("/etc/passwd").as_uri(),
        "buffer": buffer.as_uri(),
        "allowed": (root / "tool_notes.md").as_uri(),
    }
    result = await chat(
        ls,
        {
            "messages": [{"role": "user", "content": "What is in the notes?"}],
            "context": {"textDocument": {"uri": uris[".env"]}, "uris": list(uris.values())},
        },
    )
    assert result["content"] == "It is in tool_notes.md."
    (request,) = requests
    prompt = "\n".join(m.content for m in request.messages)
    assert "ALLOWED_MARKER" in prompt
    for leaked in (
        FAKE_KEY,
        "OPENAI_API_KEY",
        "OUTSIDE_MARKER",
        "ignored_helper_function",
        "root:",
    ):
        assert leaked not in prompt, leaked
    reasons = {item["uri"]: item["reason"] for item in result["ignored"]}
    assert set(reasons) == set(uris.values()) - {uris["allowed"]}
    assert len(result["ignored"]) == len(uris)  # .env twice: as textDocument and in uris
    assert reasons[uris[".env"]] == "a credentials file (by its name)"
    for key in ("outside", "dotdot", "passwd"):
        assert reasons[uris[key]] == "outside the workspace", key
    assert reasons[uris["ignored"]].startswith("not indexable")
    assert reasons[uris["token"]] == reasons[uris["buffer"]] == "it holds a secret (a key or token)"
    assert result["citations"] == []  # no index, no excerpt with a range


async def test_an_empty_array_is_taken_as_no_params(client: LanguageClient) -> None:
    # Neovim encodes an empty Lua table `{}` as `[]`.
    stats = await client.protocol.send_request_async("lowentropy/stats", [])
    assert "tab" in (stats._asdict() if hasattr(stats, "_asdict") else stats)
