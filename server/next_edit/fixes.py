"""Edits a located problem determines: an import the edit left unused goes.

Pure: the text, the place's line and the problem's name in; one `(start, end,
new)` or None out. Only the plain forms (`import x`, `from m import a, x, b`
on one line); anything else is left to the user.
"""

from __future__ import annotations

import re

_IMPORT = re.compile(r"^(\s*)import\s+([\w.]+)(\s+as\s+\w+)?\s*$")
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
