"""Tree-sitter for every feature: the grammar per language, parsing, definitions, names.

The index (`chunker`), Apply (`server/apply/syntax.py`) and next edit
(`server/next_edit/syntax.py`) parse and name definitions through this module, so
they agree on what a definition is and what it is called. Without a grammar (an
unknown language, a missing wheel) `parse` returns None and callers fall back to text.
"""

from __future__ import annotations

import tree_sitter

from lowentropy.retrieval.languages import grammar, language_for

__all__ = [
    "DEFINITIONS",
    "FUNCTION_VALUES",
    "NAME_DEPTH",
    "declared_name",
    "grammar",
    "language_for",
    "node_text",
    "parse",
]

# node type -> chunk kind, per language
_JS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "method_definition": "method",
}
_TS = {
    **_JS,
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "internal_module": "namespace",
    "module": "namespace",
    "function_signature": "function",
}
_C = {
    "function_definition": "function",
    "struct_specifier": "struct",
    "union_specifier": "struct",
    "enum_specifier": "enum",
}
DEFINITIONS: dict[str, dict[str, str]] = {
    "python": {"function_definition": "function", "class_definition": "class"},
    "javascript": _JS,
    "typescript": _TS,
    "tsx": _TS,
    "go": {
        "function_declaration": "function",
        "method_declaration": "method",
        "type_declaration": "type",
    },
    "rust": {
        "function_item": "function",
        "struct_item": "struct",
        "union_item": "struct",
        "enum_item": "enum",
        "trait_item": "trait",
        "impl_item": "impl",
        "mod_item": "module",
        "macro_definition": "macro",
    },
    "java": {
        "class_declaration": "class",
        "interface_declaration": "interface",
        "enum_declaration": "enum",
        "record_declaration": "class",
        "annotation_type_declaration": "interface",
        "method_declaration": "method",
        "constructor_declaration": "constructor",
    },
    "c": _C,
    "cpp": {**_C, "class_specifier": "class", "namespace_definition": "namespace"},
    "ruby": {
        "method": "method",
        "singleton_method": "method",
        "class": "class",
        "module": "module",
    },
    "php": {
        "function_definition": "function",
        "class_declaration": "class",
        "interface_declaration": "interface",
        "trait_declaration": "trait",
        "enum_declaration": "enum",
        "method_declaration": "method",
        "namespace_definition": "namespace",
    },
    "csharp": {
        "class_declaration": "class",
        "struct_declaration": "struct",
        "interface_declaration": "interface",
        "enum_declaration": "enum",
        "record_declaration": "class",
        "method_declaration": "method",
        "constructor_declaration": "constructor",
        "namespace_declaration": "namespace",
        "local_function_statement": "function",
    },
}
# Node types that are a name themselves (the end of a C/C++ declarator chain).
_NAME_TYPES = frozenset(
    {
        "identifier", "field_identifier", "type_identifier", "qualified_identifier",
        "property_identifier", "operator_name", "destructor_name", "constant", "name",
        "scoped_identifier", "namespace_identifier",
    }
)  # fmt: skip
# Values that make `const f = ...` a function definition (JavaScript, TypeScript).
FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)
NAME_DEPTH = 8  # C/C++ names sit down a chain of declarators (pointer, function, array)


def parse(
    source: str | bytes, language: str | None, old_tree: tree_sitter.Tree | None = None
) -> tree_sitter.Tree | None:
    """The tree of `source` (text, or its UTF-8 bytes), or None without a grammar.

    `old_tree`: an earlier tree already `edit`ed to match `source`; tree-sitter then
    reparses only what the edit touched."""
    lang = grammar(language) if language else None
    if lang is None:
        return None
    data = source.encode("utf-8") if isinstance(source, str) else source
    parser = tree_sitter.Parser(lang)
    return parser.parse(data, old_tree) if old_tree is not None else parser.parse(data)


def node_text(node: tree_sitter.Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def declared_name(node: tree_sitter.Node, *, bare: bool = True) -> str:
    """The declared name: the `name` field, else down the `declarator` chain (C/C++).

    With `bare`, a declarator that is itself an identifier (`main` in `int main(void)`)
    is the name, as the index has it; without, only `name` fields count, as Apply has
    always matched definitions (a C function is then nameless there).
    """
    current: tree_sitter.Node | None = node
    for _ in range(NAME_DEPTH):
        if current is None:
            return ""
        name = current.child_by_field_name("name")
        if name is not None:
            return node_text(name)
        if bare and current.type in _NAME_TYPES:
            return node_text(current)
        current = current.child_by_field_name("declarator")
    return ""
