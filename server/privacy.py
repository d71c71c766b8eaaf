"""Which open documents stay out of every other file's prompt.

Next edit feeds other files' recent edits into its prompt; a `.env`, a key, a
gitignored file or a file outside the workspace (a symlinked folder included)
must never be among them. The walker's own rules decide, as for the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pygls.uris import to_fs_path

from lowentropy.retrieval import Walker, is_secret_path

if TYPE_CHECKING:
    from .app import LowEntropyServer

__all__ = ["private_reason"]

_walkers: dict[Path, Walker] = {}


def _walker(ls: LowEntropyServer) -> Walker | None:
    service = ls.index.index
    if service is not None:
        return service.walker
    if ls.root is None:
        return None
    if ls.root not in _walkers:  # it caches the ignore files it reads
        _walkers[ls.root] = Walker(ls.root)
    return _walkers[ls.root]


def private_reason(ls: LowEntropyServer, uri: str) -> str | None:
    """Why the document at `uri` stays out of other files' prompts; None when it may go in.
    An untitled buffer (no file) may."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    if path is None:
        return None
    if is_secret_path(path):
        return "a credentials file"
    walker = _walker(ls)
    if walker is None:
        return None
    rel = walker.relative(path)
    if rel is None:
        return "outside the workspace"
    if walker.excluded(rel):
        return "ignored"
    return None
