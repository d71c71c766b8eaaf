"""Chunker: one chunk per definition (with decorators and leading comments) per language,
large definitions split at child boundaries, exact LSP ranges, Markdown and text windows.

Data: tests/data/retrieval/chunker/sample.* (one small file per language).
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from lowentropy.retrieval import Chunk, ChunkConfig, chunk_file, language_for
from lowentropy.retrieval.chunker import text_hash

DATA = Path(__file__).parent / "data" / "retrieval" / "chunker"


def chunks_of(name: str, config: ChunkConfig | None = None) -> list[Chunk]:
    return chunk_file(name, (DATA / name).read_text(encoding="utf-8"), config)


def outline(chunks: list[Chunk]) -> list[tuple[str, str]]:
    return [(c.kind, c.symbol) for c in chunks]


def utf16_slice(text: str, chunk: Chunk) -> str:
    """The document text inside the chunk's LSP range (UTF-16 columns)."""
    lines = text.split("\n")
    s = e = chunk.span

    def offset(line: int, col: int) -> int:
        units = lines[line].encode("utf-16-le")[: col * 2].decode("utf-16-le")
        return sum(len(x) + 1 for x in lines[:line]) + len(units)

    return text[offset(s.start_line, s.start_col) : offset(e.end_line, e.end_col)]


EXPECTED = {
    "sample.py": [
        ("statements", ""),
        ("function", "retry"),
        ("class", "Cache"),
        ("statements", ""),
    ],
    "sample.js": [
        ("statements", ""),
        ("function", "add"),
        ("function", "multiply"),
        ("class", "Shape"),
        ("class", "Circle"),
    ],
    "sample.ts": [
        ("interface", "Point"),
        ("type", "Id"),
        ("enum", "Color"),
        ("class", "AppComponent"),
        ("function", "distance"),
    ],
    "sample.tsx": [("statements", ""), ("function", "Greeting"), ("function", "Button")],
    "sample.go": [
        ("statements", ""),
        ("struct", "Point"),
        ("function", "Distance"),
        ("method", "Point.Scale"),
        ("interface", "Shape"),
    ],
    "sample.rs": [
        ("statements", ""),
        ("struct", "Point"),
        ("impl", "Point"),
        ("trait", "Shape"),
        ("function", "it_works"),
    ],
    "Sample.java": [
        ("statements", ""),
        ("class", "ListUtils"),
        ("interface", "Greeter"),
        ("enum", "Planet"),
    ],
    "sample.c": [
        ("statements", ""),
        ("struct", "point"),
        ("struct", "size_t2"),
        ("function", "add"),
        ("function", "name"),
    ],
    "sample.cpp": [
        ("statements", ""),
        ("namespace", "geo"),
        ("statements", ""),
        ("function", "max_of"),
        ("function", "geo_print"),
    ],
    "sample.rb": [("statements", ""), ("class", "Greeter"), ("module", "Util")],
    "sample.php": [
        ("statements", ""),
        ("function", "add"),
        ("class", "User"),
        ("interface", "Named"),
    ],
    "Sample.cs": [("statements", ""), ("namespace", "Demo")],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_chunk_per_definition(name: str) -> None:
    chunks = chunks_of(name)
    assert outline(chunks) == EXPECTED[name]
    assert {c.language for c in chunks} == {language_for(name)}
    text = (DATA / name).read_text(encoding="utf-8")
    for c in chunks:
        assert utf16_slice(text, c) == c.text
        assert c.hash == text_hash(c.text)
        assert c.path == name


@pytest.mark.parametrize(
    ("name", "symbol", "head"),
    [
        ("sample.py", "retry", "# Retry helper"),  # comment, then two decorators
        ("sample.ts", "AppComponent", '@Component({ selector: "app" })'),
        ("sample.rs", "Point", "/// A point in the plane.\n#[derive(Debug, Clone)]"),
        ("sample.rs", "it_works", "#[test]"),
        ("sample.go", "Distance", "// Distance returns"),
        ("Sample.java", "ListUtils", "/** Utilities for lists. */"),
        ("sample.c", "add", "/* Adds two integers. */"),
        ("sample.cpp", "max_of", "template <typename T>"),
        ("sample.js", "add", "// Adds two numbers.\nexport function add"),
    ],
)
def test_definitions_carry_decorators_and_leading_comments(
    name: str, symbol: str, head: str
) -> None:
    chunk = next(c for c in chunks_of(name) if c.symbol == symbol)
    assert chunk.text.startswith(head)


def test_python_decorated_method_stays_with_its_class() -> None:
    cache = next(c for c in chunks_of("sample.py") if c.symbol == "Cache")
    assert "    @property\n    def size(self):" in cache.text


SMALL = ChunkConfig(max_lines=5, max_chars=10_000)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sample.py", [("class", "Cache"), ("method", "Cache.get"), ("method", "Cache.size")]),
        ("sample.rs", [("method", "Point.distance")]),
        ("Sample.java", [("constructor", "ListUtils.ListUtils"), ("method", "ListUtils.sum")]),
        ("sample.cpp", [("method", "geo.Circle.Circle"), ("method", "geo.Circle.area")]),
        ("sample.rb", [("method", "Greeter.initialize"), ("method", "Greeter.greet")]),
        ("Sample.cs", [("method", "Demo.Greeter.Greet"), ("interface", "Demo.IShape")]),
        ("sample.php", [("method", "User.name"), ("method", "User.email")]),
        ("sample.js", [("method", "Circle.constructor")]),
        ("sample.ts", [("method", "AppComponent.greet")]),
    ],
)
def test_large_definitions_split_at_children(name: str, expected: list[tuple[str, str]]) -> None:
    chunks = chunks_of(name, SMALL)
    for item in expected:
        assert item in outline(chunks)
    text = (DATA / name).read_text(encoding="utf-8")
    for c in chunks:
        assert utf16_slice(text, c) == c.text


def test_class_line_rides_with_the_first_piece() -> None:
    chunks = chunks_of("sample.py", ChunkConfig(max_lines=4))
    cache = [c for c in chunks if c.symbol.startswith("Cache")]
    assert cache[0].text.startswith('class Cache:\n    """A tiny cache."""')
    # the decorated method keeps its decorator when split out
    size = next(c for c in cache if c.symbol == "Cache.size")
    assert size.text.lstrip().startswith("@property")


def long_function(statements: int) -> str:
    body = "".join(f"    value_{i} = compute({i})\n" for i in range(statements))
    return f"def long_function(x):\n    '''Many statements.'''\n{body}    return x\n"


def test_long_function_split_into_statement_groups() -> None:
    text = long_function(150)
    chunks = chunk_file("long.py", text, ChunkConfig(max_lines=60))
    assert len(chunks) == 3
    assert {(c.kind, c.symbol) for c in chunks} == {("function", "long_function")}
    assert chunks[0].text.startswith("def long_function(x):")
    assert all(c.span.end_line - c.span.start_line + 1 <= 60 for c in chunks)
    # consecutive, non-overlapping, and together the whole function
    assert "\n".join(c.text for c in chunks) == text.rstrip("\n")


def test_oversized_string_falls_back_to_line_windows() -> None:
    lines = "".join(f"line {i} of a long literal\n" for i in range(200))
    text = f'HELP = """\n{lines}"""\n'
    chunks = chunk_file("help.py", text, ChunkConfig(max_lines=60))
    assert len(chunks) == 4
    assert all(c.span.end_line - c.span.start_line + 1 <= 60 for c in chunks)
    assert "\n".join(c.text for c in chunks) == text.rstrip("\n")


def test_every_line_of_a_real_package_is_covered() -> None:
    """The standard library's email package: no non-blank line falls out of the index."""
    root = Path(sysconfig.get_paths()["stdlib"]) / "email"
    files = sorted(root.rglob("*.py"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root.parent).as_posix()
        covered: set[int] = set()
        for c in chunk_file(rel, text):
            covered.update(range(c.span.start_line, c.span.end_line + 1))
            assert c.span.end_line - c.span.start_line < 60 + 1
        lines = text.split("\n")
        missing = [i for i, line in enumerate(lines) if line.strip() and i not in covered]
        assert missing == [], rel


def test_utf16_columns() -> None:
    text = 'x = "héllo 😀"; y = 1\ndef f():\n    return "😀"\n'
    chunks = chunk_file("u.py", text)
    for c in chunks:
        assert utf16_slice(text, c) == c.text
    first = chunks[0]
    # "😀" is two UTF-16 units: the end column counts it twice
    assert first.span.end_line == 0
    assert first.span.end_col == len(text.split("\n")[0]) + 1


def test_markdown_by_headings_ignoring_fenced_hashes() -> None:
    chunks = chunks_of("notes.md")
    assert outline(chunks) == [
        ("section", "Title"),
        ("section", "Install"),
        ("section", "Usage"),
    ]
    assert "# not a heading" in chunks[1].text


def test_plain_text_windows_overlap() -> None:
    text = "".join(f"row {i}\n" for i in range(100))
    chunks = chunk_file("data.csv", text, ChunkConfig(window_lines=40, window_overlap=10))
    assert [(c.span.start_line, c.span.end_line) for c in chunks] == [
        (0, 39),
        (30, 69),
        (60, 99),
    ]
    assert {c.kind for c in chunks} == {"lines"}
    assert {c.language for c in chunks} == {"text"}


def test_unparseable_code_still_yields_its_text() -> None:
    text = "def broken(:\n    pass\n\nclass Fine:\n    pass\n"
    chunks = chunk_file("broken.py", text)
    assert "class Fine" in "".join(c.text for c in chunks)
    assert "def broken" in "".join(c.text for c in chunks)
