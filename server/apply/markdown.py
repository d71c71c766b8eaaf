"""A chat answer in markdown → the code block(s) meant for one document.

Chat models answer with prose and fenced blocks (```` ```python ````, ```` ```python
path/to/file.py ````, `~~~`), sometimes several: the change, a usage example, a shell
command. `parse_answer` finds the blocks (None when the text is a bare sketch, not an
answer); `blocks_for` keeps those that can be meant for the document: a path (in the
info string, or a file name in the prose line right above the fence) picks the file,
and a block in another language or for another file is dropped. Which of the
remaining blocks fits the document is decided by placing them (`plan.py`).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import attrs

__all__ = ["CodeBlock", "blocks_for", "parse_answer"]

_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_EXTENSIONS = (
    "py|pyi|js|jsx|mjs|cjs|ts|tsx|go|rs|java|kt|c|h|cc|cpp|hpp|cs|rb|php|swift|scala|lua|sh|"
    "sql|html|css|scss|vue|svelte|json|yaml|yml|toml|md|el|vim"
)
_PATH_WORD = re.compile(rf"[\w./\\-]*\w\.(?:{_EXTENSIONS})")
_PATH = re.compile(rf"(?:^|(?<=[\s`'\"*(]))({_PATH_WORD.pattern})(?=$|[\s`'\"*):,])")
# Info-string words, by language (`retrieval.languages` ids) and the ones that are no code.
_ALIASES = {
    "py": "python", "python3": "python", "py3": "python", "js": "javascript", "jsx": "javascript",
    "mjs": "javascript", "ts": "typescript", "rs": "rust", "golang": "go", "c++": "cpp",
    "cs": "csharp", "rb": "ruby", "kt": "kotlin", "sh": "shell", "bash": "shell",
    "zsh": "shell", "console": "shell", "shell-session": "shell", "ps1": "powershell",
    "txt": "text", "plaintext": "text", "output": "text", "patch": "diff",
}  # fmt: skip
_NOT_CODE = frozenset({"shell", "powershell", "text", "diff", "json", "yaml", "toml", "ini"})


@attrs.frozen
class CodeBlock:
    """A fenced block: its code (without fences), the language and path its info string or
    the prose above it names (None when none; `named_by_prose` when the prose did), and its
    first line in the answer (0-based)."""

    code: str
    language: str | None
    path: str | None
    line: int
    named_by_prose: bool = False


def _language(word: str) -> str | None:
    word = word.lower().strip("{}.")
    return _ALIASES.get(word, word) or None


def _path_in(text: str) -> str | None:
    """The last file name a line of prose mentions (`src/app.py`, **app.py**)."""
    found = _PATH.findall(text)
    return found[-1].replace("\\", "/") if found else None


def parse_answer(text: str, original_lines: frozenset[str] = frozenset()) -> list[CodeBlock] | None:
    """The fenced blocks of a markdown answer, or None when `text` is a sketch: no fence at
    the margin, or a first fence that is part of the code (the fence and the line before it
    are lines of the original, as in a docstring that shows an example)."""
    lines = text.split("\n")
    blocks: list[CodeBlock] = []
    k = 0
    while k < len(lines):
        opened = _OPEN.match(lines[k])
        if opened is None:
            k += 1
            continue
        fence = opened.group("fence")
        words = re.split(r"[\s:=\"']+", opened.group("info").strip())
        words = [w for w in words if w]
        language = _language(words[0]) if words else None
        path = next((w for w in words if _PATH_WORD.fullmatch(w)), None)
        if path is not None and path == words[0]:  # ```src/app.py: the language from the path
            language = _language(PurePosixPath(path).suffix[1:])
        above = next((lines[m] for m in range(k - 1, max(-1, k - 3), -1) if lines[m].strip()), "")
        by_prose = path is None and _path_in(above) is not None
        path = path or _path_in(above)
        end = next(
            (
                m
                for m in range(k + 1, len(lines))
                if lines[m].strip().startswith(fence[0] * len(fence))
                and not lines[m].strip().strip(fence[0])
            ),
            len(lines),  # an answer cut off mid-block (streamed): the block runs to the end
        )
        code = "\n".join(lines[k + 1 : end])
        blocks.append(
            CodeBlock(code + "\n" if code else "", language, path, k, named_by_prose=by_prose)
        )
        k = end + 1
    if not blocks:
        return None
    first = blocks[0].line
    before = next((lines[m].strip() for m in range(first - 1, -1, -1) if lines[m].strip()), None)
    if before in original_lines and lines[first].strip() in original_lines:
        return None  # a fence of the file's own, after its own code (a docstring's example)
    return blocks


def _same_file(block_path: str, document: str | None) -> bool | None:
    """Whether a block's path names the document (None: the document's path is unknown)."""
    if document is None:
        return None
    a, b = PurePosixPath(block_path.lstrip("./")), PurePosixPath(document.replace("\\", "/"))
    if len(a.parts) > 1:
        return b.parts[-len(a.parts) :] == a.parts
    return a.name == b.name


def blocks_for(blocks: list[CodeBlock], path: str | None, language: str | None) -> list[CodeBlock]:
    """The blocks that may be meant for the document at `path` (in `language`), in order:
    those whose path names it when any does, else those naming no other file; never a block
    of a shell session, output or another language."""
    wanted = [
        b
        for b in blocks
        if b.code.strip()
        and b.language not in _NOT_CODE
        and (b.language is None or language in (None, "text") or _compatible(b.language, language))
    ]
    named = [b for b in wanted if b.path is not None and _same_file(b.path, path)]
    if named:
        return named
    unnamed = [b for b in wanted if b.path is None or _same_file(b.path, path) is None]
    # A file name in the prose is weaker than one in the info string: such a block is only
    # set aside while another block remains.
    return unnamed or [b for b in wanted if b.named_by_prose]


def _compatible(block: str, document: str | None) -> bool:
    if block == document:
        return True
    family = {"javascript", "typescript", "tsx"}
    return block in family and document in family
