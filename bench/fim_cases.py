"""Fill-in-the-middle cases cut from real code nobody in this project wrote (seeded, offline).

    python bench/fim_cases.py --split dev --per-kind 5 [--seed 0] [--show 3]

Splits:
- `dev`: the standard library's Python files (no tests, idlelib, lib2to3,
  site-packages or generated code; at most 200 KB; they must parse);
- `heldout`: pure-Python third-party packages installed in this venv (`HELDOUT_PACKAGES`,
  those importable), minus any file whose text also occurs in the dev split.

Kinds (the cursor sits where the middle was cut out):
- `line`: after the indentation of a code line; the middle is the rest of that line;
- `rest`: inside a code line, at the start of a token after at least one other
  token; the middle is the rest of the line;
- `multi`: after the indentation of a statement in a function body; the middle is
  the rest of that line and the next 1–3 lines of whole statements of the same
  block, ending at the end of the last line (without its newline).

Comment lines, blank lines, lines a string spans, string-led lines (docstrings) and
middles with fewer than 4 non-space characters are never cut. Cases spread over
files (one per file and kind, a second only when the files run out) and packages
(the files' seeded order takes turns between top-level packages).
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import importlib.util
import io
import itertools
import random
import sys
import sysconfig
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("dev", "heldout")
KINDS = ("line", "rest", "multi")
HELDOUT_PACKAGES = (
    "rich",
    "httpx",
    "attrs",
    "click",
    "jinja2",
    "pygments",
    "packaging",
    "pathspec",
    "cattrs",
    "lsprotocol",
)
MAX_FILE_BYTES = 200_000
MIN_MIDDLE_CHARS = 4  # non-space characters
MAX_PER_FILE = 2  # cases per file and kind
SKIPPED_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__"}
# Generated code: 120 near-identical codec tables, the build's configuration dump.
GENERATED = ("encodings/", "_sysconfigdata_")
FSTRING_START = getattr(tokenize, "FSTRING_START", -1)  # f-strings are one STRING before 3.12
FSTRING_END = getattr(tokenize, "FSTRING_END", -1)
SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.STRING, FSTRING_START}


@dataclass(frozen=True)
class FimCase:
    split: str
    kind: str
    path: str  # relative to the split's root, e.g. "email/utils.py" or "rich/console.py"
    text: str  # the whole original file
    cursor: int  # code points into `text` (and into `document`)
    middle: str  # what was cut out at the cursor

    @property
    def document(self) -> str:
        """The file as the user sees it: the middle removed, the cursor at its start."""
        return self.text[: self.cursor] + self.text[self.cursor + len(self.middle) :]


@dataclass(frozen=True)
class SourceFile:
    root: Path
    relative: str

    @property
    def path(self) -> Path:
        return self.root / self.relative


# ---- the files of each split ---------------------------------------------------------------


def _python_files(root: Path, top: Path) -> Iterator[SourceFile]:
    for path in sorted(top.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIPPED_DIRS.intersection(relative.parts[:-1]) or relative.as_posix().startswith(
            GENERATED
        ):
            continue
        if path.stat().st_size <= MAX_FILE_BYTES:
            yield SourceFile(root, relative.as_posix())


def _stdlib_files() -> list[SourceFile]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return list(_python_files(root, root))


def _heldout_files() -> list[SourceFile]:
    dev_digests = {_digest(f.path) for f in _stdlib_files()}
    files: list[SourceFile] = []
    for name in HELDOUT_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        package = Path(next(iter(spec.submodule_search_locations)))
        for source in _python_files(package.parent, package):
            if _digest(source.path) not in dev_digests:  # never a dev file in disguise
                files.append(source)
    return files


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_files(split: str) -> list[SourceFile]:
    """The split's candidate files, in a fixed order."""
    if split == "dev":
        return _stdlib_files()
    if split == "heldout":
        return _heldout_files()
    raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")


def read_source(source: SourceFile) -> tuple[str, ast.Module] | None:
    """The file's text and tree, or None when it does not decode or parse."""
    try:
        text = source.path.read_text(encoding="utf-8")
        return text, ast.parse(text)
    except (UnicodeDecodeError, SyntaxError, ValueError):
        return None


# ---- where a file can be cut -----------------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    line: int  # 0-based
    column: int  # code points into the line
    last_line: int  # the middle ends at the end of this line


@dataclass(frozen=True)
class Layout:
    """What tokenize and ast say about one file, enough to find every kind of cut."""

    lines: list[str]
    code_lines: frozenset[int]  # 0-based lines that start with a code token
    boundaries: dict[int, list[int]]  # line -> columns where a later token starts
    blocks: list[list[ast.stmt]]  # statement lists inside function bodies

    def cuts(self, kind: str) -> list[Cut]:
        if kind == "line":
            return [Cut(n, _indent(self.lines[n]), n) for n in sorted(self.code_lines)]
        if kind == "rest":
            return [Cut(n, c, n) for n in sorted(self.boundaries) for c in self.boundaries[n]]
        if kind == "multi":
            return self._multi_cuts()
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")

    def _multi_cuts(self) -> list[Cut]:
        cuts: list[Cut] = []
        for block in self.blocks:
            for i, first in enumerate(block):
                start = first.lineno - 1
                column = _indent(self.lines[start])
                if first.col_offset != column or _is_docstring(first):
                    continue  # not the line's first statement, or a docstring
                # One cut per end: whole statements, 2-4 lines, all of them code.
                for stmt in block[i:]:
                    end = (stmt.end_lineno or stmt.lineno) - 1
                    if end - start > 3 or not self.code_lines.issuperset(range(start, end + 1)):
                        break
                    if end > start:
                        cuts.append(Cut(start, column, end))
        return cuts


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _function_blocks(tree: ast.Module) -> list[list[ast.stmt]]:
    """Each statement list that belongs to a function body (control flow included,
    nested classes not: their functions are visited on their own)."""
    blocks: list[list[ast.stmt]] = []

    def visit(node: ast.AST) -> None:
        for value in ast.iter_fields(node):
            field = value[1]
            if isinstance(field, list) and field and isinstance(field[0], ast.stmt):
                blocks.append(field)
                for stmt in field:
                    if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        visit(stmt)
            elif isinstance(field, list):
                for item in field:
                    if isinstance(item, ast.excepthandler | ast.match_case):
                        visit(item)

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            visit(node)
    return blocks


def layout(text: str, tree: ast.Module) -> Layout | None:
    """The file's cut points, or None when tokenize rejects it."""
    lines = text.split("\n")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    spanned: set[int] = set()  # lines touched by a string spanning lines
    first: dict[int, tokenize.TokenInfo] = {}
    boundaries: dict[int, list[int]] = {}
    fstring: list[int] = []  # rows where the open f-strings start (Python >= 3.12 splits them)
    for tok in tokens:
        (row, col), (end_row, _) = tok.start, tok.end
        inside = bool(fstring)  # this token is part of an f-string
        if tok.type == FSTRING_START:
            fstring.append(row)
        elif tok.type == FSTRING_END:
            row = fstring.pop()
        if end_row > row:
            spanned.update(range(row - 1, end_row))
        if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER) or inside:
            continue
        if row - 1 not in first:
            first[row - 1] = tok
        elif tok.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT):
            boundaries.setdefault(row - 1, []).append(col)
    code_lines = {
        n for n, tok in first.items() if tok.type not in SKIPPED_TOKENS and n not in spanned
    }
    boundaries = {n: cols for n, cols in boundaries.items() if n in code_lines}
    return Layout(
        lines=lines,
        code_lines=frozenset(code_lines),
        boundaries=boundaries,
        blocks=_function_blocks(tree),
    )


def _case(
    split: str, kind: str, source: SourceFile, text: str, lines: list[str], cut: Cut
) -> FimCase | None:
    start = sum(len(line) + 1 for line in lines[: cut.line])
    end = sum(len(line) + 1 for line in lines[: cut.last_line]) + len(lines[cut.last_line])
    middle = text[start + cut.column : end]
    if len("".join(middle.split())) < MIN_MIDDLE_CHARS:
        return None
    return FimCase(split, kind, source.relative, text, start + cut.column, middle)


# ---- picking cases ---------------------------------------------------------------------------


def seeded_order(files: list[SourceFile], rng: random.Random) -> list[SourceFile]:
    """The files shuffled, taking turns between top-level packages (or modules), so that
    no package with many files (pygments' lexers) fills a split's cases."""
    groups: dict[str, list[SourceFile]] = {}
    for source in files:
        groups.setdefault(source.relative.split("/")[0], []).append(source)
    names = sorted(groups)
    rng.shuffle(names)
    for name in names:
        rng.shuffle(groups[name])
    turns = itertools.zip_longest(*(groups[name] for name in names))
    return [source for turn in turns for source in turn if source is not None]


@functools.cache
def _file_layout(source: SourceFile) -> tuple[str, Layout] | None:
    parsed = read_source(source)
    if parsed is None:
        return None
    found = layout(*parsed)
    return None if found is None else (parsed[0], found)


def _cases_of_kind(
    split: str, kind: str, files: list[SourceFile], count: int, seed: int
) -> list[FimCase]:
    """`count` cases of one kind: one per file in a seeded order, then a second pass."""
    rng = random.Random(f"{split}:{kind}:{seed}")
    order = seeded_order(files, rng)
    picked: list[FimCase] = []
    taken: dict[SourceFile, set[Cut]] = {}
    for _ in range(MAX_PER_FILE):
        for source in order:
            if len(picked) == count:
                return picked
            found = _file_layout(source)
            if found is None:
                continue
            text, file_layout = found
            done = taken.setdefault(source, set())
            cuts = [c for c in file_layout.cuts(kind) if c not in done]
            rng.shuffle(cuts)
            for cut in cuts:
                case = _case(split, kind, source, text, file_layout.lines, cut)
                if case is not None:
                    done.add(cut)
                    picked.append(case)
                    break
    return picked


def build_cases(
    split: str, per_kind: int, seed: int = 0, kinds: Sequence[str] = KINDS
) -> list[FimCase]:
    """`per_kind` cases of each kind from the split, the same for the same seed and
    installed files (each kind has its own seeded stream: asking fewer kinds picks the
    same cases of those kinds)."""
    files = split_files(split)
    return [case for kind in kinds for case in _cases_of_kind(split, kind, files, per_kind, seed)]


# ---- CLI -----------------------------------------------------------------------------------


def _show(case: FimCase, context: int = 2) -> str:
    doc = case.document
    line_start = doc.rfind("\n", 0, case.cursor) + 1
    above = doc[:line_start].split("\n")[-context - 1 : -1]
    prefix = doc[line_start : case.cursor]
    return "\n".join(
        [
            f"--- {case.split}/{case.kind} {case.path} @{case.cursor}",
            *above,
            f"{prefix}█",
            "middle:",
            case.middle,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=SPLITS, default="dev")
    parser.add_argument("--per-kind", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=3, help="cases to print per kind (default 3)")
    args = parser.parse_args()
    files = split_files(args.split)
    cases = build_cases(args.split, args.per_kind, args.seed)
    print(
        f"split {args.split}: {len(files)} files; {len(cases)} cases from {len({c.path for c in cases})} files"
    )
    for kind in KINDS:
        of_kind = [c for c in cases if c.kind == kind]
        mean_lines = sum(c.middle.count("\n") + 1 for c in of_kind) / max(1, len(of_kind))
        print(f"  {kind}: {len(of_kind)} cases, {mean_lines:.1f} lines per middle on average")
    for kind in KINDS:
        for case in [c for c in cases if c.kind == kind][: args.show]:
            print(_show(case))
    return 0


if __name__ == "__main__":
    sys.exit(main())
