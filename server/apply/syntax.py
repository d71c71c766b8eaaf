"""Tree-sitter facts Apply needs: the definitions of a file and its ERROR/MISSING nodes.

Parsing, the node types that count as definitions and their names come from
`retrieval.syntax`, the one syntax module, so Apply and the index agree on what a
definition is. Without a grammar (language None, "text", a missing wheel)
definitions fall back to header lines and indentation.
Python is also checked by Python's own compiler (`compile_error`): tree-sitter's grammar
accepts code CPython refuses (a body at its header's depth, `return` outside a function).
"""

from __future__ import annotations

import re
import warnings

import attrs
import tree_sitter

from lowentropy.retrieval.syntax import DEFINITIONS, FUNCTION_VALUES, declared_name, parse

from .text import indent_width

__all__ = [
    "Definition",
    "compile_error",
    "definitions",
    "header_name",
    "parse",
    "syntax_errors",
]

# Wrappers that belong to the definition inside them (decorators, `export`).
_OUTER = frozenset({"decorated_definition", "export_statement"})

# Header lines of a sketch (which need not parse): the defined name.
_HEADER = re.compile(
    r"^\s*(?:export\s+)?(?:default\s+)?(?:pub(?:\([\w:]+\))?\s+)?(?:abstract\s+)?(?:async\s+)?"
    r"(?:def|function\*?|func|fn|class|interface|struct|enum|trait|mod|module|namespace)\s+"
    r"(?:\([^)]*\)\s*)?(?P<name>[A-Za-z_$][\w$]*)"
)
_ASSIGNED = re.compile(
    r"^\s*(?:export\s+)?(?:const|let|var)\s+(?P<name>[A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*"
    r"(?:async\s+)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|[A-Za-z_$][\w$]*\s*=>)"
)
_METHOD = re.compile(
    r"^\s*(?:(?:public|private|protected|static|async|readonly|override|get|set)\s+)*"
    r"(?P<name>[A-Za-z_$][\w$]*)\s*(?:<[^>]*>)?\s*\(.*\)\s*(?::\s*[^{]+)?\{\s*$"
)
_NOT_METHODS = frozenset({"if", "for", "while", "switch", "catch", "with", "return", "function"})


@attrs.frozen
class Definition:
    """A definition's lines (0-based): `start` includes decorators/export, `header` is the line
    with its name, `header_end` the last line of its signature, `end` is exclusive."""

    name: str
    start: int
    header: int
    header_end: int
    end: int


def header_name(line: str, language: str | None) -> str | None:
    """The name a definition header line defines, or None when the line is no header."""
    match = _HEADER.match(line) or _ASSIGNED.match(line)
    if match is None and language in (None, "javascript", "typescript", "tsx", "java", "csharp"):
        match = _METHOD.match(line)
        if match is not None and match.group("name") in _NOT_METHODS:
            return None
    return match.group("name") if match else None


def _name(node: tree_sitter.Node) -> str:
    # Only `name` fields: Apply has always left C's `int main(void)` nameless (see declared_name).
    return declared_name(node, bare=False)


def _definition(node: tree_sitter.Node, outer: tree_sitter.Node) -> Definition:
    body = node.child_by_field_name("body") or node.child_by_field_name("value")
    header = node.start_point.row
    header_end = header
    if body is not None:
        # The signature ends with the last token before the body (comments excluded).
        before = [
            c.end_point.row
            for c in node.children
            if c.start_byte < body.start_byte and "comment" not in c.type
        ]
        header_end = max([header, *before])
        if body.text is not None and body.text[:1] == b"{":
            header_end = max(header_end, body.start_point.row)
    end = outer.end_point.row + (1 if outer.end_point.column > 0 else 0)
    return Definition(
        name=_name(node), start=outer.start_point.row, header=header, header_end=header_end, end=end
    )


def _tree_definitions(tree: tree_sitter.Tree, language: str) -> list[Definition]:
    kinds = DEFINITIONS.get(language, {})
    found: list[Definition] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.named_children))
        parent = node.parent
        outer = parent if parent is not None and parent.type in _OUTER else node
        if node.type in kinds:
            found.append(_definition(node, outer))
        elif node.type == "variable_declarator":
            value = node.child_by_field_name("value")
            if value is not None and value.type in FUNCTION_VALUES:
                declaration = node.parent or node
                grand = declaration.parent
                outer = grand if grand is not None and grand.type in _OUTER else declaration
                found.append(attrs.evolve(_definition(value, outer), name=_name(node)))
    found.sort(key=lambda d: (d.start, -d.end))
    return found


def _indent_definitions(lines: tuple[str, ...] | list[str]) -> list[Definition]:
    found = []
    for i, line in enumerate(lines):
        name = header_name(line, None)
        if name is None:
            continue
        base = indent_width(line, 4)
        end = i + 1
        for k in range(i + 1, len(lines)):
            text = lines[k]
            if not text.strip():
                continue
            width = indent_width(text, 4)
            if width > base:
                end = k + 1
                continue
            if width == base and text.strip()[:1] in ("}", ")", "]"):
                end = k + 1
            break
        found.append(Definition(name=name, start=i, header=i, header_end=i, end=end))
    return found


def definitions(
    text: str, lines: tuple[str, ...] | list[str], language: str | None
) -> list[Definition]:
    """Definitions sorted by start, outer before inner."""
    tree = parse(text, language)
    if tree is None or language is None:
        return _indent_definitions(lines)
    return _tree_definitions(tree, language)


def syntax_errors(tree: tree_sitter.Tree) -> list[tuple[str, int, int]]:
    """(kind, row, column) of every ERROR and MISSING node, in document order."""
    found: list[tuple[str, int, int]] = []
    if not tree.root_node.has_error:
        return found
    cursor_stack = [tree.root_node]
    while cursor_stack:
        node = cursor_stack.pop()
        if node.is_error or node.is_missing:
            kind = "MISSING " + node.type if node.is_missing else "ERROR"
            found.append((kind, node.start_point.row, node.start_point.column))
            if node.is_missing:
                continue
        if node.has_error:
            cursor_stack.extend(reversed(node.children))
    return found


def compile_error(text: str, language: str | None) -> tuple[str, int, int] | None:
    """(message, row, column) of the first error the language's own compiler reports, 0-based;
    None when it compiles or no compiler is at hand (only Python's, in this process)."""
    if language != "python":
        return None
    try:
        with warnings.catch_warnings():  # invalid escapes etc. are the file's, not ours
            warnings.simplefilter("ignore")
            compile(text, "<apply>", "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError included
        return exc.msg, max(0, (exc.lineno or 1) - 1), max(0, (exc.offset or 1) - 1)
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, nesting too deep
        return str(exc) or type(exc).__name__, 0, 0
    return None
