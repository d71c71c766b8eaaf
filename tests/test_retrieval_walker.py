"""The walker: ignore files (nested, negated), skipped folders, binaries, sizes, secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lowentropy.retrieval import WalkConfig, Walker, read_text


def write(root: Path, rel: str, content: str | bytes = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    files = [
        "src/app.py",
        "src/util/helpers.py",
        "src/generated/out.py",  # ignored by src/.gitignore
        "src/generated/keep.py",  # re-included by a negation
        "logs/run.log",  # ignored by the root .gitignore
        "notes/draft.md",  # ignored by .lowentropyignore
        "vendor/lib.js",  # excluded by configuration
        "node_modules/pkg/index.js",
        ".git/HEAD",
        "build/lib/copy.py",
        "dist/pkg.py",
        "target/debug/main.rs",
        "src/__pycache__/app.cpython-311.py",
        "env/lib/python3.11/site.py",  # a virtualenv: has pyvenv.cfg
        "pkg.egg-info/PKG-INFO",
        "package-lock.json",
        "web/app.min.js",
        ".env",
        "deploy/server.pem",
        "README.md",
    ]
    for rel in files:
        write(tmp_path, rel)
    write(tmp_path, "env/pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path, ".gitignore", "*.log\n")
    write(tmp_path, "src/.gitignore", "generated/*\n!generated/keep.py\n")
    write(tmp_path, ".lowentropyignore", "notes/\n")
    write(tmp_path, "image.png", b"\x89PNG\r\n\x1a\n\0\0")
    write(tmp_path, "data.txt", b"abc\0def")  # binary content, text name
    write(tmp_path, "big.py", "x = 1\n" * 200_000)  # 1.2 MB
    return tmp_path


def walked(root: Path, **config: object) -> list[str]:
    return [e.rel for e in Walker(root, WalkConfig(**config)).walk()]  # type: ignore[arg-type]


def test_walk_keeps_only_indexable_files(tree: Path) -> None:
    rels = walked(tree, exclude=("vendor/",))
    assert sorted(rels) == [
        ".gitignore",
        ".lowentropyignore",
        "README.md",
        "data.txt",  # the name passes; read_text refuses the content
        "src/.gitignore",
        "src/app.py",
        "src/generated/keep.py",
        "src/util/helpers.py",
    ]


def test_gitignore_can_be_switched_off(tree: Path) -> None:
    rels = walked(tree, respect_gitignore=False)
    assert "logs/run.log" in rels
    assert "src/generated/out.py" in rels
    assert "vendor/lib.js" in rels
    assert "notes/draft.md" not in rels  # .lowentropyignore still applies


def test_entry_agrees_with_walk(tree: Path) -> None:
    walker = Walker(tree, WalkConfig(exclude=("vendor/",)))
    everything = [str(p.relative_to(tree).as_posix()) for p in tree.rglob("*") if p.is_file()]
    walked_set = {e.rel for e in walker.walk()}
    for rel in everything:
        assert (walker.entry(rel) is not None) == (rel in walked_set), rel


def test_read_text_refuses_binary_and_secrets(tree: Path) -> None:
    assert read_text(tree / "src/app.py") == "x = 1\n"
    assert read_text(tree / "data.txt") is None
    assert read_text(tree / "big.py") is None
    key = "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    assert read_text(write(tree, "src/embedded_key.py", f'KEY = """{key}"""\n')) is None
    assert read_text(write(tree, "latin1.txt", "caf\xe9".encode("latin-1"))) is None


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "secret_project/main.py")
    root = tmp_path / "root"
    write(root, "main.py")
    os.symlink(outside, root / "link")
    assert walked(root) == ["main.py"]


def test_relative(tmp_path: Path) -> None:
    walker = Walker(tmp_path)
    assert walker.relative(tmp_path / "a" / "b.py") == "a/b.py"
    assert walker.relative("a/../c.py") == "c.py"
    assert walker.relative(tmp_path.parent / "elsewhere.py") is None
