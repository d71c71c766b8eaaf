"""Merkle tree: directory hashes from children, a narrow top-down diff, safe persistence."""

from __future__ import annotations

import json
from pathlib import Path

from lowentropy.retrieval import FileLeaf, MerkleTree, diff


def leaf(h: str) -> FileLeaf:
    return FileLeaf(hash=h, size=1, mtime_ns=0, chunks=1)


def wide_tree(dirs: int = 20, files: int = 20) -> MerkleTree:
    return MerkleTree(
        {f"pkg{d}/sub/mod{f}.py": leaf(f"{d}-{f}") for d in range(dirs) for f in range(files)}
    )


def test_one_change_moves_only_its_ancestors() -> None:
    old = wide_tree()
    new = old.with_files({"pkg3/sub/mod7.py": leaf("edited")})
    assert new.root_hash != old.root_hash
    assert new.dir_hash("pkg3") != old.dir_hash("pkg3")
    assert new.dir_hash("pkg3/sub") != old.dir_hash("pkg3/sub")
    for d in range(20):
        if d != 3:
            assert new.dir_hash(f"pkg{d}") == old.dir_hash(f"pkg{d}")
            assert new.dir_hash(f"pkg{d}/sub") == old.dir_hash(f"pkg{d}/sub")


def test_diff_descends_only_where_hashes_differ() -> None:
    old = wide_tree()
    new = old.with_files({"pkg3/sub/mod7.py": leaf("edited")})
    d = diff(old, new)
    assert d.changed == ("pkg3/sub/mod7.py",)
    assert d.added == d.removed == ()
    # root + 20 top-level dirs + pkg3/sub + its 20 files: 42 of the 441 nodes
    assert d.visited == 1 + 20 + 1 + 20


def test_diff_of_equal_trees_visits_the_root_only() -> None:
    assert diff(wide_tree(), wide_tree()).visited == 1


def test_diff_added_removed_renamed_and_whole_directories() -> None:
    old = MerkleTree({"a/x.py": leaf("1"), "a/y.py": leaf("2"), "b/c/z.py": leaf("3")})
    new = old.with_files(
        {"a/renamed.py": leaf("2"), "d/e/f.py": leaf("4")}, removed=["a/y.py", "b/c/z.py"]
    )
    d = diff(old, new)
    assert d.added == ("a/renamed.py", "d/e/f.py")
    assert d.removed == ("a/y.py", "b/c/z.py")
    assert d.changed == ()
    assert new.dir_hash("b") is None


def test_file_replaced_by_directory() -> None:
    old = MerkleTree({"thing": leaf("1")})
    new = MerkleTree({"thing/inner.py": leaf("2")})
    d = diff(old, new)
    assert d.removed == ("thing",)
    assert d.added == ("thing/inner.py",)


def test_hash_depends_on_names_and_contents_not_order() -> None:
    files = {"a.py": leaf("1"), "b/c.py": leaf("2")}
    assert MerkleTree(files).root_hash == MerkleTree(dict(reversed(files.items()))).root_hash
    assert (
        MerkleTree(files).root_hash
        != MerkleTree({"a.py": leaf("1"), "b/d.py": leaf("2")}).root_hash
    )
    assert MerkleTree({}).root_hash == MerkleTree({}).root_hash


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    tree = wide_tree(3, 3)
    path = tmp_path / "state" / "merkle.json"
    tree.save(path)
    loaded = MerkleTree.load(path)
    assert loaded.root_hash == tree.root_hash
    assert loaded.files == tree.files
    assert not path.with_name("merkle.json.tmp").exists()


def test_tampered_or_missing_file_loads_empty(tmp_path: Path) -> None:
    path = tmp_path / "merkle.json"
    assert MerkleTree.load(path).files == {}
    wide_tree(2, 2).save(path)
    data = json.loads(path.read_text())
    data["files"]["pkg0/sub/mod0.py"][0] = "forged"
    path.write_text(json.dumps(data))
    assert MerkleTree.load(path).files == {}
    path.write_text('{"version": 1, "files": ')  # truncated
    assert MerkleTree.load(path).files == {}
