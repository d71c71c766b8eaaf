"""Search cases from real history: a commit's message as the query, its parent's tree as the workspace.

Each case is one commit of a public Python repository (none of them used
elsewhere in this project's tests or benches) that changes one to three
existing `.py` source files (tests, docs, examples and build scripts do not
count, and may change too). The query is the commit message (subject and body,
trailers dropped); the workspace is the tree at the commit's parent; the right
answers are the source files the commit changed and the innermost functions and
classes (qualified, `Class.method`) whose lines in the parent the diff touches.

`search_cases.json` beside this file holds only the commit ids and that derived
gold, each case in a split (`dev` or `heldout`, from a hash of the commit id,
so the split never depends on which cases were kept). `materialise` exports a
case's parent tree from a local clone (git archive) into a cache folder.

    python bench/search_cases.py build [--per-repo 20]   # rewrite search_cases.json
    python bench/search_cases.py materialise DEST         # export every case's tree

The clones are found under `--mirrors` as `<owner>+<name>/repo` (bare git
directories); any clone of the same repository works.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

CASES_PATH = Path(__file__).with_name("search_cases.json")
DEFAULT_MIRRORS = Path("/work/.mirror")
REPOS = ("hynek/structlog", "marshmallow-code/marshmallow", "pallets/itsdangerous")
SPLITS = ("dev", "heldout")
MAX_SOURCE_FILES = 3
MAX_CHANGED_LINES = 150  # bigger commits are refactors, not questions about a place
MIN_SUBJECT_WORDS = 4
# Subjects that describe no behaviour: releases, tooling, formatting, typing sweeps.
_SKIP_SUBJECT = re.compile(
    r"typo|bump|release|prepare|pre-commit|version|\blint|format|black|ruff|mypy|pyright"
    r"|flake8|isort|pyupgrade|pylint|type hint|typing|annotation|docstring|changelog"
    r"|copyright|merge|revert|whitespace|spelling|cleanup|clean up|^wip",
    re.IGNORECASE,
)
_TRAILER = re.compile(r"^(co-authored-by|signed-off-by|reviewed-by|cc):", re.IGNORECASE)
_NOT_SOURCE = re.compile(
    r"(^|/)(tests?|testing|docs?|examples?|benchmarks?|scripts?|\.github)/|(^|/)test_[^/]*$"
    r"|_test\.py$|(^|/)(conftest|setup|noxfile|tasks|conf)\.py$"
)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", re.MULTILINE)


@attrs.frozen(kw_only=True)
class GoldSymbol:
    path: str
    name: str  # qualified: Class.method, function, Class
    start_line: int  # 0-based, in the parent; decorators included
    end_line: int  # 0-based, inclusive


@attrs.frozen(kw_only=True)
class Case:
    repo: str
    commit: str
    parent: str
    split: str
    query: str
    files: tuple[str, ...]
    symbols: tuple[GoldSymbol, ...]


def split_of(commit: str) -> str:
    """dev or heldout, from the commit id alone."""
    return SPLITS[hashlib.blake2b(commit.encode(), digest_size=1).digest()[0] % 2]


def git(git_dir: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True
    ).stdout
    return out.decode("utf-8", errors="replace")


def git_dir_for(repo: str, mirrors: Path) -> Path:
    return mirrors / repo.replace("/", "+") / "repo"


def is_source(path: str) -> bool:
    return path.endswith(".py") and not _NOT_SOURCE.search(path)


def query_of(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if not _TRAILER.match(line.strip())]
    return "\n".join(lines).strip()


def _changed_parent_lines(diff: str) -> list[int]:
    """0-based parent lines the diff removes or changes; an insertion counts its neighbours."""
    lines: list[int] = []
    for m in _HUNK.finditer(diff):
        start, count = int(m.group(1)), int(m.group(2) or "1")
        if count == 0:  # pure insertion after parent line `start` (1-based)
            lines.extend([start - 1, start])
        else:
            lines.extend(range(start - 1, start - 1 + count))
    return lines


def _definitions(source: str) -> list[tuple[str, int, int, int]]:
    """(qualified name, start, end, depth) of every def and class, 0-based lines."""
    out: list[tuple[str, int, int, int]] = []

    def visit(node: ast.AST, prefix: str, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)]) - 1
                assert child.end_lineno is not None
                out.append((name, start, child.end_lineno - 1, depth))
                visit(child, name + ".", depth + 1)
            else:
                visit(child, prefix, depth)

    visit(ast.parse(source), "", 0)
    return out


def gold_symbols(path: str, source: str, changed: Sequence[int]) -> list[GoldSymbol]:
    """The innermost definitions holding a changed line (module-level lines name none)."""
    defs = _definitions(source)
    found: dict[str, GoldSymbol] = {}
    for line in changed:
        holding = [d for d in defs if d[1] <= line <= d[2]]
        if holding:
            name, start, end, _ = max(holding, key=lambda d: d[3])
            found.setdefault(name, GoldSymbol(path=path, name=name, start_line=start, end_line=end))
    return list(found.values())


def case_for(repo: str, git_dir: Path, commit: str) -> Case | None:
    header = git(git_dir, "log", "-1", "--format=%P%n%B", commit)
    parents, _, message = header.partition("\n")
    if len(parents.split()) != 1:
        return None
    parent = parents.strip()
    subject = message.strip().splitlines()[0] if message.strip() else ""
    if len(subject.split()) < MIN_SUBJECT_WORDS or _SKIP_SUBJECT.search(subject):
        return None
    status = git(git_dir, "diff-tree", "-r", "--no-commit-id", "--name-status", parent, commit)
    changes = [line.split("\t") for line in status.splitlines() if line]
    sources = [c for c in changes if is_source(c[-1])]
    if not 1 <= len(sources) <= MAX_SOURCE_FILES or any(c[0] != "M" for c in sources):
        return None
    files = tuple(c[-1] for c in sources)
    numstat = git(git_dir, "diff", "--numstat", parent, commit, "--", *files)
    changed_lines = sum(
        int(a) + int(d) for a, d, _ in (r.split("\t") for r in numstat.splitlines())
    )
    if changed_lines > MAX_CHANGED_LINES:
        return None
    symbols: list[GoldSymbol] = []
    for path in files:
        diff = git(git_dir, "diff", "-U0", parent, commit, "--", path)
        try:
            source = git(git_dir, "show", f"{parent}:{path}")
            symbols.extend(gold_symbols(path, source, _changed_parent_lines(diff)))
        except SyntaxError:
            return None
    if not symbols:
        return None
    return Case(
        repo=repo,
        commit=commit,
        parent=parent,
        split=split_of(commit),
        query=query_of(message),
        files=files,
        symbols=tuple(symbols),
    )


def build(mirrors: Path, per_repo: int) -> list[Case]:
    """The newest `per_repo` qualifying commits of each repository."""
    cases: list[Case] = []
    for repo in REPOS:
        git_dir = git_dir_for(repo, mirrors)
        found = 0
        for commit in git(git_dir, "rev-list", "--no-merges", "HEAD").split():
            case = case_for(repo, git_dir, commit)
            if case is not None:
                cases.append(case)
                found += 1
                if found >= per_repo:
                    break
    return cases


def save(cases: Sequence[Case], path: Path = CASES_PATH) -> None:
    data = {"repos": list(REPOS), "cases": [attrs.asdict(c) for c in cases]}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def load(path: Path = CASES_PATH, split: str | None = None) -> list[Case]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    cases = []
    for raw in data["cases"]:
        symbols = tuple(GoldSymbol(**s) for s in raw.pop("symbols"))
        cases.append(Case(**{**raw, "files": tuple(raw["files"]), "symbols": symbols}))
    return [c for c in cases if split is None or c.split == split]


def materialise(case: Case, dest: Path, mirrors: Path = DEFAULT_MIRRORS) -> Path:
    """The parent tree of `case` under `dest/<repo>/<parent>` (exported once)."""
    root = dest / case.repo.replace("/", "+") / case.parent
    done = root.with_name(root.name + ".complete")  # beside the tree: not indexed
    if done.exists():
        return root
    archive = subprocess.run(
        ["git", f"--git-dir={git_dir_for(case.repo, mirrors)}", "archive", case.parent],
        check=True,
        capture_output=True,
    ).stdout
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    done.touch()
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("build", "materialise"))
    parser.add_argument("dest", nargs="?", type=Path)
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS)
    parser.add_argument("--per-repo", type=int, default=20)
    args = parser.parse_args(argv)
    if args.command == "build":
        cases = build(args.mirrors, args.per_repo)
        save(cases)
        for split in SPLITS:
            n = sum(1 for c in cases if c.split == split)
            print(f"{split}: {n} cases")
        return 0
    if args.dest is None:
        parser.error("materialise needs DEST")
    for case in load():
        print(materialise(case, args.dest, args.mirrors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
