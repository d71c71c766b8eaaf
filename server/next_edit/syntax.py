"""Tree-sitter facts that propagation needs: identifiers, calls, function headers.

Languages without a grammar fall back to plain text (every word counts as an
identifier, no scopes), which keeps propagation useful, only less precise.
"""

from __future__ import annotations

import functools
import re

import attrs
import tree_sitter

from lowentropy.retrieval.syntax import parse
from lowentropy.server.text_edits import changed_span

CALLS = frozenset({"call", "call_expression", "method_invocation", "invocation_expression"})
FUNCTIONS = frozenset(
    {
        "function_definition", "function_declaration", "method_definition", "function_item",
        "method_declaration", "generator_function_declaration", "constructor_declaration",
    }
)  # fmt: skip
SCOPES = FUNCTIONS | {"lambda", "arrow_function", "function_expression"}
_TRAILING_NAME = re.compile(r"(\w+)\s*$")
_IDENT = re.compile(r"[A-Za-z_]\w*")


@attrs.frozen(kw_only=True)
class Param:
    name: str
    kind: str  # "pos" (required), "default", "star", "kwonly", "dstar"


@attrs.frozen(kw_only=True)
class Arg:
    start: int  # code-point offsets
    end: int
    text: str
    keyword: str | None  # `name=` arguments
    splat: bool


@attrs.frozen(kw_only=True)
class Call:
    callee: str  # the called name (last part of `a.b.name`)
    start: int
    end: int
    open_paren: int  # offset just after `(`
    args: tuple[Arg, ...]


@attrs.frozen(kw_only=True)
class Header:
    """A function definition's name and parameters."""

    name: str
    start: int
    end: int  # end of the parameter list
    body_end: int
    params: tuple[Param, ...]
    method: bool  # first parameter is self/cls: calls go through an attribute


class Source:
    """A text with its tree (when the language has a grammar) and offset conversion.

    `base`: a Source of an earlier version of the same text in the same language; its
    tree, edited to this text, lets tree-sitter reparse only the changed region (a
    keystroke's edit of a 2,000-line file: ~1 ms instead of ~8 ms)."""

    def __init__(self, text: str, language: str, base: Source | None = None) -> None:
        self.text = text
        self.data = text.encode("utf-8")
        self.ascii = len(self.data) == len(text)
        self.language = language
        old = base.edited_to(self) if base is not None and base.language == language else None
        self.tree: tree_sitter.Tree | None = parse(self.data, language, old)

    def edited_to(self, new: Source) -> tree_sitter.Tree | None:
        """A copy of this tree edited to `new`'s text, for reparsing; None when the texts
        differ in more than one short span (a fresh parse is then as quick)."""
        if self.tree is None:
            return None
        start, end_old, end_new = changed_span(self.text, new.text)
        if max(end_old, end_new) - start > max(len(new.text), 1) // 4:
            return None
        tree = self.tree.copy()
        tree.edit(
            start_byte=self.byte(start),
            old_end_byte=self.byte(end_old),
            new_end_byte=new.byte(end_new),
            start_point=self.point(start),
            old_end_point=self.point(end_old),
            new_end_point=new.point(end_new),
        )
        return tree

    def point(self, offset: int) -> tuple[int, int]:
        """(row, byte column) of a code-point offset, as tree-sitter counts them."""
        line_start = self.text.rfind("\n", 0, offset) + 1
        return self.text.count("\n", 0, offset), self.byte(offset) - self.byte(line_start)

    def byte(self, offset: int) -> int:
        return offset if self.ascii else len(self.text[:offset].encode("utf-8"))

    def char(self, byte: int) -> int:
        return byte if self.ascii else len(self.data[:byte].decode("utf-8", errors="ignore"))

    def node_at(self, start: int, end: int) -> tree_sitter.Node | None:
        if self.tree is None:
            return None
        return self.tree.root_node.descendant_for_byte_range(self.byte(start), self.byte(end))

    def span(self, node: tree_sitter.Node) -> tuple[int, int]:
        return self.char(node.start_byte), self.char(node.end_byte)

    def node_text(self, node: tree_sitter.Node | None) -> str:
        if node is None:
            return ""
        return self.data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    def errors(self) -> int:
        """Syntax errors in the tree (0 without a grammar)."""
        if self.tree is None or not self.tree.root_node.has_error:
            return 0
        count = 0
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            if node.is_error or node.is_missing:
                count += 1
            elif node.has_error:
                stack.extend(node.children)
        return count

    def is_identifier(self, start: int, end: int) -> bool:
        """True when [start, end) is an identifier in code (not in a string or comment)."""
        node = self.node_at(start, end)
        if node is None:
            return self.tree is None
        return node.type.endswith("identifier") and self.span(node) == (start, end)

    def enclosing(self, start: int, end: int, types: frozenset[str]) -> tree_sitter.Node | None:
        node = self.node_at(start, end)
        while node is not None and node.type not in types:
            node = node.parent
        return node

    # ---- calls ---------------------------------------------------------------------------

    def call(self, node: tree_sitter.Node) -> Call | None:
        fn = node.child_by_field_name("function") or node.child_by_field_name("name")
        arguments = node.child_by_field_name("arguments")
        if fn is None or arguments is None or not arguments.type.startswith("argument"):
            return None
        m = _TRAILING_NAME.search(self.node_text(fn))
        if m is None:
            return None
        args: list[Arg] = []
        for child in arguments.named_children:
            if "comment" in child.type:
                continue
            s, e = self.span(child)
            keyword = None
            if child.type == "keyword_argument":
                keyword = self.node_text(child.child_by_field_name("name")) or None
            args.append(
                Arg(
                    start=s,
                    end=e,
                    text=self.text[s:e],
                    keyword=keyword,
                    splat="splat" in child.type or "spread" in child.type,
                )
            )
        start, end = self.span(node)
        return Call(
            callee=m.group(1),
            start=start,
            end=end,
            open_paren=self.char(arguments.start_byte) + 1,
            args=tuple(args),
        )

    def calls_to(self, name: str) -> list[Call]:
        """Every call of `name` (plain or through an attribute), in text order."""
        out: list[Call] = []
        for m in re.finditer(rf"(?<![\w]){re.escape(name)}\s*\(", self.text):
            node = self.node_at(m.start(), m.start() + len(name))
            while node is not None and node.type not in CALLS:
                if node.type in FUNCTIONS or node.type.endswith(("statement", "definition")):
                    node = None
                    break
                node = node.parent
            if node is None:
                continue
            call = self.call(node)
            if call is not None and call.callee == name and (not out or out[-1] != call):
                out.append(call)
        return out

    def call_around(self, start: int, end: int) -> Call | None:
        """The innermost call whose argument list holds [start, end)."""
        node = self.node_at(start, end)
        while node is not None:
            if node.type in CALLS:
                call = self.call(node)
                if call is not None and call.open_paren <= start and end < call.end:
                    return call
            if node.type in FUNCTIONS:
                return None
            node = node.parent
        return None

    # ---- function headers ----------------------------------------------------------------

    def header_around(self, start: int, end: int) -> Header | None:
        """The function whose name or parameter list holds [start, end)."""
        node = self.enclosing(start, end, FUNCTIONS)
        if node is None:
            return None
        header = self.header(node)
        if header is None or not (header.start <= start and end <= header.end):
            return None
        return header

    def header(self, node: tree_sitter.Node) -> Header | None:
        name = node.child_by_field_name("name")
        params = node.child_by_field_name("parameters")
        if params is None:  # C/C++: the declarator holds both
            decl = node.child_by_field_name("declarator")
            while decl is not None and params is None:
                params = decl.child_by_field_name("parameters")
                name = decl.child_by_field_name("declarator") or name
                decl = decl.child_by_field_name("declarator") if params is None else decl
        if name is None or params is None:
            return None
        parsed = [p for p in (self._param(c) for c in params.named_children) if p is not None]
        method = bool(parsed) and parsed[0].name in ("self", "cls")
        if method:
            parsed = parsed[1:]
        start, _ = self.span(node)
        _, end = self.span(params)
        _, body_end = self.span(node)
        return Header(
            name=self.node_text(name),
            start=start,
            end=end,
            body_end=body_end,
            params=tuple(parsed),
            method=method,
        )

    def _param(self, node: tree_sitter.Node) -> Param | None:
        t = node.type
        if "comment" in t:
            return None
        if t in ("keyword_separator", "positional_separator"):
            return Param(name="*" if t == "keyword_separator" else "/", kind="sep")
        if t == "list_splat_pattern":
            return Param(name=self.node_text(node).lstrip("*"), kind="star")
        if t == "dictionary_splat_pattern":
            return Param(name=self.node_text(node).lstrip("*"), kind="dstar")
        m = _IDENT.search(self.node_text(node.child_by_field_name("name") or node))
        if m is None:
            return None
        kind = "default" if ("default" in t or "optional" in t or "assignment" in t) else "pos"
        return Param(name=m.group(0), kind=kind)


@functools.lru_cache(maxsize=8)
def parsed(text: str, language: str) -> Source:
    """`Source(text, language)`, shared: one next-edit request parses the text after the
    edit in propagation, the candidate sources and the syntax check of the chosen edit
    (~10 ms each on a 2,000-line file). Sources are never changed after they are made.
    The last one made is the base of the next (an edit is most often of the text last
    read), so a keystroke's reparse touches only what changed."""
    global _last
    src = Source(text, language, _last)
    _last = src
    return src


_last: Source | None = None
