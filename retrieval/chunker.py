"""Split a file into chunks: definitions for code, headings for Markdown, windows otherwise.

Code is parsed with tree-sitter. Each definition becomes one chunk together
with its decorators, attributes and the comments right above it; consecutive
other statements are grouped. A definition over the size limit is split at its
children: a class into its methods (the class line rides with the first), a
long function into groups of statements. Every chunk has an LSP range
(UTF-16 columns) and a hash of its text.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Sequence

import attrs
import tree_sitter

from lowentropy.retrieval.syntax import (
    DEFINITIONS,
    FUNCTION_VALUES,
    declared_name,
    language_for,
    node_text,
    parse,
)
from lowentropy.retrieval.types import Chunk, Span

__all__ = ["ChunkConfig", "chunk_file", "text_hash"]


@attrs.frozen(kw_only=True)
class ChunkConfig:
    max_lines: int = 60
    max_chars: int = 4000
    window_lines: int = 40  # plain-text windows
    window_overlap: int = 10


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


# Siblings that belong to the definition below them when adjacent.
_LEADING = frozenset({"comment", "line_comment", "block_comment", "attribute_item"})
# Functions defined in these become methods.
_CONTAINERS = frozenset({"class", "struct", "interface", "trait", "impl", "module", "enum"})
_MAX_DEPTH = 24
_PUNCTUATION = b"{}()[];,: \t\r\n"


@attrs.define
class _Piece:
    start: int  # byte offsets
    end: int
    symbol: str
    kind: str


@attrs.frozen
class _Def:
    node: tree_sitter.Node  # outermost node (decorators, export, template included)
    kind: str
    symbol: str
    body: tree_sitter.Node | None


@attrs.frozen
class _Scope:
    name: str  # qualified name of the enclosing definition
    kind: str
    group_symbol: str  # symbol and kind given to grouped statements here
    group_kind: str


class _Source:
    """Byte offsets to LSP positions."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8")
        self.line_starts = [0]
        self.line_starts.extend(m.end() for m in re.finditer(b"\n", self.data))

    def row(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def position(self, offset: int) -> tuple[int, int]:
        row = self.row(offset)
        prefix = self.data[self.line_starts[row] : offset]
        if prefix.isascii():
            return row, len(prefix)
        return row, len(prefix.decode("utf-8", "replace").encode("utf-16-le")) // 2

    def lines(self, start: int, end: int) -> int:
        return self.row(max(start, end - 1)) - self.row(start) + 1


class _TreeChunker:
    def __init__(self, language: str, src: _Source, config: ChunkConfig) -> None:
        self.kinds = DEFINITIONS.get(language, {})
        self.language = language
        self.src = src
        self.config = config

    # -- size ---------------------------------------------------------------

    def _fits(self, start: int, end: int) -> bool:
        if end - start > self.config.max_chars:
            return False
        return self.src.lines(start, end) <= self.config.max_lines

    def _windows(self, start: int, end: int, symbol: str, kind: str) -> list[_Piece]:
        """Line windows of at most max_lines / max_chars, for text with no useful children."""
        starts = self.src.line_starts
        pieces: list[_Piece] = []
        first = self.src.row(start)
        last = self.src.row(max(start, end - 1))
        row = first
        while row <= last:
            s = max(start, starts[row])
            stop = row
            while stop < last and stop - row + 1 < self.config.max_lines:
                nxt = starts[stop + 2] if stop + 2 < len(starts) else end
                if min(nxt, end) - s > self.config.max_chars:
                    break
                stop += 1
            e = min(end, starts[stop + 1] if stop + 1 < len(starts) else end)
            pieces.append(_Piece(s, e, symbol, kind))
            row = stop + 1
        return pieces

    # -- definitions --------------------------------------------------------

    def _definition(self, node: tree_sitter.Node, scope: _Scope) -> _Def | None:
        inner = self._unwrap(node)
        if inner is None:
            return None
        kind, name, body = self._describe(inner)
        if kind is None:
            return None
        if kind == "function" and scope.kind in _CONTAINERS:
            kind = "method"
        symbol = f"{scope.name}.{name}" if scope.name and name else name or scope.name
        return _Def(node=node, kind=kind, symbol=symbol, body=body)

    def _unwrap(self, node: tree_sitter.Node) -> tree_sitter.Node | None:
        """The definition inside decorators, `export`, `template<...>` and similar wrappers."""
        t = node.type
        if t == "decorated_definition":
            return node.child_by_field_name("definition")
        if t == "export_statement":
            return node.child_by_field_name("declaration")
        if t == "template_declaration":
            named = [c for c in node.named_children if c.type != "template_parameter_list"]
            return self._unwrap(named[-1]) if named else None
        if t == "expression_statement" and node.named_child_count == 1:
            child = node.named_children[0]
            return child if child.type in ("internal_module", "module") else None
        return node

    def _describe(self, node: tree_sitter.Node) -> tuple[str | None, str, tree_sitter.Node | None]:
        t = node.type
        if t in ("lexical_declaration", "variable_declaration") and self.language in (
            "javascript",
            "typescript",
            "tsx",
        ):
            declarators = [c for c in node.named_children if c.type == "variable_declarator"]
            if len(declarators) == 1:
                value = declarators[0].child_by_field_name("value")
                if value is not None and value.type in FUNCTION_VALUES:
                    name = node_text(declarators[0].child_by_field_name("name"))
                    return "function", name, value.child_by_field_name("body")
                if value is not None and value.type == "class":
                    name = node_text(declarators[0].child_by_field_name("name"))
                    return "class", name, value.child_by_field_name("body")
            return None, "", None
        if t in ("declaration", "type_definition") and self.language in ("c", "cpp"):
            spec = node.child_by_field_name("type")
            if spec is None or spec.child_by_field_name("body") is None:
                return None, "", None
            kind = self.kinds.get(spec.type)
            if kind is None:
                return None, "", None
            name = declared_name(node.child_by_field_name("declarator") or spec)
            return kind, name or declared_name(spec), spec.child_by_field_name("body")
        kind = self.kinds.get(t)
        if kind is None:
            return None, "", None
        if t in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier"):
            if node.child_by_field_name("body") is None:  # a forward declaration
                return None, "", None
        if t == "namespace_definition" and node.child_by_field_name("body") is None:
            return None, "", None  # PHP `namespace A;`
        if t == "type_declaration":  # Go: `type T struct {...}`
            spec = next((c for c in node.named_children if c.type == "type_spec"), None)
            if spec is None:
                return "type", "", None
            type_node = spec.child_by_field_name("type")
            type_kind = {"struct_type": "struct", "interface_type": "interface"}.get(
                type_node.type if type_node is not None else "", "type"
            )
            return type_kind, node_text(spec.child_by_field_name("name")), None
        if t == "impl_item":
            return (
                kind,
                node_text(node.child_by_field_name("type")),
                node.child_by_field_name("body"),
            )
        name = declared_name(node)
        if t == "method_declaration" and self.language == "go":
            receiver = node.child_by_field_name("receiver")
            rtype = _go_receiver_type(receiver)
            if rtype:
                name = f"{rtype}.{name}"
        return kind, name, node.child_by_field_name("body")

    # -- recursion ----------------------------------------------------------

    def body(
        self, nodes: Sequence[tree_sitter.Node], scope: _Scope, prefix: int | None, depth: int
    ) -> list[_Piece]:
        """Chunks for a sequence of sibling nodes; `prefix` (a header) joins the first one."""
        pieces: list[_Piece] = []
        pending: list[tree_sitter.Node] = []
        for node in nodes:
            if not node.is_named:
                continue
            d = self._definition(node, scope)
            if d is None:
                pending.append(node)
                continue
            first = len(pending)
            row = node.start_point.row
            while (
                first > 0
                and pending[first - 1].type in _LEADING
                and pending[first - 1].end_point.row >= row - 1
            ):
                first -= 1
                row = pending[first].start_point.row
            leading = pending[first:]
            del pending[first:]
            if pending:
                pieces.extend(self.statements(pending, scope, prefix, depth))
                prefix = None
                pending = []
            start = leading[0].start_byte if leading else node.start_byte
            if prefix is not None:
                start, prefix = min(start, prefix), None
            pieces.extend(self.definition(d, start, depth))
        if pending:
            pieces.extend(self.statements(pending, scope, prefix, depth))
        return pieces

    def definition(self, d: _Def, start: int, depth: int) -> list[_Piece]:
        end = d.node.end_byte
        if self._fits(start, end):
            return [_Piece(start, end, d.symbol, d.kind)]
        if d.body is None or depth >= _MAX_DEPTH or d.body.named_child_count == 0:
            return self._windows(start, end, d.symbol, d.kind)
        scope = _Scope(name=d.symbol, kind=d.kind, group_symbol=d.symbol, group_kind=d.kind)
        pieces = self.body(d.body.children, scope, start, depth + 1)
        if not self._covers(pieces, start, end):
            return self._windows(start, end, d.symbol, d.kind)
        pieces[-1].end = max(pieces[-1].end, end)  # the closing brace or `end`
        return pieces

    def statements(
        self, nodes: Sequence[tree_sitter.Node], scope: _Scope, prefix: int | None, depth: int
    ) -> list[_Piece]:
        """Group consecutive non-definition nodes up to the size limit."""
        pieces: list[_Piece] = []
        current: _Piece | None = None
        for node in nodes:
            start = node.start_byte if prefix is None else min(prefix, node.start_byte)
            prefix = None
            if not self._fits(start, node.end_byte):
                if current is not None:
                    pieces.append(current)
                    current = None
                pieces.extend(self._split(node, start, scope, depth))
            elif current is not None and self._fits(current.start, node.end_byte):
                current.end = node.end_byte
            else:
                if current is not None:
                    pieces.append(current)
                current = _Piece(start, node.end_byte, scope.group_symbol, scope.group_kind)
        if current is not None:
            pieces.append(current)
        return pieces

    def _split(self, node: tree_sitter.Node, start: int, scope: _Scope, depth: int) -> list[_Piece]:
        """An oversized statement (a long `if`, a preprocessor block) split at its children."""
        if depth >= _MAX_DEPTH or node.named_child_count == 0:
            return self._windows(start, node.end_byte, scope.group_symbol, scope.group_kind)
        pieces = self.body(node.children, scope, start, depth + 1)
        if not self._covers(pieces, start, node.end_byte):
            return self._windows(start, node.end_byte, scope.group_symbol, scope.group_kind)
        pieces[-1].end = max(pieces[-1].end, node.end_byte)
        return pieces

    def _covers(self, pieces: Sequence[_Piece], start: int, end: int) -> bool:
        """Whether the pieces leave out nothing but punctuation (text between named
        children, e.g. a string's content, would otherwise fall out of the index)."""
        if not pieces:
            return False
        data = self.src.data
        cursor = start
        for p in [*pieces, _Piece(end, end, "", "")]:
            gap = data[cursor : p.start] if p.start > cursor else b""
            if gap.translate(None, _PUNCTUATION).strip() not in (b"", b"end"):
                return False
            cursor = max(cursor, p.end)
        return True


def _go_receiver_type(receiver: tree_sitter.Node | None) -> str:
    if receiver is None:
        return ""
    for param in receiver.named_children:
        type_node = param.child_by_field_name("type")
        if type_node is not None:
            return node_text(type_node).lstrip("*").split("[", 1)[0]
    return ""


# -- finishing --------------------------------------------------------------


def _to_chunks(path: str, language: str, src: _Source, pieces: Sequence[_Piece]) -> list[Chunk]:
    data = src.data
    chunks: list[Chunk] = []
    for p in pieces:
        start, end = p.start, p.end
        line_start = src.line_starts[src.row(start)]
        if not data[line_start:start].strip():
            start = line_start  # keep the indentation of the first line
        while end > start and data[end - 1 : end] in (b" ", b"\t", b"\r", b"\n"):
            end -= 1
        if end <= start or not data[start:end].strip():
            continue
        text = data[start:end].decode("utf-8", "replace")
        (sl, sc), (el, ec) = src.position(start), src.position(end)
        chunks.append(
            Chunk(
                path=path,
                span=Span(start_line=sl, start_col=sc, end_line=el, end_col=ec),
                symbol=p.symbol,
                kind=p.kind,
                language=language,
                text=text,
                hash=text_hash(text),
            )
        )
    return chunks


def _line_pieces(src: _Source, config: ChunkConfig, symbol: str, kind: str) -> list[_Piece]:
    """Overlapping windows over the whole file."""
    starts = src.line_starts
    n = len(starts) - (1 if src.data.endswith(b"\n") else 0)  # no empty last line
    size = max(1, config.window_lines)
    step = max(1, size - config.window_overlap)
    pieces: list[_Piece] = []
    row = 0
    while row < n:
        stop = min(n, row + size)
        end = starts[stop] if stop < n else len(src.data)
        pieces.append(_Piece(starts[row], end, symbol, kind))
        if stop >= n:
            break
        row += step
    return pieces


_HEADING = re.compile(rb"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(rb"^\s*(```|~~~)")


def _markdown_pieces(src: _Source, config: ChunkConfig) -> list[_Piece]:
    """One piece per heading section; long sections in windows that keep the heading."""
    data = src.data
    sections: list[tuple[int, str]] = []  # (start offset, heading)
    in_fence = False
    for offset in src.line_starts:
        line_end = data.find(b"\n", offset)
        line = data[offset : line_end if line_end >= 0 else len(data)]
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        m = None if in_fence else _HEADING.match(line)
        if m is not None:
            sections.append((offset, m.group(2).decode("utf-8", "replace")))
    if not sections or sections[0][0] != 0:
        sections.insert(0, (0, ""))
    pieces: list[_Piece] = []
    for i, (start, heading) in enumerate(sections):
        end = sections[i + 1][0] if i + 1 < len(sections) else len(data)
        if src.lines(start, end) <= config.max_lines and end - start <= config.max_chars:
            pieces.append(_Piece(start, end, heading, "section"))
            continue
        chunker = _TreeChunker("markdown", src, config)
        pieces.extend(chunker._windows(start, end, heading, "section"))
    return pieces


def chunk_file(path: str, text: str, config: ChunkConfig | None = None) -> list[Chunk]:
    """Chunks of one file; `path` (relative, POSIX) picks the language."""
    config = config or ChunkConfig()
    language = language_for(path)
    src = _Source(text)
    if language == "markdown":
        return _to_chunks(path, language, src, _markdown_pieces(src, config))
    tree = parse(src.data, language)
    if tree is None:
        return _to_chunks(path, language, src, _line_pieces(src, config, "", "lines"))
    chunker = _TreeChunker(language, src, config)
    top = _Scope(name="", kind="", group_symbol="", group_kind="statements")
    pieces = chunker.body(tree.root_node.children, top, None, 0)
    return _to_chunks(path, language, src, pieces)
