"""Values that cross the `retrieval` boundary: chunks, hits, progress and status.

Positions are LSP style: 0-based lines, columns in UTF-16 code units, end
exclusive. Paths inside the index are POSIX paths relative to the workspace
root; hits carry the absolute path too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

__all__ = [
    "Chunk",
    "IndexStatus",
    "ProgressCallback",
    "SearchHit",
    "SearchMode",
    "Span",
    "SyncProgress",
    "SyncResult",
]

SearchMode = Literal["hybrid", "vector", "fulltext"]


@attrs.frozen(kw_only=True)
class Span:
    start_line: int
    start_col: int
    end_line: int
    end_col: int


@attrs.frozen(kw_only=True)
class Chunk:
    """One retrievable unit: a definition, a group of statements, a section or a window."""

    path: str  # relative to the workspace root, POSIX separators
    span: Span
    symbol: str  # qualified name ("Class.method"), a heading, or "" for statements/windows
    kind: str  # function, method, class, struct, ..., statements, section, lines
    language: str
    text: str
    hash: str  # of `text` alone, so equal text shares one embedding anywhere


@attrs.frozen(kw_only=True)
class SearchHit:
    path: str  # absolute
    rel_path: str
    span: Span
    score: float  # higher is better; fused reciprocal-rank score in hybrid mode
    text: str
    symbol: str
    kind: str
    language: str


@attrs.frozen(kw_only=True)
class SyncProgress:
    """Reported from the worker thread while a sync runs."""

    phase: Literal["scan", "index", "done"]
    done: int  # files handled in this phase
    total: int  # files to handle in this phase (0 while scanning: unknown)
    path: str | None = None


ProgressCallback = Callable[[SyncProgress], None]


@attrs.frozen(kw_only=True)
class SyncResult:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    repaired: tuple[str, ...]  # paths whose rows disagreed with the stored tree
    chunks_written: int
    files: int  # files in the index after the sync
    root_hash: str
    nodes_visited: int  # Merkle nodes compared
    seconds: float


@attrs.frozen(kw_only=True)
class IndexStatus:
    files: int
    chunks: int
    pending_embeddings: int
    root_hash: str
    model: str
