"""The Apply dev set: edits over real code nobody here wrote, with the expected result known.

Python cases come from the standard library's sources (`sysconfig.get_paths()["stdlib"]`):
functions are found with `ast`, picked with a seeded `random.Random`, edited by a fixed set
of operators (rename a local, add a parameter and its use, insert a block, delete a block,
change a condition, two of those in two functions), and each edit is written as sketches in
the styles chat models use (markers of every comment syntax with 1-3 context lines and the
enclosing header as anchor, the whole function without markers, re-indented, signature
only). JavaScript/TypeScript originals are small hand-written files in `data/apply/`
(the machine has no real ones guaranteed), edited by the same kind of operators.
Special cases: CRLF, non-ASCII text, no final newline, tabs, a 10k-line file, a selection,
and sketches that match nowhere (expected None).

    cases() -> list[Case]   deterministic: same Python version, same cases
"""

from __future__ import annotations

import ast
import difflib
import io
import random
import re
import sysconfig
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter

from lowentropy.retrieval.languages import grammar

STDLIB = Path(sysconfig.get_paths()["stdlib"])
DATA = Path(__file__).parent / "data" / "apply"
SEED = 6
FILES = [
    "textwrap.py", "shlex.py", "difflib.py", "argparse.py", "configparser.py", "fractions.py",
    "calendar.py", "pprint.py", "string.py", "statistics.py", "tarfile.py", "ftplib.py",
    "smtplib.py", "gettext.py", "csv.py", "queue.py", "sched.py", "shutil.py", "tempfile.py",
    "heapq.py", "dataclasses.py", "functools.py",
]  # fmt: skip
PY_MARKERS = [
    "# ... existing code ...", "# ...", "# ... rest of the code unchanged ...", "# existing code",
    "...", "# remaining code unchanged", "// ... existing code ...", "/* ... */",
    "<!-- ... existing code ... -->", "-- unchanged --", "# … existing code …",
]  # fmt: skip
JS_MARKERS = ["// ... existing code ...", "/* ... */", "// ...", "// rest of the function unchanged",
              "/* existing code */", "// … unchanged …"]  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # relative, for diffs
    original: str
    sketch: str
    expected: str | None  # None: the sketch must not be placed
    language: str | None
    tags: tuple[str, ...]
    selection: tuple[int, int] | None = None


@dataclass
class Func:
    name: str
    start: int  # first line, decorators included (0-based)
    header: int
    end: int  # exclusive
    params: list[str] = field(default_factory=list)
    statements: list[tuple[int, int]] = field(default_factory=list)  # body statements [a, b)
    conditions: list[int] = field(default_factory=list)  # lines of one-line if/while headers


Edit = list[tuple[int, int, list[str]]]  # replace lines [a, b) with these


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _apply(lines: list[str], edit: Edit) -> list[str]:
    out = list(lines)
    for a, b, new in sorted(edit, key=lambda r: r[0], reverse=True):
        out[a:b] = new
    return out


# -- finding functions -------------------------------------------------------------------
def python_functions(source: str) -> list[Func]:
    tree = ast.parse(source)
    lines = source.split("\n")
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.end_lineno is None:
            continue
        header = node.lineno - 1
        if not lines[header].rstrip().endswith(":") or node.body[0].lineno - 1 == header:
            continue  # one-line headers only: the operators edit the header as one line
        body = list(node.body)
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        statements = [(s.lineno - 1, s.end_lineno or s.lineno) for s in body]
        conditions = [
            n.lineno - 1
            for n in ast.walk(node)
            if isinstance(n, ast.If | ast.While)
            and re.match(r"^\s*(if|elif|while) .*:\s*$", lines[n.lineno - 1])
            and n.test.end_lineno == n.lineno
        ]
        start = min([header] + [d.lineno - 1 for d in node.decorator_list])
        params = [a.arg for a in node.args.args if a.arg not in ("self", "cls")]
        found.append(
            Func(
                node.name,
                start,
                header,
                node.end_lineno,
                params,
                statements,
                sorted(set(conditions)),
            )
        )
    found.sort(key=lambda f: f.start)
    return found


def js_functions(source: str, language: str) -> list[Func]:
    lang = grammar(language)
    assert lang is not None
    tree = tree_sitter.Parser(lang).parse(source.encode())
    lines = source.split("\n")
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        body = node.child_by_field_name("body")
        if node.type not in ("function_declaration", "method_definition", "arrow_function"):
            continue
        if body is None or body.type != "statement_block":
            continue
        name_node = node.child_by_field_name("name")
        if name_node is None and node.parent is not None:
            name_node = node.parent.child_by_field_name("name")
        name = name_node.text.decode() if name_node is not None and name_node.text else "?"
        header = node.start_point.row
        if (
            node.type == "arrow_function"
            and node.parent is not None
            and node.parent.parent is not None
        ):
            header = node.parent.parent.start_point.row
        params_node = node.child_by_field_name("parameters")
        params = (
            []
            if params_node is None
            else [
                c.text.decode().split(":")[0].split("=")[0].strip()
                for c in params_node.named_children
                if c.text
            ]
        )
        statements = [(c.start_point.row, c.end_point.row + 1) for c in body.named_children]
        conditions = [
            c.start_point.row
            for c in _descendants(body)
            if c.type in ("if_statement", "while_statement")
            and re.match(r"^\s*(if|while) \(.*\) \{\s*$", lines[c.start_point.row])
        ]
        found.append(
            Func(name, header, header, body.end_point.row + 1, params, statements, conditions)
        )
    found.sort(key=lambda f: f.start)
    return found


def _descendants(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    out = []
    stack = list(node.named_children)
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.named_children)
    return out


# -- edit operators ----------------------------------------------------------------------
def _python_locals(source: str, func: Func) -> list[str]:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.lineno - 1 == func.header
        ):
            names = {
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and len(n.id) > 1
            }
            return sorted(names - set(func.params))
    return []


def rename_python(source: str, lines: list[str], func: Func, rng: random.Random) -> Edit | None:
    names = _python_locals(source, func)
    if not names:
        return None
    name = rng.choice(names)
    new = name + "_value"
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    spots: dict[int, list[int]] = {}
    for k, tok in enumerate(tokens):
        row = tok.start[0] - 1
        if tok.type != tokenize.NAME or tok.string != name or not func.header < row < func.end:
            continue
        if k > 0 and tokens[k - 1].string == ".":
            continue
        spots.setdefault(row, []).append(tok.start[1])
    edit: Edit = []
    for row, columns in spots.items():
        text = lines[row]
        for column in sorted(columns, reverse=True):
            text = text[:column] + new + text[column + len(name) :]
        edit.append((row, row + 1, [text]))
    return edit or None


def rename_js(source: str, lines: list[str], func: Func, rng: random.Random) -> Edit | None:
    body = "\n".join(lines[func.header + 1 : func.end])
    names = sorted(set(re.findall(r"\b(?:const|let)\s+([A-Za-z_]\w+)", body)))
    if not names:
        return None
    name = rng.choice(names)
    pattern = re.compile(rf"(?<![.\w]){name}\b")
    edit: Edit = []
    for row in range(func.header + 1, func.end):
        text = pattern.sub(name + "Value", lines[row])
        if text != lines[row]:
            edit.append((row, row + 1, [text]))
    return edit or None


def add_parameter(lines: list[str], func: Func, js: bool, use: bool = True) -> Edit | None:
    header = lines[func.header]
    if "**" in header or not func.statements:
        return None
    close = header.rfind(")")
    if close < 0 or "(" not in header[:close]:
        return None
    inside = header[header.index("(", header.find(func.name)) + 1 : close].strip()
    param = "options = {}" if js else "verbose=False"
    new_header = header[:close] + (", " if inside else "") + param + header[close:]
    edit: Edit = [(func.header, func.header + 1, [new_header])]
    if use:
        first = func.statements[0][0]
        if first <= func.header:
            return None
        ind = _indent(lines[first])
        step = (
            "  "
            if js and ind in ("  ", "    ") and ind.startswith("  ") and len(ind) % 4
            else "    "
        )
        if "\t" in ind:
            step = "\t"
        block = (
            [f"{ind}if (options.verbose) {{", f'{ind}{step}console.log("{func.name}");', f"{ind}}}"]
            if js
            else [f"{ind}if verbose:", f'{ind}{step}print("{func.name}: called")']
        )
        edit.append((first, first, block))
    return edit


def insert_block(lines: list[str], func: Func, js: bool, rng: random.Random) -> Edit | None:
    spots = [s for s in func.statements[1:] if s[0] > func.header]
    if not spots:
        return None
    at = rng.choice(spots)[0]
    ind = _indent(lines[at])
    step = "\t" if "\t" in ind else ("  " if js and len(ind) % 4 else "    ")
    param = func.params[0] if func.params else None
    if js:
        block = [f'{ind}console.debug("{func.name}: step");']
        if param and param.isidentifier():
            block = [
                f"{ind}if ({param} === undefined) {{",
                f'{ind}{step}throw new TypeError("{param} is required");',
                f"{ind}}}",
            ]
    else:
        block = [f'{ind}_trace("{func.name}", {at})']
        if param and rng.random() < 0.6:
            block = [
                f"{ind}if {param} is None:",
                f'{ind}{step}raise ValueError("{param} is required")',
            ]
    return [(at, at, block)]


def delete_block(lines: list[str], func: Func, rng: random.Random) -> Edit | None:
    spots = [s for s in func.statements[:-1] if s[0] > func.header and s[1] - s[0] <= 8]
    if len(func.statements) < 3 or not spots:
        return None
    a, b = rng.choice(spots)
    return [(a, b, [])]


def change_condition(lines: list[str], func: Func, js: bool, rng: random.Random) -> Edit | None:
    if not func.conditions:
        return None
    row = rng.choice(func.conditions)
    line = lines[row]
    if js:
        m = re.match(r"^(\s*)(if|while) \((.*)\) \{\s*$", line)
        if m is None:
            return None
        return [(row, row + 1, [f"{m.group(1)}{m.group(2)} (!({m.group(3)})) {{"])]
    m = re.match(r"^(\s*)(if|elif|while) (.*):\s*$", line)
    if m is None:
        return None
    return [(row, row + 1, [f"{m.group(1)}{m.group(2)} not ({m.group(3)}):"])]


# -- sketches ----------------------------------------------------------------------------
def marker_sketch(
    old: list[str], new: list[str], headers: list[int], context: int, marker: Callable[[str], str]
) -> str:
    """Changed stretches with `context` lines around, the enclosing header as anchor, markers
    for everything else (indented like the code they stand for)."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    out: list[str] = []
    last = -1

    def elide(before: int) -> None:
        # indented like the first line it stands for, as chat models write them
        nxt = next((k for k in range(last + 1, len(new)) if new[k].strip()), before)
        out.append(marker(_indent(new[nxt]) if nxt < len(new) else ""))

    for group in matcher.get_grouped_opcodes(context):
        first, end = group[0][3], group[-1][4]
        header = max((h for h in headers if h < first), default=None)
        if header is not None and header > last:
            if header > last + 1:
                elide(header)
            out.append(new[header])
            last = header
        if first > last + 1:
            elide(first)
        out.extend(new[max(first, last + 1) : end])
        last = max(last, end - 1)
    if last < len(new) - 1 and any(line.strip() for line in new[last + 1 :]):
        elide(last + 1)
    while out and not out[-1].strip():
        out.pop()  # the "line" after the file's final newline
    return "\n".join(out) + "\n"


def shift(text: str, by: int) -> str:
    out = []
    for line in text.split("\n"):
        if by < 0:
            cut = min(-by, len(line) - len(line.lstrip(" ")))
            out.append(line[cut:])
        else:
            out.append(" " * by + line if line.strip() else line)
    return "\n".join(out)


def _new_headers(funcs: list[Func], edit: Edit) -> list[int]:
    out = []
    for f in funcs:
        moved = sum(len(new) - (b - a) for a, b, new in edit if b <= f.header and a < f.header)
        out.append(f.header + moved)
    return out


def _new_span(func: Func, edit: Edit) -> tuple[int, int]:
    before = sum(len(n) - (b - a) for a, b, n in edit if b <= func.start and a < func.start)
    inside = sum(len(n) - (b - a) for a, b, n in edit if func.start <= a < func.end)
    return func.start + before, func.end + before + inside


# -- case generation ---------------------------------------------------------------------
@dataclass
class _Gen:
    rng: random.Random
    cases: list[Case] = field(default_factory=list)

    def add(self, name: str, path: str, original: str, sketch: str, expected: str | None,
            language: str | None, tags: tuple[str, ...], selection: tuple[int, int] | None = None) -> None:  # fmt: skip
        self.cases.append(Case(name, path, original, sketch, expected, language, tags, selection))

    def sketches(
        self,
        name: str,
        path: str,
        lines: list[str],
        funcs: list[Func],
        edit: Edit,
        language: str,
        kind: str,
        markers: list[str],
        styles: list[str],
    ) -> None:
        new = _apply(lines, edit)
        original, expected = "\n".join(lines), "\n".join(new)
        headers = _new_headers(funcs, edit)
        for k, style in enumerate(styles):
            tags = (kind, style)
            if style in ("markers", "markers-reindented"):
                mark = self.rng.choice(markers)
                context = self.rng.choice([1, 2, 2, 3])
                sketch = marker_sketch(lines, new, headers, context, lambda ind, m=mark: ind + m)
                tags += (f"marker:{mark}", f"context:{context}")
                if style == "markers-reindented":
                    base = len(_indent(lines[funcs[0].header]))
                    sketch = shift(sketch, -base if base else 4)
            elif style in ("whole", "whole-reindented"):
                a, b = _new_span(funcs[0], edit)
                sketch = "\n".join(new[a:b]) + "\n"
                if style == "whole-reindented":
                    base = len(_indent(lines[funcs[0].header]))
                    sketch = shift(sketch, -base if base else 4)
            elif style == "signature":
                h = headers[0]
                body = next(k for k in range(h + 1, len(new)) if new[k].strip())
                sketch = new[h] + "\n" + _indent(new[body]) + self.rng.choice(markers) + "\n"
            else:
                raise ValueError(style)
            label = f"{name}/{style}" + (f"-{k}" if styles.count(style) > 1 else "")
            self.add(label, path, original, sketch, expected, language, tags)


def function_pool(
    files: list[str], keep: Callable[[Func, list[Func]], bool]
) -> list[tuple[str, str, list[str], Func]]:
    """(file, source, lines, function) for the functions of stdlib `files` that `keep`
    (given the function and all of its file's) accepts."""
    pool: list[tuple[str, str, list[str], Func]] = []
    for file in files:
        path = STDLIB / file
        if not path.exists():
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.split("\n")
        funcs = python_functions(source)
        pool.extend((file, source, lines, func) for func in funcs if keep(func, funcs))
    return pool


def _python_cases(gen: _Gen) -> None:
    pool = function_pool(FILES, lambda f, _: 8 <= f.end - f.start <= 60)
    rng = gen.rng
    rng.shuffle(pool)
    quotas = {
        "rename": 8,
        "add-parameter": 7,
        "insert-block": 8,
        "delete-block": 7,
        "change-condition": 8,
    }
    styles = {
        "rename": ["markers", "whole", "whole-reindented"],
        "add-parameter": ["markers", "whole", "markers-reindented"],
        "insert-block": ["markers", "whole", "markers-reindented"],
        "delete-block": ["markers", "whole"],
        "change-condition": ["markers", "whole-reindented", "markers"],
    }
    used: set[tuple[str, int]] = set()
    for kind, quota in quotas.items():
        made = 0
        for file, source, lines, func in pool:
            if made == quota or (file, func.start) in used:
                continue
            edit = _python_edit(kind, source, lines, func, rng)
            if edit is None:
                continue
            used.add((file, func.start))
            made += 1
            if kind == "add-parameter":
                sig = add_parameter(lines, func, js=False, use=False)
                if sig is not None:
                    gen.sketches(f"py/{file}/{func.name}/signature-only", file, lines, [func], sig,
                                 "python", "add-parameter", PY_MARKERS, ["signature"])  # fmt: skip
            gen.sketches(f"py/{file}/{func.name}/{kind}", file, lines, [func], edit, "python", kind,
                         PY_MARKERS, styles[kind])  # fmt: skip
    # Two functions of one file at once.
    made = 0
    by_file: dict[str, list[tuple[str, list[str], Func]]] = {}
    for file, source, lines, func in pool:
        by_file.setdefault(file, []).append((source, lines, func))
    for file in sorted(by_file):
        entries = sorted(by_file[file], key=lambda e: e[2].start)
        if made == 12 or len(entries) < 2:
            continue
        (source, lines, f1), (_, _, f2) = rng.sample(entries, 2)
        if f1.start > f2.start:
            f1, f2 = f2, f1
        if f1.end > f2.start:  # nested
            continue
        k1, k2 = rng.sample(
            ["rename", "insert-block", "delete-block", "change-condition", "add-parameter"], 2
        )
        e1, e2 = _python_edit(k1, source, lines, f1, rng), _python_edit(k2, source, lines, f2, rng)
        if e1 is None or e2 is None:
            continue
        made += 1
        gen.sketches(f"py/{file}/{f1.name}+{f2.name}/two-functions", file, lines, [f1, f2], e1 + e2,
                     "python", "two-functions", PY_MARKERS, ["markers", "markers"])  # fmt: skip


def _python_edit(
    kind: str, source: str, lines: list[str], func: Func, rng: random.Random
) -> Edit | None:
    if kind == "rename":
        return rename_python(source, lines, func, rng)
    if kind == "add-parameter":
        return add_parameter(lines, func, js=False)
    if kind == "insert-block":
        return insert_block(lines, func, False, rng)
    if kind == "delete-block":
        return delete_block(lines, func, rng)
    return change_condition(lines, func, False, rng)


def _js_cases(gen: _Gen) -> None:
    rng = gen.rng
    for file, language in (
        ("cart.js", "javascript"),
        ("queue.ts", "typescript"),
        ("query.js", "javascript"),
    ):
        source = (DATA / file).read_text(encoding="utf-8")
        lines = source.split("\n")
        funcs = [f for f in js_functions(source, language) if f.end - f.start >= 3]
        for func in funcs:
            edits = [
                ("rename", rename_js(source, lines, func, rng)),
                ("change-condition", change_condition(lines, func, True, rng)),
                ("insert-block", insert_block(lines, func, True, rng)),
                (
                    "add-parameter",
                    add_parameter(lines, func, js=True) if func.name != "constructor" else None,
                ),
            ]
            made = [(kind, e) for kind, e in edits if e is not None]
            if not made:
                continue
            kind, edit = made[rng.randrange(len(made))]
            styles = rng.sample(["markers", "whole", "whole-reindented", "markers"], 2)
            gen.sketches(f"js/{file}/{func.name}/{kind}", file, lines, [func], edit, language, kind,
                         JS_MARKERS, styles)  # fmt: skip


def _special_cases(gen: _Gen) -> None:
    rng = gen.rng
    # CRLF: a stdlib function, the file in CRLF, the sketch in LF.
    source = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    lines = source.split("\n")
    func = next(f for f in python_functions(source) if f.name == "dedent")
    edit = change_condition(lines, func, False, rng) or insert_block(lines, func, False, rng)
    assert edit is not None
    new = _apply(lines, edit)
    sketch = marker_sketch(
        lines, new, _new_headers([func], edit), 2, lambda ind: ind + "# ... existing code ..."
    )
    gen.add(
        "special/crlf",
        "textwrap.py",
        "\r\n".join(lines),
        sketch,
        "\r\n".join(new),
        "python",
        ("crlf",),
    )
    # Non-ASCII: a file with non-ASCII text, an inserted line with astral characters.
    source = (STDLIB / "fractions.py").read_text(encoding="utf-8")
    lines = source.split("\n")
    func = next(f for f in python_functions(source) if f.name == "limit_denominator")
    at = func.statements[1][0]
    ind = _indent(lines[at])
    edit = [(at, at, [f'{ind}_note = "naïve café — ∑ 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"'])]
    new = _apply(lines, edit)
    sketch = marker_sketch(lines, new, _new_headers([func], edit), 2, lambda ind: ind + "# ...")
    gen.add(
        "special/non-ascii",
        "fractions.py",
        source,
        sketch,
        "\n".join(new),
        "python",
        ("non-ascii",),
    )
    # No final newline.
    trimmed = "\n".join(lines).rstrip("\n")
    tl = trimmed.split("\n")
    last = python_functions(trimmed)[-1]
    edit2 = change_condition(tl, last, False, rng) or insert_block(tl, last, False, rng)
    if edit2 is not None:
        new2 = _apply(tl, edit2)
        sketch = marker_sketch(tl, new2, _new_headers([last], edit2), 2, lambda ind: ind + "# ...")
        gen.add(
            "special/no-final-newline",
            "fractions.py",
            trimmed,
            sketch,
            "\n".join(new2),
            "python",
            ("no-final-newline",),
        )
    # Tabs: the JS file indented with tabs, a sketch indented with spaces.
    source = (DATA / "query.js").read_text(encoding="utf-8")
    lines = source.split("\n")
    func = next(f for f in js_functions(source, "javascript") if f.name == "buildQuery")
    edit = change_condition(lines, func, True, rng)
    assert edit is not None
    new = _apply(lines, edit)
    a, b = _new_span(func, edit)
    sketch = "\n".join(new[a:b]).replace("\t", "  ") + "\n"
    gen.add(
        "special/tabs", "query.js", source, sketch, "\n".join(new), "javascript", ("tabs", "whole")
    )
    # A 10k-line file: stdlib modules end to end; edits near the end and in the middle.
    parts = [
        (STDLIB / f).read_text(encoding="utf-8")
        for f in ("_pydecimal.py", "argparse.py", "inspect.py")
    ]
    big = "\n".join(parts)
    lines = big.split("\n")
    assert len(lines) >= 10_000
    funcs = [f for f in python_functions_lenient(big) if 8 <= f.end - f.start <= 40]
    for label, func in (("middle", funcs[len(funcs) // 2]), ("end", funcs[-3])):
        edit = change_condition(lines, func, False, rng) or insert_block(lines, func, False, rng)
        assert edit is not None
        new = _apply(lines, edit)
        sketch = marker_sketch(
            lines, new, _new_headers([func], edit), 2, lambda ind: ind + "# ... existing code ..."
        )
        gen.add(
            f"special/10k-lines/{label}",
            "big.py",
            big,
            sketch,
            "\n".join(new),
            "python",
            ("10k-lines",),
        )
    # A selection: the sketch (no markers) replaces the selected lines.
    source = (STDLIB / "shlex.py").read_text(encoding="utf-8")
    lines = source.split("\n")
    func = next(f for f in python_functions(source) if f.name == "split")
    a, b = func.statements[0][0], func.statements[-1][1]
    body = [ln.strip() for ln in lines[a:b]]
    replacement = [
        "lex = shlex(s, posix=posix)",
        "lex.whitespace_split = True",
        "lex.commenters = '' if not comments else lex.commenters",
        "return list(lex)",
    ]
    new = lines[:a] + [_indent(lines[a]) + r for r in replacement] + lines[b:]
    gen.add(
        "special/selection",
        "shlex.py",
        source,
        "\n".join(replacement) + "\n",
        "\n".join(new),
        "python",
        ("selection",),
        (a, b),
    )
    assert body
    # Sketches that match nowhere.
    nowhere = [
        ("python", "shlex.py", "def frobnicate(widget):\n    return widget.spin(42)\n"),
        (
            "python",
            "shlex.py",
            "# ... existing code ...\nclass Gizmo:\n    def turn(self):\n        # ... existing code ...\n        self.angle += 90\n",
        ),
        ("javascript", "cart.js", "function neverSeen(a) {\n  return a * 42;\n}\n"),
    ]
    for k, (language, file, sketch) in enumerate(nowhere):
        original = (STDLIB / file if language == "python" else DATA / file).read_text(
            encoding="utf-8"
        )
        gen.add(f"special/nowhere/{k}", file, original, sketch, None, language, ("nowhere",))


def python_functions_lenient(source: str) -> list[Func]:
    """Functions of concatenated modules (a `from __future__` mid-file is a SyntaxError)."""
    cleaned = re.sub(r"(?m)^from __future__ import .*$", "pass", source)
    return python_functions(cleaned)


def cases() -> list[Case]:
    gen = _Gen(random.Random(SEED))
    _python_cases(gen)
    _js_cases(gen)
    _special_cases(gen)
    return gen.cases


if __name__ == "__main__":
    import collections

    all_cases = cases()
    print(len(all_cases), "cases")
    print(collections.Counter(t for c in all_cases for t in c.tags if ":" not in t))
