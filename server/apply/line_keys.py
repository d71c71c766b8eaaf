"""How placement compares lines: trivial lines, a line's head, a line with one name renamed.

A line's key is its stripped text. Some keys are too common to place anything on their own
(`trivial`); `head` says how a line starts (same assignment target, keyword, call or
definition name), to tell a changed line from a new one; `renamed` finds the one name that
differs between two lines. `locate.py` and the verifiers (`verify.py`, `verify_place.py`)
use them.
"""

from __future__ import annotations

import re

from .syntax import header_name

__all__ = ["NAME_USE", "head", "renamed", "trivial"]

# Lines too common or too short to place anything on their own.
_TRIVIAL = frozenset(
    {
        "else:", "try:", "finally:", "pass", "return", "break", "continue", "else {", "} else {",
        "return;", "break;", "continue;", "end", "do", "then", "fi", "done", "default:",
        '"""', "'''", "):", "],", "),", "},", "});", "})", "];", "};", "*/", "/**", "*",
        "return None", "return True", "return False", "return self", "raise", "yield",
    }
)  # fmt: skip
_HEAD_KEYWORDS = frozenset(
    {
        "return", "raise", "throw", "yield", "if", "elif", "while", "for", "with", "assert",
        "del", "case", "switch", "catch", "except", "else", "await",
    }
)  # fmt: skip
_ASSIGN = re.compile(
    r"^(?:(?:const|let|var|final|auto)\s+)?([\w.\[\]'\"]+)\s*(?::[^=]+)?(?:[-+*/%|&^@]|//|>>|<<|\*\*)?=(?!=)"
)
_CALL = re.compile(r"^(?:await\s+)?([\w.]+)\s*\(")
_IMPORT = re.compile(r"^(?:from\s+(\S+)\s+)?import\s+(\S+)")
_TOKEN = re.compile(r"[A-Za-z_$][\w$]*|\d[\w.]*|\S")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
NAME_USE = re.compile(r"(?<![\w.$])[A-Za-z_$][\w$]*")  # a name, not an attribute (`x.name`)
_KEYWORDS = frozenset(
    {
        "and", "as", "assert", "async", "await", "break", "case", "catch", "class", "const",
        "continue", "def", "default", "del", "do", "elif", "else", "except", "export", "false",
        "False", "finally", "for", "from", "func", "function", "if", "import", "in", "is",
        "lambda", "let", "match", "new", "None", "nonlocal", "not", "null", "or", "pass",
        "raise", "return", "self", "static", "switch", "this", "throw", "true", "True", "try",
        "typeof", "undefined", "var", "void", "while", "with", "yield",
    }
)  # fmt: skip


def trivial(key: str) -> bool:
    """A key too short or too common to place anything on its own."""
    return len(key) < 3 or key in _TRIVIAL or not any(ch.isalnum() for ch in key)


def renamed(new: str, old: str) -> tuple[str, str] | None:
    """(old name, new name) when line `new` is line `old` with one identifier renamed
    (every occurrence, at least two other tokens shared), else None."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    if len(a) != len(b) or len(a) < 3:
        return None
    pair: tuple[str, str] | None = None
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        if not (_IDENT.fullmatch(x) and _IDENT.fullmatch(y)) or x in _KEYWORDS or y in _KEYWORDS:
            return None
        if pair is not None and pair != (x, y):
            return None
        pair = (x, y)
    if pair is None or pair[0] in b:  # nothing renamed, or the old name is still there
        return None
    return pair


def head(line: str) -> tuple[str, ...] | None:
    """How a line starts, to tell a changed line (same head) from a new one."""
    text = line.strip()
    if not text or text.startswith(("#", "//", "/*", "*")):
        return None
    name = header_name(text, None)
    if name is not None:
        return ("def", name)
    imported = _IMPORT.match(text)
    if imported:
        return ("import", imported.group(1) or "", imported.group(2))
    word = re.match(r"[A-Za-z_]+", text)
    if word and word.group(0) in _HEAD_KEYWORDS:
        return (word.group(0),)
    assigned = _ASSIGN.match(text)
    if assigned:
        return ("=", assigned.group(1))
    called = _CALL.match(text)
    if called:
        return ("call", called.group(1))
    if text[0] == "@":
        return ("@", re.split(r"[(\s]", text[1:], maxsplit=1)[0])
    return None
