"""A name moved between imports: the other half of the move, place and edit.

Real commits move names from one import to another (`Callable` from `typing` to
`collections.abc`, `Self` from `typing_extensions` to `typing`) in two hunks:

- edit 1 took a name out of an import and the buffer still uses it: the next edit
  imports it from the module it moves to, into that module's import line (kept in
  its sorted order and its style: one line, or one name a line in parentheses),
  or, when the file has none, as a new `from` line in the import block, in module
  order;
- edit 1 imported a name that another import still binds (a redefinition): the
  next edit takes it out of that other import (the whole statement when it was
  the last name there).

Only top-level `from m import a, b` imports without `as`, only the moves the
standard library makes certain (`collections.abc` <-> `typing`,
`typing_extensions` -> `typing` / `collections.abc`); anything else is left to
the ranker. Pure: texts in, one `(line, (start, end, new))` or None out. Only the
file's import header (up to its first top-level definition) is parsed.
"""

from __future__ import annotations

import ast
import collections.abc
import re
import typing
import warnings

from lowentropy.server.text_edits import changed_span

_ABC = frozenset(collections.abc.__all__)
_TYPING = frozenset(n for n in dir(typing) if not n.startswith("_"))
_DEF = re.compile(r"^(?:(?:async\s+)?def|class)\b|^@", re.MULTILINE)
_ONE_LINE = re.compile(r"^(\s*from\s+[\w.]+\s+import\s+)([\w\s,]+?)\s*$")
_OPEN = re.compile(r"^\s*from\s+[\w.]+\s+import\s+\(\s*$")
_ITEM = re.compile(r"^(\s+)([A-Za-z_]\w*)\s*,?\s*$")
_CLOSE = re.compile(r"^\s*\)\s*$")

Edit = tuple[int, int, str]


def home(name: str, module: str) -> str | None:
    """The module a name taken out of an import of `module` moves to, if certain."""
    if module in ("typing", "typing_extensions") and name in _ABC:
        return "collections.abc"
    if module in ("collections.abc", "typing_extensions") and name in _TYPING:
        return "typing"
    return None


def _header(text: str) -> ast.Module | None:
    """The top-level statements before the first definition, parsed (None: it does not)."""
    m = _DEF.search(text)
    head = text[: m.start()] if m else text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(head)
    except (SyntaxError, ValueError, RecursionError):
        return None


def _froms(tree: ast.Module) -> list[ast.ImportFrom]:
    return [n for n in tree.body if isinstance(n, ast.ImportFrom)]


def _module(node: ast.ImportFrom) -> str:
    return "." * node.level + (node.module or "")


def _pairs(tree: ast.Module) -> set[tuple[str, str]]:
    """(name, module) of each top-level `from module import name` (no `as`)."""
    return {(a.name, _module(n)) for n in _froms(tree) for a in n.names if a.asname is None}


def _key(name: str) -> tuple[int, str]:
    """isort's order by type: CONSTANTS, Classes, functions."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name


def _ordered(names: list[str], added: list[str]) -> list[str]:
    """`added` put among `names`: in sorted order when `names` are sorted, else after them."""
    if names == sorted(names, key=_key):
        return sorted(names + added, key=_key)
    return names + sorted(added, key=_key)


class _Lines:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for ln in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(ln) + 1)

    def replace(self, first: int, last: int, new: list[str]) -> tuple[int, Edit] | None:
        """Lines `first`..`last` (0-based, inclusive) become `new`, as the smallest edit of
        whole lines: (its first line, the edit)."""
        old = self.lines[first : last + 1]
        while old and new and old[0] == new[0]:
            old, new, first = old[1:], new[1:], first + 1
        while old and new and old[-1] == new[-1]:
            old, new = old[:-1], new[:-1]
        if not old and not new:
            return None
        start = self.starts[first]
        if not old:
            return first, (start, start, "".join(n + "\n" for n in new))
        end_line = first + len(old)
        if end_line < len(self.lines):
            return first, (start, self.starts[end_line], "".join(n + "\n" for n in new))
        # The statement ends the file: no newline after its last line.
        return first, (start, len(self.text), "\n".join(new))


def _names_of(lines: list[str]) -> tuple[str, list[str], str] | None:
    """(head, names, item indent) of a statement's lines in one of the two plain forms
    (item indent "" for the one-line form); None for any other form."""
    if len(lines) == 1:
        m = _ONE_LINE.match(lines[0])
        if m is None:
            return None
        return m.group(1), [n.strip() for n in m.group(2).split(",") if n.strip()], ""
    if not (_OPEN.match(lines[0]) and _CLOSE.match(lines[-1])):
        return None
    items = [_ITEM.match(ln) for ln in lines[1:-1]]
    if not items or any(m is None for m in items):
        return None
    found = [m for m in items if m is not None]
    return lines[0], [m.group(2) for m in found], found[0].group(1)


def _rewritten(head: str, names: list[str], indent: str) -> list[str]:
    if not indent:
        return [head + ", ".join(names)]
    return [head, *(indent + n + "," for n in names), ")"]


def _statement(src: _Lines, node: ast.stmt) -> tuple[int, int]:
    return node.lineno - 1, (node.end_lineno or node.lineno) - 1


def _add(
    src: _Lines, tree: ast.Module, near: ast.stmt | None, module: str, names: list[str]
) -> tuple[int, Edit] | None:
    """Import `names` from `module`: into its import line, else a new line."""
    target = next((n for n in _froms(tree) if _module(n) == module), None)
    if target is not None:
        first, last = _statement(src, target)
        form = _names_of(src.lines[first : last + 1])
        if form is None:
            return None
        head, have, indent = form
        new = _ordered(have, [n for n in names if n not in have])
        return src.replace(first, last, _rewritten(head, new, indent))
    if near is None:
        return None
    block = _block(tree, near)
    line = "from " + module + " import " + ", ".join(sorted(names, key=_key))
    after = [n for n in block if isinstance(n, ast.ImportFrom) and _module(n) > module]
    at = after[0].lineno - 1 if after else _statement(src, block[-1])[1] + 1
    if at >= len(src.lines):
        return None
    return at, (src.starts[at], src.starts[at], line + "\n")


def _block(tree: ast.Module, node: ast.stmt) -> list[ast.stmt]:
    """The run of import statements, one right under the other, that holds `node`."""
    body = tree.body
    i = body.index(node)
    lo = hi = i
    imports = (ast.Import, ast.ImportFrom)
    while (
        lo > 0
        and isinstance(body[lo - 1], imports)
        and (body[lo - 1].end_lineno or 0) + 1 == body[lo].lineno
    ):
        lo -= 1
    while (
        hi + 1 < len(body)
        and isinstance(body[hi + 1], imports)
        and (body[hi].end_lineno or 0) + 1 == body[hi + 1].lineno
    ):
        hi += 1
    return body[lo : hi + 1]


def _remove(src: _Lines, node: ast.ImportFrom, names: set[str]) -> tuple[int, Edit] | None:
    """Take `names` out of the import `node`; the whole statement when none is left (and the
    blank line above it when it stood alone between blank lines)."""
    first, last = _statement(src, node)
    form = _names_of(src.lines[first : last + 1])
    if form is None:
        return None
    head, have, indent = form
    keep = [n for n in have if n not in names]
    if keep:
        return src.replace(first, last, _rewritten(head, keep, indent))
    blank = [
        i for i in (first - 1, last + 1) if 0 <= i < len(src.lines) and not src.lines[i].strip()
    ]
    if len(blank) == 2 and first >= 2 and src.lines[first - 2].strip():
        first -= 1
    return src.replace(first, last, [])


def _used(text: str, tree: ast.Module, name: str) -> bool:
    """Whether `name` occurs in `text` outside the import statements."""
    spans = [
        (n.lineno - 1, (n.end_lineno or n.lineno) - 1)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
    ]
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    for i, line in enumerate(text.split("\n")):
        if pattern.search(line) and not any(a <= i <= b for a, b in spans):
            return True
    return False


def _bound(tree: ast.Module) -> set[str]:
    """Every name any import in the header binds (nested ones too)."""
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return out


def moved_import(before: str, after: str) -> tuple[int, Edit] | None:
    """The other half of a name moved between imports: (its line in `after`, the edit)."""
    if before == after:
        return None
    start, _, end_a = changed_span(before, after)
    old, new = _header(before), _header(after)
    if old is None or new is None:
        return None
    edit_first = after.count("\n", 0, start)
    edit_last = after.count("\n", 0, end_a)
    src = _Lines(after)
    was, now = _pairs(old), _pairs(new)
    # Edit 1 imported a name another import still binds: take it out there.
    touched = [
        n
        for n in _froms(new)
        if n.lineno - 1 <= edit_last and edit_first <= (n.end_lineno or n.lineno) - 1
    ]
    fresh = {(a.name, _module(n)) for n in touched for a in n.names if a.asname is None} - was
    for node in _froms(new):
        if node in touched:
            continue
        names = {a.name for a in node.names if a.asname is None}
        twice = {name for name, module in fresh if name in names and module != _module(node)}
        if twice:
            return _remove(src, node, twice)
    # Edit 1 took a name out of an import and the buffer still uses it: import it from
    # where it moves to.
    bound = _bound(new)
    gone = sorted((name, module) for name, module in was - now if name not in bound)
    wanted: dict[str, list[str]] = {}
    for name, module in gone:
        to = home(name, module)
        if to is not None and _used(after, new, name):
            wanted.setdefault(to, []).append(name)
    if not wanted:
        return None
    home_module, moving = max(wanted.items(), key=lambda kv: len(kv[1]))
    sources = {m for n, m in gone if n in moving}
    near: ast.stmt | None = next((n for n in _froms(new) if _module(n) in sources), None)
    if near is None:
        near = next((n for n in new.body if isinstance(n, (ast.Import, ast.ImportFrom))), None)
    return _add(src, new, near, home_module, moving)
