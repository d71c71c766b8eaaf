"""Walk a workspace folder, yielding the files worth indexing.

Skips what git ignores (every `.gitignore` on the way down, `.git/info/exclude`),
what `.lowentropyignore` files and the configured excludes name, version-control
and dependency folders, virtualenvs, build output, secrets by name, known
binary types and files over the size limit. `read_text` then refuses binary
content and secrets found in the text.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import attrs
import pathspec

from lowentropy.retrieval.secrets import contains_secret, is_secret_path

__all__ = ["WalkConfig", "WalkEntry", "Walker", "decode_text", "read_bytes", "read_text"]

IGNORE_FILES = (".gitignore", ".lowentropyignore")

SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", "node_modules", "bower_components", "__pycache__",
        ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".eggs", "build", "dist", "target", ".next", ".nuxt", ".gradle", ".terraform",
        "site-packages", ".direnv", ".cache", "htmlcov", ".idea",
    }
)  # fmt: skip

SKIP_FILES = frozenset(
    {
        "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "Cargo.lock", "poetry.lock",
        "uv.lock", "Pipfile.lock", "composer.lock", "Gemfile.lock", "go.sum", ".DS_Store",
    }
)  # fmt: skip

# Never opened: their content is not text worth searching.
BINARY_SUFFIXES = frozenset(
    {
        ".pyc", ".pyo", ".so", ".o", ".a", ".dll", ".dylib", ".exe", ".class", ".jar",
        ".war", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar",
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tiff", ".psd",
        ".pdf", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".wav",
        ".ogg", ".flac", ".mov", ".avi", ".webm", ".sqlite", ".db", ".bin", ".dat",
        ".pkl", ".npy", ".npz", ".pt", ".safetensors", ".gguf", ".onnx", ".parquet",
        ".lance", ".whl", ".egg", ".iso", ".dmg", ".wasm", ".map",
    }
)  # fmt: skip

_SNIFF_BYTES = 8192


@attrs.frozen(kw_only=True)
class WalkConfig:
    exclude: tuple[str, ...] = ()  # gitignore-style patterns, relative to the root
    max_file_bytes: int = 1_000_000
    respect_gitignore: bool = True


@attrs.frozen(kw_only=True)
class WalkEntry:
    rel: str  # POSIX path relative to the root
    path: Path
    size: int
    mtime_ns: int


def _is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir()


def _skip_file_name(name: str) -> bool:
    if name in SKIP_FILES or name.endswith((".min.js", ".min.css")):
        return True
    return os.path.splitext(name)[1].lower() in BINARY_SUFFIXES


class Walker:
    """Decides what under `root` is indexable; caches the ignore files it reads."""

    def __init__(self, root: Path, config: WalkConfig | None = None) -> None:
        self.root = root.resolve()
        self.config = config or WalkConfig()
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}
        self._exclude = pathspec.GitIgnoreSpec.from_lines(self.config.exclude)

    # -- ignore rules -------------------------------------------------------

    def _dir_spec(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        """Patterns from the ignore files in one directory (None when it has none)."""
        if rel_dir in self._specs:
            return self._specs[rel_dir]
        base = self.root / rel_dir if rel_dir else self.root
        names = list(IGNORE_FILES) if self.config.respect_gitignore else [IGNORE_FILES[1]]
        lines: list[str] = []
        if not rel_dir and self.config.respect_gitignore:
            names.insert(0, ".git/info/exclude")
        for name in names:
            try:
                lines.extend(
                    (base / name).read_text(encoding="utf-8", errors="replace").splitlines()
                )
            except OSError:
                continue
        spec = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        self._specs[rel_dir] = spec
        return spec

    def forget_ignore_files(self) -> None:
        """Drop cached ignore rules (an ignore file changed)."""
        self._specs.clear()

    def _ignored(self, rel: str, is_dir: bool) -> bool:
        """Gitignore semantics: the deepest ignore file with a verdict wins."""
        probe = rel + "/" if is_dir else rel
        if self._exclude.match_file(probe):
            return True
        parts = rel.split("/")
        verdict: bool | None = None
        for depth in range(len(parts)):
            rel_dir = "/".join(parts[:depth])
            spec = self._dir_spec(rel_dir)
            if spec is None:
                continue
            sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
            result = spec.check_file(sub)
            if result.include is not None:
                verdict = result.include
        return bool(verdict)

    def _skip_dir(self, rel: str, path: Path) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if name in SKIP_DIRS or name.endswith(".egg-info"):
            return True
        return _is_virtualenv(path) or self._ignored(rel, is_dir=True)

    def excluded_dir(self, rel: str) -> bool:
        """Whether the walk skips directory `rel` (or one of its parents)."""
        parts = rel.split("/")
        return any(
            self._skip_dir("/".join(parts[:i]), self.root.joinpath(*parts[:i]))
            for i in range(1, len(parts) + 1)
        )

    def _skip_file(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return _skip_file_name(name) or is_secret_path(rel) or self._ignored(rel, is_dir=False)

    # -- walking ------------------------------------------------------------

    def walk(self, under: str = "") -> Iterator[WalkEntry]:
        """Indexable files under `under` (relative; "" = the whole root), in sorted order."""
        start = self.root / under if under else self.root
        stack = [(under, start)]
        while stack:
            rel_dir, path = stack.pop()
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except OSError:
                continue
            subdirs: list[tuple[str, Path]] = []
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    if entry.is_symlink():  # could leave the root or loop
                        continue
                    if entry.is_dir():
                        if not self._skip_dir(rel, Path(entry.path)):
                            subdirs.append((rel, Path(entry.path)))
                        continue
                    if not entry.is_file() or self._skip_file(rel):
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                if st.st_size <= self.config.max_file_bytes:
                    yield WalkEntry(
                        rel=rel, path=Path(entry.path), size=st.st_size, mtime_ns=st.st_mtime_ns
                    )
            stack.extend(reversed(subdirs))

    def excluded(self, rel: str) -> bool:
        """Whether the walk leaves file `rel` out by its path (ignored, skipped, a secret)."""
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        return bool(parent and self.excluded_dir(parent)) or self._skip_file(rel)

    def entry(self, rel: str) -> WalkEntry | None:
        """The entry for one file if the walk would yield it, else None."""
        if self.excluded(rel):
            return None
        path = self.root / rel
        try:
            st = path.lstat()
        except OSError:
            return None
        if os.path.realpath(path) != str(path):  # a symlinked folder on the way: not walked
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.config.max_file_bytes:
            return None
        return WalkEntry(rel=rel, path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)

    def relative(self, path: str | os.PathLike[str]) -> str | None:
        """Where `path` really is, relative to the root in POSIX form; None when outside.

        Symlinks are resolved first: `etc_link/passwd` with `etc_link -> /etc` lies outside,
        as the walk (which never follows a symlink) would also keep it out."""
        p = Path(path)
        if not p.is_absolute():
            p = self.root / p
        try:
            rel = Path(os.path.realpath(p)).relative_to(self.root)
        except ValueError:
            return None
        return rel.as_posix() if str(rel) != "." else ""


def read_bytes(path: Path, max_bytes: int = 1_000_000) -> bytes | None:
    """The file's bytes, or None when unreadable, too big or binary (a NUL byte early on)."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError:
        return None
    if len(data) > max_bytes or b"\0" in data[:_SNIFF_BYTES]:
        return None
    return data


def decode_text(data: bytes) -> str | None:
    """Text worth indexing: UTF-8 and free of secrets; else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if contains_secret(text) else text


def read_text(path: Path, max_bytes: int = 1_000_000) -> str | None:
    """The file's text, or None when it is too big, binary, not UTF-8 or holds a secret."""
    data = read_bytes(path, max_bytes)
    return None if data is None else decode_text(data)
