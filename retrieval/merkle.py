"""A Merkle tree over the indexed files: file hashes, directory hashes from children, a root.

`diff` compares two trees top-down and descends only into directories whose
hashes differ, so an unchanged subtree costs one comparison however large it
is. The tree is saved as JSON beside the index, written atomically, and only
after the rows it describes are in the database.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

__all__ = ["FileLeaf", "MerkleTree", "TreeDiff", "diff", "file_hash"]

_VERSION = 1


def file_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


@attrs.frozen(kw_only=True)
class FileLeaf:
    hash: str
    size: int
    mtime_ns: int
    chunks: int = 0  # rows this file has in the chunk table


@attrs.frozen(kw_only=True)
class TreeDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    visited: int  # nodes compared: a test can check the descent stayed narrow


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


class MerkleTree:
    """Immutable once built; `with_files` returns an updated copy."""

    def __init__(self, files: Mapping[str, FileLeaf], built_ns: int = 0) -> None:
        self.files: dict[str, FileLeaf] = dict(files)
        self.built_ns = built_ns  # when the file stats were taken (racy-file check)
        self.children: dict[str, dict[str, bool]] = {"": {}}  # dir -> {name: is_dir}
        self.dirs: dict[str, str] = {}  # dir -> hash
        self._build()

    def _build(self) -> None:
        registered: set[str] = set()
        for rel in self.files:
            parent = _parent(rel)
            self.children.setdefault(parent, {})[_name(rel)] = False
            d = parent
            while d and d not in registered:
                registered.add(d)
                self.children.setdefault(d, {})
                self.children.setdefault(_parent(d), {})[_name(d)] = True
                d = _parent(d)
        # deepest directories first, so children are hashed before parents
        for d in sorted(self.children, key=lambda p: p.count("/") + (p != ""), reverse=True):
            h = hashlib.blake2b(digest_size=20)
            for name in sorted(self.children[d]):
                rel = f"{d}/{name}" if d else name
                if self.children[d][name]:
                    h.update(f"d {name} {self.dirs[rel]}\n".encode())
                else:
                    h.update(f"f {name} {self.files[rel].hash}\n".encode())
            self.dirs[d] = h.hexdigest()

    @property
    def root_hash(self) -> str:
        return self.dirs[""]

    def dir_hash(self, rel_dir: str) -> str | None:
        return self.dirs.get(rel_dir)

    def with_files(
        self, updates: Mapping[str, FileLeaf], removed: Iterable[str] = (), built_ns: int = 0
    ) -> MerkleTree:
        files = dict(self.files)
        for rel in removed:
            files.pop(rel, None)
        files.update(updates)
        return MerkleTree(files, built_ns or self.built_ns)

    # -- persistence --------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "version": _VERSION,
            "root": self.root_hash,
            "built_ns": self.built_ns,
            "files": {
                rel: [leaf.hash, leaf.size, leaf.mtime_ns, leaf.chunks]
                for rel, leaf in sorted(self.files.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> MerkleTree:
        if data.get("version") != _VERSION:
            return cls({})
        raw = data.get("files")
        files: dict[str, FileLeaf] = {}
        if isinstance(raw, dict):
            for rel, (h, size, mtime_ns, chunks) in raw.items():
                files[rel] = FileLeaf(hash=h, size=size, mtime_ns=mtime_ns, chunks=chunks)
        built = data.get("built_ns")
        tree = cls(files, built if isinstance(built, int) else 0)
        if data.get("root") != tree.root_hash:  # hand-edited or truncated: trust nothing
            return cls({})
        return tree

    def save(self, path: Path) -> None:
        """Write atomically: a kill leaves the old file or the new one, never half."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> MerkleTree:
        try:
            with path.open(encoding="utf-8") as f:
                return cls.from_json(json.load(f))
        except (OSError, ValueError, TypeError):
            return cls({})


def diff(old: MerkleTree, new: MerkleTree) -> TreeDiff:
    """Files added, removed and changed from `old` to `new`, descending only where hashes differ."""
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []
    visited = 1
    if old.root_hash == new.root_hash:
        return TreeDiff(added=(), removed=(), changed=(), visited=visited)

    def under(tree: MerkleTree, rel_dir: str) -> list[str]:
        out: list[str] = []
        stack = [rel_dir]
        while stack:
            d = stack.pop()
            for name, is_dir in tree.children.get(d, {}).items():
                rel = f"{d}/{name}" if d else name
                (stack.append if is_dir else out.append)(rel)
        return out

    stack = [""]
    while stack:
        d = stack.pop()
        old_children = old.children.get(d, {})
        new_children = new.children.get(d, {})
        for name in sorted(old_children.keys() | new_children.keys()):
            rel = f"{d}/{name}" if d else name
            visited += 1
            o_dir, n_dir = old_children.get(name), new_children.get(name)
            if o_dir is None:
                added.extend(under(new, rel) if n_dir else [rel])
            elif n_dir is None:
                removed.extend(under(old, rel) if o_dir else [rel])
            elif o_dir and n_dir:
                if old.dirs[rel] != new.dirs[rel]:
                    stack.append(rel)
            elif not o_dir and not n_dir:
                if old.files[rel].hash != new.files[rel].hash:
                    changed.append(rel)
            else:  # a file became a directory or the reverse
                removed.extend(under(old, rel) if o_dir else [rel])
                added.extend(under(new, rel) if n_dir else [rel])
    return TreeDiff(
        added=tuple(sorted(added)),
        removed=tuple(sorted(removed)),
        changed=tuple(sorted(changed)),
        visited=visited,
    )
