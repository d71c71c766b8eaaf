"""Language detection by file name and the tree-sitter grammar for each language.

Grammars come from the per-language wheels (tree-sitter-python, ...); they load
on first use and a language whose wheel is missing falls back to line windows.
"""

from __future__ import annotations

import functools
import importlib
import os

import tree_sitter

__all__ = ["EXTENSIONS", "grammar", "language_for", "tree_sitter_languages"]

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby",
    ".php": "php",
    ".cs": "csharp",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
}  # fmt: skip

_NAMES: dict[str, str] = {"Rakefile": "ruby", "Gemfile": "ruby"}

# language -> (module, function returning the grammar pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
    "php": ("tree_sitter_php", "language_php"),
    "csharp": ("tree_sitter_c_sharp", "language"),
}


def language_for(path: str) -> str:
    """The language id for a file name; "text" when unknown."""
    name = path.rsplit("/", 1)[-1]
    if name in _NAMES:
        return _NAMES[name]
    return EXTENSIONS.get(os.path.splitext(name)[1].lower(), "text")


@functools.cache
def grammar(language: str) -> tree_sitter.Language | None:
    """The tree-sitter grammar, or None when the language has none or its wheel is absent."""
    spec = _GRAMMARS.get(language)
    if spec is None:
        return None
    try:
        module = importlib.import_module(spec[0])
    except ImportError:
        return None
    return tree_sitter.Language(getattr(module, spec[1])())


def tree_sitter_languages() -> list[str]:
    """Languages whose grammar is installed."""
    return [lang for lang in _GRAMMARS if grammar(lang) is not None]
