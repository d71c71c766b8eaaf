"""Where the next edit may go, from what the last edit changed: candidate lines, no model.

Sources of evidence, each a few milliseconds on a 2,000-line file:

- `removed` / `added`: other occurrences of an identifier the edit removed
  (renamed, deleted, re-typed) or added (a new name is used or defined
  elsewhere too);
- `context`: other occurrences of a rarer identifier on the edited line that
  the edit left alone (the function whose call or signature was edited, the
  attribute whose use changed);
- `shape`: lines that looked like the edited line did (identifiers and
  literals aside): the same pattern edited once is often edited again;
- `problem`: a place the edited buffer now has a problem: a name that no
  longer resolves, an import or variable now unused, a parse error (pyflakes
  on the text in memory, never on disk), reported on the edit's names;
- `import`: the imports when the edit uses a name that resolves nowhere, and
  the uses of a name the edit imported (the other half of the pair);
- `propagation` / `determined`: the places deterministic propagation found
  (`propagate.plan`), `determined` where it also knows the edit to make.

One `Candidate` per line, carrying every piece of evidence found for it; the
ranker (`ranker.py`) turns the evidence into a score. Pure: texts in.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import keyword
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from lowentropy.server.text_edits import changed_span

from .syntax import Source, parsed

_IDENT = re.compile(r"[A-Za-z_]\w*")
_STRING = re.compile(r"""("[^"\n]*"|'[^'\n]*')""")
_NUMBER = re.compile(r"\b\d[\d_.]*\b")
COMMON = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}
KINDS = ("removed", "added", "context", "shape", "problem", "import", "propagation", "determined")
MAX_PER_NAME = 60  # occurrences of one identifier kept (the nearest)
MAX_SHAPE_LINES = 4000  # lines compared for shape; further ones are far anyway
MIN_SHAPE_CHARS = 12  # shorter lines ("return x") share shapes by chance


@attrs.frozen(kw_only=True)
class Evidence:
    kind: str  # one of KINDS
    name: str  # the identifier (or message) behind it
    count: int  # occurrences of that identifier in the file (rarer is stronger)


@attrs.define(kw_only=True)
class Candidate:
    """One line where the next edit may go."""

    line: int  # 0-based, in the edited text
    offset: int  # code point in the edited text where to go (first evidence on the line)
    distance: int  # lines from the edit (signed: negative above it)
    same_scope: bool  # inside the top-level definition the edit is in
    text: str  # the line
    evidence: list[Evidence] = attrs.Factory(list)

    def kinds(self) -> set[str]:
        return {e.kind for e in self.evidence}


@attrs.frozen(kw_only=True)
class EditFacts:
    """What the edit changed, on the text after it."""

    start_line: int  # first and last line of the edit in `after`
    end_line: int
    removed: frozenset[str]
    added: frozenset[str]
    context: frozenset[str]
    old_shapes: frozenset[str]  # shapes of the lines the edit replaced


def _lines_of(text: str, start: int, end: int) -> tuple[int, int, int, int]:
    """(first line, last line, start offset of first line, end offset of last line)."""
    a = text.rfind("\n", 0, start) + 1
    b = text.find("\n", end)
    b = len(text) if b < 0 else b
    return text.count("\n", 0, start), text.count("\n", 0, end), a, b


@functools.lru_cache(maxsize=16384)  # pure; a file's lines come back on every request
def shape(line: str) -> str:
    """A line with its identifiers, strings and numbers abstracted: `x.y = f(a, 1)` -> `_._ = _(_, 0)`."""
    s = _STRING.sub('""', line.strip())
    s = _NUMBER.sub("0", s)
    return _IDENT.sub(lambda m: m.group(0) if keyword.iskeyword(m.group(0)) else "_", s)


def _words(text: str, short: bool = False) -> list[str]:
    """Identifiers that can be evidence; one-letter ones only when `short`."""
    return [w for w in _IDENT.findall(text) if w not in COMMON and (short or len(w) > 1)]


def edit_facts(before: str, after: str) -> EditFacts:
    start, end_b, end_a = changed_span(before, after)
    _, _, a0, a1 = _lines_of(before, start, end_b)
    first, last, b0, b1 = _lines_of(after, start, end_a)
    old, new = before[a0:a1], after[b0:b1]
    # A one-letter name the edit removed (a parameter `w` renamed `width`) is evidence;
    # one-letter names on the line that the edit left alone are noise.
    wo, wn = _words(old, short=True), _words(new, short=True)
    removed = {w for w in set(wo) if wo.count(w) > wn.count(w)}
    added = {w for w in set(wn) if wn.count(w) > wo.count(w) and len(w) > 1}
    context = {w for w in set(wn) if len(w) > 1} - removed - added
    shapes = {shape(x) for x in old.split("\n") if len(x.strip()) >= MIN_SHAPE_CHARS}
    return EditFacts(
        start_line=first,
        end_line=last,
        removed=frozenset(removed),
        added=frozenset(added),
        context=frozenset(context),
        old_shapes=frozenset(shapes),
    )


class _Lines:
    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def indent_offset(self, line: int) -> int:
        s = self.starts[line]
        e = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        body = self.text[s:e]
        return s + len(body) - len(body.lstrip())


def _top_level_spans(tree: ast.Module | None) -> list[tuple[int, int]]:
    if tree is None:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            out.append((start, (node.end_lineno or node.lineno) - 1))
    return out


def _problems(
    tree: ast.Module | None, text: str, facts: EditFacts, error: SyntaxError | None
) -> list[tuple[int, str, str]]:
    """(line, kind, name) of the problems the edit's names now have (pyflakes, in memory)."""
    if error is not None:
        line = max(0, (error.lineno or 1) - 1)
        return [(line, "problem", "syntax")]
    if tree is None:
        return []
    # Imported on first use (only next edit needs it), untyped: through importlib.
    checker = importlib.import_module("pyflakes.checker")
    messages = importlib.import_module("pyflakes.messages")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = checker.Checker(tree, filename="<buffer>").messages
    names = facts.removed | facts.added
    out: list[tuple[int, str, str]] = []
    for m in found:
        line = m.lineno - 1
        args = m.message_args
        name = str(args[0]) if args else ""
        name = name.split(".")[-1].split(" as ")[-1]
        mine = name in names or facts.start_line <= line <= facts.end_line
        if not mine:
            continue
        if isinstance(m, messages.UndefinedName):
            out.append((line, "problem", name))
            if facts.start_line <= line <= facts.end_line:  # used here, defined nowhere: imports
                out.extend((i, "import", name) for i in _import_lines(tree))
        elif isinstance(m, (messages.UnusedImport, messages.UnusedVariable)):
            out.append((line, "problem", name))
        elif isinstance(m, (messages.RedefinedWhileUnused, messages.ImportShadowedByLoopVar)):
            out.append((line, "problem", name))
    return out


def _reduced(src: Source, facts: EditFacts) -> str:
    """The text with the bodies of definitions (top-level, and methods of classes) that
    neither hold the edit nor use a name it removed or added blanked (`pass`, then
    empty lines: line numbers keep). `ast` and pyflakes then read a 2,000-line file in a
    fraction of the time, and what they say about those names does not change."""
    if src.tree is None:
        return src.text
    lines = src.text.split("\n")
    names = facts.removed | facts.added
    words: dict[int, set[str]] = {}

    def mentions(first: int, last: int) -> bool:
        for i in range(first, last + 1):
            if i not in words:
                words[i] = set(_IDENT.findall(lines[i]))
            if words[i] & names:
                return True
        return False

    def visit(block: Any) -> None:
        for node in block.children:
            inner = (
                node.child_by_field_name("definition")
                if node.type == "decorated_definition"
                else node
            )
            if inner is None or inner.type not in ("function_definition", "class_definition"):
                continue
            body = inner.child_by_field_name("body")
            first, last = node.start_point[0], node.end_point[0]
            if body is None or body.start_point[0] <= inner.start_point[0]:
                continue  # a one-line definition
            if first <= facts.end_line and facts.start_line <= last:
                if inner.type == "class_definition":
                    visit(body)  # the edit is in one of its methods: blank the others
                continue
            if mentions(first, last):
                continue
            b0 = body.start_point[0]
            indent = lines[b0][: len(lines[b0]) - len(lines[b0].lstrip())]
            lines[b0] = indent + "pass"
            for i in range(b0 + 1, last + 1):
                lines[i] = ""

    visit(src.tree.root_node)
    return "\n".join(lines)


def _first_error_line(src: Source) -> int | None:
    """The line of the first syntax error tree-sitter finds, or None when there is none."""
    if src.tree is None or not src.tree.root_node.has_error:
        return None
    node = src.tree.root_node
    while True:
        bad = next((c for c in node.children if c.is_error or c.is_missing or c.has_error), None)
        if bad is None or bad.is_error or bad.is_missing:
            return int((bad or node).start_point[0])
        node = bad


def _import_lines(tree: ast.Module) -> list[int]:
    lines = [n.lineno - 1 for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return lines[-1:] if lines else [0]


def _imported(tree: ast.Module | None, facts: EditFacts) -> set[str]:
    """Names an import statement on the edited lines binds."""
    if tree is None:
        return set()
    out: set[str] = set()
    for n in tree.body:
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            if facts.start_line <= n.lineno - 1 <= facts.end_line:
                out |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return out


def find(
    before: str,
    after: str,
    *,
    propagated: Iterable[int] = (),
    determined: Iterable[int] = (),
    python: bool = True,
) -> list[Candidate]:
    """Candidate lines of `after` for the next edit, given the edit `before` -> `after`.

    `propagated`: offsets in `after` that propagation found; `determined`: those
    where it knows the edit too. `python`: run the Python-only checks (pyflakes,
    imports)."""
    if before == after:
        return []
    facts = edit_facts(before, after)
    lines = _Lines(after)
    tree: ast.Module | None = None
    error: SyntaxError | None = None
    if python:
        # tree-sitter first (~10 ms on 2,000 lines): CPython's parser takes ~0.3 s to fail
        # on such a file (its second pass that words the error), ast only when it parses.
        src = parsed(after, "python")
        first_error = _first_error_line(src)
        if first_error is not None:
            error = SyntaxError("invalid syntax", ("<buffer>", first_error + 1, 0, ""))
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tree = ast.parse(_reduced(src, facts))
            except SyntaxError as exc:
                error = exc
            except (ValueError, RecursionError):
                pass
    spans = _top_level_spans(tree)
    edit_span = next((s for s in spans if s[0] <= facts.start_line <= s[1]), None)
    found: dict[int, Candidate] = {}

    def add(line: int, offset: int, ev: Evidence) -> None:
        if facts.start_line <= line <= facts.end_line:
            return
        c = found.get(line)
        if c is None:
            same = edit_span is not None and edit_span[0] <= line <= edit_span[1]
            dist = line - facts.start_line if line < facts.start_line else line - facts.end_line
            s = lines.starts[line]
            e = lines.starts[line + 1] - 1 if line + 1 < len(lines.starts) else len(after)
            c = found[line] = Candidate(
                line=line, offset=offset, distance=dist, same_scope=same, text=after[s:e]
            )
        if ev not in c.evidence:
            c.evidence.append(ev)

    words: dict[str, list[int]] = {}
    wanted = facts.removed | facts.added | facts.context
    for m in _IDENT.finditer(after):
        if m.group(0) in wanted:
            words.setdefault(m.group(0), []).append(m.start())
    imported = _imported(tree, facts)
    for kind, names in (
        ("removed", facts.removed),
        ("added", facts.added),
        ("context", facts.context),
    ):
        for name in sorted(names):
            hits = words.get(name, [])
            count = len(hits)
            near = sorted(hits, key=lambda o: abs(lines.line_of(o) - facts.start_line))
            for o in near[:MAX_PER_NAME]:
                ln = lines.line_of(o)
                k = "import" if name in imported else kind
                add(ln, o, Evidence(kind=k, name=name, count=count))
    if facts.old_shapes:
        first = max(0, facts.start_line - MAX_SHAPE_LINES // 2)
        for ln in range(first, min(len(lines.starts), first + MAX_SHAPE_LINES)):
            s = lines.starts[ln]
            e = lines.starts[ln + 1] - 1 if ln + 1 < len(lines.starts) else len(after)
            body = after[s:e]
            if len(body.strip()) >= MIN_SHAPE_CHARS and shape(body) in facts.old_shapes:
                add(ln, lines.indent_offset(ln), Evidence(kind="shape", name="", count=0))
    for ln, kind, name in _problems(tree, after, facts, error):
        if ln < len(lines.starts):
            add(ln, lines.indent_offset(ln), Evidence(kind=kind, name=name, count=1))
    for kind, offsets in (("propagation", propagated), ("determined", determined)):
        for o in offsets:
            if 0 <= o <= len(after):
                add(lines.line_of(o), o, Evidence(kind=kind, name="", count=1))
    return sorted(found.values(), key=lambda c: (abs(c.distance), c.line))


def top_lines(cands: Sequence[Candidate], k: int) -> list[int]:
    return [c.line for c in cands[:k]]
