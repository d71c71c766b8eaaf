"""Next-edit cases from real history: two hunks of one commit in one file, one made, the other next.

Each case is a pair of nearby hunks (`git log -p -U0`) of one `.py` file in one
commit of a public repository: the file as it was in the parent, edit 1 (one
hunk) applied as the user's edit, and edit 2 (the other hunk) as the edit that
follows; both orders of each pair. Gold: edit 2's first changed line in the
text after edit 1 (location) and the file with both hunks applied (exact).

A case is `unknowable` when edit 2 shares no identifier with what edit 1
changed (the identifiers edit 1 added or removed, common words dropped): the
commit touched unrelated code there, and a next-edit system should stay quiet.

The repositories are those the search bench also mines (structlog, marshmallow,
itsdangerous: no others with history are on this machine); the commits the
search bench uses are excluded, so the two sets share no commit. The split
(`dev` / `heldout`) comes from a hash of the commit id and the file path.

    python bench/next_edit_cases.py [--per-repo 200]   # print counts and a few cases
"""

from __future__ import annotations

import argparse
import builtins
import hashlib
import json
import keyword
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

MIRRORS = Path("/work/.mirror")
REPOS = ("hynek/structlog", "marshmallow-code/marshmallow", "pallets/itsdangerous")
SEARCH_CASES = Path(__file__).with_name("search_cases.json")
SPLITS = ("dev", "heldout")
MAX_HUNK_LINES = 8  # old or new lines of one hunk: bigger is a block written, not an edit
MAX_FILE_HUNKS = 8  # more hunks in one file: a sweep (formatting, a mass rename)
MIN_GAP = 4  # lines between the two hunks: closer is one edit, not two
MAX_FILE_CHARS = 200_000
_SKIP_SUBJECT = re.compile(
    r"\bformat|black|ruff|isort|pyupgrade|whitespace|\blint|typo|^merge|^revert|pre-commit"
    r"|reformat|flake8|copyright|license",
    re.IGNORECASE,
)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_IDENT = re.compile(r"[A-Za-z_]\w*")
COMMON = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls", "__init__"}


@attrs.frozen(kw_only=True)
class Hunk:
    start: int  # 0-based first parent line it replaces (insertion: the line it goes before)
    old: tuple[str, ...]
    new: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Case:
    repo: str
    commit: str
    path: str
    split: str
    text: str  # the file in the parent
    edit: tuple[int, int, str]  # edit 1: start, end (code points in `text`), new text
    after: str  # `text` with edit 1
    expected: str  # `after` with edit 2
    expected_line: int  # edit 2's first changed line in `after`
    unknowable: bool

    @property
    def name(self) -> str:
        return f"{self.repo.split('/')[1]}@{self.commit[:8]}:{self.path}"


def split_of(commit: str, path: str) -> str:
    digest = hashlib.blake2b(f"{commit}:{path}".encode(), digest_size=1).digest()
    return SPLITS[digest[0] % 2]


def _git(git_dir: Path, *args: str) -> str:
    out = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=True)
    return out.stdout.decode("utf-8", errors="replace")


def _search_commits() -> set[str]:
    if not SEARCH_CASES.exists():
        return set()
    data = json.loads(SEARCH_CASES.read_text(encoding="utf-8"))
    return {c["commit"] for c in data["cases"]}


def _file_diffs(git_dir: Path) -> Iterator[tuple[str, str, str, list[Hunk]]]:
    """(commit, parent, path, hunks) of every modified .py file of every non-merge commit."""
    log = _git(git_dir, "log", "-p", "-U0", "--no-merges", "--no-renames", "--diff-filter=M",
               "--format=@@commit %H %P%n%s", "HEAD", "--", "*.py")  # fmt: skip
    commit = parent = path = ""
    hunks: list[Hunk] = []
    skip = False
    old: list[str] = []
    new: list[str] = []
    start = 0

    def flush_hunk() -> None:
        if old or new or start:
            hunks.append(Hunk(start=start, old=tuple(old), new=tuple(new)))

    lines = iter(log.split("\n"))
    for line in lines:
        if line.startswith("@@commit "):
            if path and hunks and not skip:
                yield commit, parent, path, hunks
            parts = line.split()
            commit, parent = parts[1], (parts[2] if len(parts) > 2 else "")
            subject = next(lines, "")
            skip = bool(_SKIP_SUBJECT.search(subject)) or len(parts) != 3
            path, hunks = "", []
        elif line.startswith("diff --git "):
            if path and hunks and not skip:
                yield commit, parent, path, hunks
            path, hunks = "", []
        elif line.startswith("+++ b/"):
            path = line[6:]
        elif line.startswith("@@ "):
            m = _HUNK.match(line)
            if m is None:
                continue
            a, b = int(m.group(1)), int(m.group(2) or "1")
            start = a - 1 if b > 0 else a  # -U0 insertion: after parent line a
            old, new = [], []
            hunks.append(Hunk(start=start, old=(), new=()))
        elif hunks and path and line[:1] in "-+" and not line.startswith(("---", "+++")):
            h = hunks[-1]
            if line[0] == "-":
                hunks[-1] = attrs.evolve(h, old=(*h.old, line[1:]))
            else:
                hunks[-1] = attrs.evolve(h, new=(*h.new, line[1:]))
    if path and hunks and not skip:
        yield commit, parent, path, hunks


def _apply(lines: list[str], hunk: Hunk) -> list[str]:
    return lines[: hunk.start] + list(hunk.new) + lines[hunk.start + len(hunk.old) :]


def _shifted(hunk: Hunk, by: Hunk) -> Hunk:
    """`hunk` in the text where `by` (another hunk of the same diff) is already applied."""
    if by.start < hunk.start:
        return attrs.evolve(hunk, start=hunk.start + len(by.new) - len(by.old))
    return hunk


def changed_identifiers(old: str, new: str) -> set[str]:
    """Identifiers edit 1 added or removed (as multisets), common words dropped."""
    a, b = _IDENT.findall(old), _IDENT.findall(new)
    out = {w for w in set(a) | set(b) if a.count(w) != b.count(w)}
    return {w for w in out if w not in COMMON and len(w) > 1}


def _char_edit(before: str, after: str) -> tuple[int, int, str]:
    """The one replacement that turns `before` into `after` (common prefix and suffix kept)."""
    p = 0
    n = min(len(before), len(after))
    while p < n and before[p] == after[p]:
        p += 1
    s = 0
    while s < n - p and before[len(before) - 1 - s] == after[len(after) - 1 - s]:
        s += 1
    return p, len(before) - s, after[p : len(after) - s]


def cases_for(repo: str, git_dir: Path, per_repo: int, exclude: set[str]) -> list[Case]:
    out: list[Case] = []
    for commit, parent, path, hunks in _file_diffs(git_dir):
        if len(out) >= per_repo:
            break
        if commit in exclude or not 2 <= len(hunks) <= MAX_FILE_HUNKS:
            continue
        if any(max(len(h.old), len(h.new)) > MAX_HUNK_LINES for h in hunks):
            continue
        pairs = [
            (h1, h2)
            for h1, h2 in zip(hunks, hunks[1:], strict=False)
            if h2.start - (h1.start + len(h1.old)) >= MIN_GAP
        ]
        if not pairs:
            continue
        try:
            text = _git(git_dir, "show", f"{parent}:{path}")
        except subprocess.CalledProcessError:
            continue
        if len(text) > MAX_FILE_CHARS or "\r" in text:
            continue
        lines = text.split("\n")
        for h1, h2 in pairs:
            for first, second in ((h1, h2), (h2, h1)):
                after_lines = _apply(lines, first)
                nxt = _shifted(second, first)
                both = _apply(after_lines, nxt)
                after = "\n".join(after_lines)
                edit = _char_edit(text, after)
                touched = changed_identifiers("\n".join(first.old), "\n".join(first.new))
                words = set(_IDENT.findall("\n".join(second.old + second.new)))
                out.append(
                    Case(
                        repo=repo,
                        commit=commit,
                        path=path,
                        split=split_of(commit, path),
                        text=text,
                        edit=edit,
                        after=after,
                        expected="\n".join(both),
                        expected_line=min(nxt.start, len(after_lines) - 1),
                        unknowable=not (touched & words),
                    )
                )
    return out


def build(per_repo: int = 200, mirrors: Path = MIRRORS) -> list[Case]:
    exclude = _search_commits()
    cases: list[Case] = []
    for repo in REPOS:
        git_dir = mirrors / repo.replace("/", "+") / "repo"
        if git_dir.is_dir():
            cases += cases_for(repo, git_dir, per_repo, exclude)
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-repo", type=int, default=200)
    args = parser.parse_args(argv)
    cases = build(args.per_repo)
    for split in SPLITS:
        part = [c for c in cases if c.split == split]
        print(f"{split}: {len(part)} cases, {sum(c.unknowable for c in part)} unknowable, "
              f"{len({c.commit for c in part})} commits")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
