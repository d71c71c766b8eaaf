"""Edits a located problem determines: an import the edit left unused goes; a name
that no longer resolves takes the one spelling that does.

Pure: the text, the place's line and the problem's name in; one `(start, end,
new)` or None out. Only the plain forms (`import x`, `from m import a, x, b`
on one line; a respelling that differs in case alone); anything else is left
to the user.
"""

from __future__ import annotations

import builtins
import re

_IMPORT = re.compile(r"^(\s*)import\s+([\w.]+)(\s+as\s+\w+)?\s*$")
_WORD = re.compile(r"[A-Za-z_]\w*")
_BUILTINS = frozenset(dir(builtins))
_FROM = re.compile(r"^(\s*from\s+[\w.]+\s+import\s+)([\w\s,]+?)\s*$")


def drop_unused_import(text: str, line_start: int, name: str) -> tuple[int, int, str] | None:
    """Remove `name` from the import on the line starting at `line_start`."""
    end = text.find("\n", line_start)
    end = len(text) if end < 0 else end
    line = text[line_start:end]
    m = _IMPORT.match(line)
    if m is not None:
        bound = (m.group(3) or "").split()[-1] if m.group(3) else m.group(2).split(".")[0]
        if bound != name:
            return None
        stop = end + 1 if end < len(text) else end
        return line_start, stop, ""
    m = _FROM.match(line)
    if m is None:
        return None
    names = [n.strip() for n in m.group(2).split(",") if n.strip()]
    bound = [n.split()[-1] for n in names]
    if name not in bound:
        return None
    keep = [n for n, b in zip(names, bound, strict=True) if b != name]
    if not keep:
        stop = end + 1 if end < len(text) else end
        return line_start, stop, ""
    return line_start, end, m.group(1) + ", ".join(keep)


def respell_undefined(text: str, line_start: int, name: str) -> tuple[int, int, str] | None:
    """A name that no longer resolves, respelled as the one name that does and differs from
    it only in case (`Dict` -> `dict` once `Dict` is no longer imported), on that line."""
    spelled = {w for w in _WORD.findall(text) if w.lower() == name.lower()} | {
        b for b in _BUILTINS if b.lower() == name.lower()
    }
    spelled.discard(name)
    if len(spelled) != 1:
        return None
    end = text.find("\n", line_start)
    end = len(text) if end < 0 else end
    line = text[line_start:end]
    new = re.sub(rf"(?<![\w.]){re.escape(name)}(?!\w)", spelled.pop(), line)
    return None if new == line else (line_start, end, new)
