"""A second Apply dev set: edits written the way chat models write them, expected result known.

`apply_devset.py` renders edits as clean sketches. Chat models do not: they answer in
markdown (prose, one or several fenced blocks, a path after the language), re-indent their
elision markers (to column 0, to the header's depth, deeper than the body), elide the tail
of a function with a marker at the header's depth, abbreviate unchanged lines
(`def f(self, a, ...):`, `\"\"\"...\"\"\"`, `"..."`, a trailing comment dropped) and drift in
whitespace (trailing spaces, blank lines next to markers dropped, blank lines collapsed). Each case
here is a real function of the standard library, edited by one of `apply_devset`'s
operators, rendered in one of those forms; the expected result is the edited file.

Two parts, from disjoint files: `dev` (what the code may be tuned on) and `held_out`
(never looked at while tuning; reported separately).

    chat_cases("dev" | "held_out") -> list[Case]   deterministic for one Python version
    big_cases("dev" | "held_out") -> list[Case]    the same, each file 2,000+ lines long
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import io
import random
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

from apply_devset import (
    STDLIB,
    Case,
    Edit,
    Func,
    _apply,
    _indent,
    _python_edit,
    function_pool,
)

SEED = 14
DEV_FILES = [
    "json/encoder.py", "ast.py", "logging/__init__.py", "http/client.py", "urllib/parse.py",
    "optparse.py", "threading.py", "subprocess.py", "contextlib.py", "selectors.py",
    "locale.py", "mailbox.py", "imaplib.py", "ipaddress.py",
]  # fmt: skip
HELD_OUT_FILES = [
    "email/message.py", "wave.py", "trace.py", "pdb.py", "cmd.py", "codecs.py", "base64.py",
    "bdb.py", "pstats.py", "uuid.py",
]  # fmt: skip
KINDS = ["rename", "add-parameter", "insert-block", "delete-block", "change-condition"]
MARKERS = [
    "# ... existing code ...", "# ...", "# ... rest of the function unchanged ...",
    "# (unchanged)", "# ... keep existing code ...", "# … existing code …", "...",
]  # fmt: skip
FORMS = [
    "depth:0", "depth:header", "depth:deep", "tail:body", "tail:header", "md:fence",
    "md:path", "md:tilde", "md:two-blocks", "md:prose-between", "abbrev:signature",
    "abbrev:docstring", "abbrev:string", "abbrev:comment", "ws:trailing", "ws:blanks",
    "whole",
]  # fmt: skip
PROSE_BEFORE = [
    "Here is the updated function:", "Sure! You can change it like this:",
    "The fix is small. Update the code as follows:",
]  # fmt: skip
PROSE_AFTER = [
    "This keeps the rest of the behaviour unchanged.",
    "Let me know if you want tests for this as well.",
]  # fmt: skip

Entry = tuple[str, int | None]  # a sketch line and the line of the new text it is (None: marker)


@dataclass(frozen=True)
class _Edited:
    path: str
    old: list[str]
    new: list[str]
    func: Func
    header: int  # the function's header in the new text
    end: int  # the function's end (exclusive) in the new text
    changed: frozenset[int]  # lines of the new text the edit wrote
    stretch: tuple[int, int]  # first and last+1 changed-or-deleted position in the new text


def _edited(path: str, old: list[str], func: Func, edit: Edit) -> _Edited | None:
    new = _apply(old, edit)
    changed: set[int] = set()
    touched: list[int] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changed.update(range(j1, j2))
            touched.extend([j1, max(j1, j2 - 1)])
    if not touched:
        return None
    shift = sum(len(n) - (b - a) for a, b, n in edit if func.start <= a < func.end)
    return _Edited(
        path=path,
        old=old,
        new=new,
        func=func,
        header=func.header,
        end=func.end + shift,
        changed=frozenset(changed),
        stretch=(min(touched), max(touched) + 1),
    )


def _body_indent(e: _Edited) -> str:
    line = next(e.new[k] for k in range(e.header + 1, e.end) if e.new[k].strip())
    return _indent(line)


def _marker_at(e: _Edited, depth: str, text: str) -> Callable[[str], str]:
    """A marker drawn at the indentation a chat model gave it."""
    header = _indent(e.new[e.header])
    fixed = {"0": "", "header": header, "deep": _body_indent(e) + "    "}.get(depth)
    return lambda ind: (ind if fixed is None else fixed) + text


def _markers(e: _Edited, context: int, marker: Callable[[str], str]) -> list[Entry]:
    """The header, a marker, the changed stretch with `context` lines, a marker."""
    a = max(e.header + 1, e.stretch[0] - context)
    b = min(e.end, e.stretch[1] + context)
    out: list[Entry] = []
    if e.func.start > 0:
        out.append((marker(_indent(e.new[e.header])), None))
    out.extend((e.new[k], k) for k in range(e.func.start, e.header + 1))
    if a > e.header + 1:
        out.append((marker(_indent(e.new[a])), None))
    out.extend((e.new[k], k) for k in range(a, b))
    if any(line.strip() for line in e.new[b:]):
        follows = next((k for k in range(b, len(e.new)) if e.new[k].strip()), b)
        out.append((marker(_indent(e.new[follows])), None))
    return out


def _tail(e: _Edited, context: int, marker_indent: str, text: str, lead: bool) -> list[Entry]:
    """The function from its header through the change, then one marker for all that follows."""
    b = min(e.end, e.stretch[1] + context)
    out: list[Entry] = [(_indent(e.new[e.header]) + text, None)] if lead else []
    out.extend((e.new[k], k) for k in range(e.func.start, b))
    out.append((marker_indent + text, None))
    return out


def _whole(e: _Edited) -> list[Entry]:
    return [(e.new[k], k) for k in range(e.func.start, e.end)]


def _text(entries: list[Entry]) -> str:
    lines = [t for t, _ in entries]
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n"


# -- abbreviations of unchanged lines ------------------------------------------------------
_SIGNATURE = re.compile(r"^(\s*(?:async\s+)?def\s+\w+\()(.*)(\)\s*(?:->.*)?:\s*)$")
_COMMENT = re.compile(r"^(?P<code>\s*\S.*?\S)\s+#\s.*$")


def _long_string(line: str) -> tuple[int, int] | None:
    """Columns [a, b) of the body of the line's first long one-line string literal."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    lead = len(line) - len(line.lstrip())
    for tok in tokens:
        text = tok.string
        if tok.type != tokenize.STRING or text[:1] not in "'\"" or text[:3] in ('"""', "'''"):
            continue
        if len(text) >= 26:
            return lead + tok.start[1] + 1, lead + tok.end[1] - 1
    return None


def _in_docstring(e: _Edited, k: int | None) -> bool:
    span = _docstring_lines(e)
    return k is not None and span is not None and span[0] <= k < span[1]


def _unchanged(e: _Edited, entries: list[Entry]) -> list[int]:
    return [p for p, (_, k) in enumerate(entries) if k is not None and k not in e.changed]


def _abbreviate(e: _Edited, entries: list[Entry], form: str) -> list[Entry] | None:
    """The entries with one kind of unchanged line abbreviated, or None when none has it."""
    out = list(entries)
    done = False
    for p in _unchanged(e, entries):
        text, k = out[p]
        if form == "signature":
            m = _SIGNATURE.match(text)
            params = [s.strip() for s in m.group(2).split(",")] if m else []
            if m and len(params) >= 3 and "(" not in m.group(2) and "[" not in m.group(2):
                out[p] = (m.group(1) + ", ".join(params[:2] + ["..."]) + m.group(3), k)
                done = True
        elif form == "string":
            span = _long_string(text)
            if span is not None and not _in_docstring(e, k):
                out[p] = (text[: span[0]] + "..." + text[span[1] :], k)
                done = True
                break
        elif form == "comment":
            m = _COMMENT.match(text)
            if m and text.count("#") == 1 and "'" not in text and '"' not in text:
                out[p] = (m.group("code"), k)
                done = True
    if form == "docstring":
        return _abbreviate_docstring(e, out)
    return out if done else None


def _docstring_lines(e: _Edited) -> tuple[int, int] | None:
    """The new text's lines [a, b) of the function's docstring."""
    source = "\n".join(e.new[e.header : e.end])
    lead = len(_indent(e.new[e.header]))
    try:
        tree = ast.parse("\n".join(line[lead:] for line in source.split("\n")))
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    first = node.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        return None
    if not isinstance(first.value.value, str) or first.end_lineno is None:
        return None
    return e.header + first.lineno - 1, e.header + first.end_lineno


def _abbreviate_docstring(e: _Edited, entries: list[Entry]) -> list[Entry] | None:
    span = _docstring_lines(e)
    if span is None or any(k in e.changed for k in range(*span)):
        return None
    where = [p for p, (_, k) in enumerate(entries) if k is not None and span[0] <= k < span[1]]
    if len(where) != span[1] - span[0]:
        return None
    first = e.new[span[0]]
    quote = '"""' if '"""' in first else "'''"
    short = (_indent(first) + quote + "..." + quote, span[0])
    return entries[: where[0]] + [short] + entries[where[-1] + 1 :]


# -- whitespace drift -----------------------------------------------------------------------
def _drift(e: _Edited, entries: list[Entry], form: str, rng: random.Random) -> list[Entry] | None:
    if form == "trailing":
        return [(t + rng.choice([" ", "  ", "\t", ""]) if t.strip() else t, k) for t, k in entries]
    # blank lines next to markers dropped, runs of blank lines collapsed to one
    out: list[Entry] = []
    touched = False
    for p, (text, k) in enumerate(entries):
        near = (p > 0 and entries[p - 1][1] is None) or (
            p + 1 < len(entries) and entries[p + 1][1] is None
        )
        doubled = not text.strip() and bool(out) and not out[-1][0].strip()
        # a blank line right beside the change is its context (it shows a deletion): kept
        context = k is not None and e.stretch[0] - 1 <= k <= e.stretch[1]
        if not text.strip() and (near or doubled) and not context:
            touched = True
            continue
        out.append((text, k))
    return out if touched else None


# -- markdown ------------------------------------------------------------------------------
def _markdown(sketch: str, form: str, path: str, rng: random.Random) -> str:
    before, after = rng.choice(PROSE_BEFORE), rng.choice(PROSE_AFTER)
    if form == "fence":
        return f"{before}\n\n```python\n{sketch}```\n\n{after}\n"
    if form == "path":
        return f"{before}\n\n```python {path}\n{sketch}```\n"
    if form == "tilde":
        return f"{before}\n~~~py\n{sketch}~~~\n{after}\n"
    if form == "two-blocks":
        return (
            f"{before}\n\n```python\n{sketch}```\n\nThen run the tests:\n\n"
            "```bash\npython -m pytest -q\n```\n"
        )
    # prose-between: a usage example in its own block after the change
    name = re.sub(r"\W", "_", path.rsplit("/", 1)[-1].removesuffix(".py"))
    return (
        f"{before}\n\n```python\n{sketch}```\n\nYou can call it as before, for example:\n\n"
        f"```python\nimport {name}\nprint({name})\n```\n\n{after}\n"
    )


# -- cases ----------------------------------------------------------------------------------
def _render(e: _Edited, form: str, rng: random.Random) -> str | None:
    family, _, variant = form.partition(":")
    text = rng.choice(MARKERS)
    context = rng.choice([1, 2, 3])
    if family == "depth":
        return _text(_markers(e, context, _marker_at(e, variant, text)))
    if family == "tail":
        if e.end - e.stretch[1] - context < 3:
            return None  # too little left for the marker to stand for
        indent = _body_indent(e) if variant == "body" else _indent(e.new[e.header])
        return _text(_tail(e, context, indent, text, lead=e.func.start > 0))
    if family == "whole":
        return _text(_whole(e))
    base = _markers(e, context, _marker_at(e, "", text))
    if family == "md":
        return _markdown(_text(base), variant, e.path, rng)
    if family == "abbrev":
        shown = _whole(e) if variant in ("signature", "docstring") else base
        if variant == "comment" or variant == "string":
            shown = _whole(e)
        abbreviated = _abbreviate(e, shown, variant)
        return None if abbreviated is None else _text(abbreviated)
    drifted = _drift(e, base, variant, rng)
    return None if drifted is None else _text(drifted)


def _wanted(func: Func, funcs: list[Func]) -> bool:
    nested = any(o.start < func.start and func.end <= o.end for o in funcs)
    return 12 <= func.end - func.start <= 80 and not nested


def chat_cases(part: str = "dev") -> list[Case]:
    files = {"dev": DEV_FILES, "held_out": HELD_OUT_FILES}[part]
    rng = random.Random(f"{SEED}:{part}")
    pool = function_pool(files, _wanted)
    rng.shuffle(pool)
    out: list[Case] = []
    per_form = {"dev": 8, "held_out": 4}[part]
    made = dict.fromkeys(FORMS, 0)
    used: set[str] = set()
    for n, (file, source, lines, func) in enumerate(pool):
        if all(v >= per_form for v in made.values()):
            break
        kind = KINDS[n % len(KINDS)]
        edit = _python_edit(kind, source, lines, func, rng)
        e = None if edit is None else _edited(file, lines, func, edit)
        if e is None:
            continue
        wanted = [f for f in FORMS if made[f] < per_form]
        for form in rng.sample(wanted, min(3, len(wanted))):
            sketch = _render(e, form, rng)
            name = f"chat/{file}/{func.name}/{kind}/{form}"
            if sketch is None or name in used:
                continue
            used.add(name)
            made[form] += 1
            tags = (kind, form, form.split(":")[0])
            out.append(Case(name, file, source, sketch, "\n".join(e.new), "python", tags))
    return out


BIG_LINES = 2000
FILLER = "tarfile.py"  # in neither part; appended whole (it has its own __init__, close, ...)


def big_cases(part: str = "dev") -> list[Case]:
    """`chat_cases(part)` with each file at least BIG_LINES long: real code appended (a
    file's size must not matter to Apply; what is appended also brings names of its own)."""
    filler = (STDLIB / FILLER).read_text(encoding="utf-8")
    out = []
    for case in chat_cases(part):
        if case.original.count("\n") >= BIG_LINES:
            out.append(dataclasses.replace(case, name=case.name + "/big"))
            continue
        tail = "\n\n" + filler
        expected = None if case.expected is None else case.expected + tail
        out.append(
            dataclasses.replace(
                case, name=case.name + "/big", original=case.original + tail, expected=expected
            )
        )
    return out


if __name__ == "__main__":
    import collections

    for part in ("dev", "held_out"):
        found = chat_cases(part)
        print(part, len(found), "cases")
        print(collections.Counter(c.tags[1] for c in found))
