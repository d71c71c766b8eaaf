"""Identifier-aware words for full-text search.

LanceDB's tokenizer splits `snake_case` at underscores but keeps `camelCase`
whole, so "decoder" would miss `JSONDecoder`. The indexed text and the query
both get the parts of compound identifiers appended.
"""

from __future__ import annotations

import re

__all__ = ["fulltext_query", "index_words", "split_identifier"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_WORD = re.compile(r"\w+")


def split_identifier(identifier: str) -> list[str]:
    """`parseHTTPResponse_v2` -> ["parse", "http", "response", "v", "2"]."""
    return [p.lower() for segment in identifier.split("_") for p in _PART.findall(segment)]


def _compound_parts(text: str) -> list[str]:
    seen: set[str] = set()
    parts: list[str] = []
    for ident in set(_IDENTIFIER.findall(text)):
        if ident.islower() or ident.isupper():  # nothing to split beyond underscores
            continue
        for part in split_identifier(ident):
            if part not in seen:
                seen.add(part)
                parts.append(part)
    return parts


def index_words(text: str, symbol: str, path: str) -> str:
    """The text to put in the full-text index for one chunk."""
    extra = _compound_parts(f"{symbol} {text}")
    path_words = " ".join(p for p in re.split(r"[/._-]+", path) if p)
    return f"{path_words}\n{symbol}\n{text}\n{' '.join(extra)}"


def fulltext_query(query: str) -> str:
    """Plain words for the full-text engine: no operators, identifiers split."""
    words = _WORD.findall(query)
    return " ".join(words + _compound_parts(query))
