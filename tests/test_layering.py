"""The one-way rule, checked on every import statement: server -> prompts/retrieval -> models.

`models/` and `retrieval/` know no LSP; `retrieval/` uses only `models/`; `prompts/` is
pure (the request dataclasses of `lowentropy.models.types` are its one allowed import).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LSP_PACKAGES = ("pygls", "lsprotocol", "pytest_lsp")

# For each layer: the lowentropy packages (or modules) it may import.
ALLOWED: dict[str, tuple[str, ...]] = {
    "models": ("lowentropy.models",),
    "retrieval": ("lowentropy.retrieval", "lowentropy.models"),
    "prompts": ("lowentropy.prompts", "lowentropy.models.types"),
}


def imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, nested ones included."""
    package = "lowentropy." + ".".join(path.relative_to(root).parent.parts)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield node.lineno, f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.lineno, node.module


def violations(layer: str, root: Path = ROOT) -> list[str]:
    allowed = ALLOWED[layer]
    found = []
    for path in sorted((root / layer).rglob("*.py")):
        for line, module in imports(path, root):
            top = module.split(".")[0]
            if top in LSP_PACKAGES:
                found.append(f"{path.relative_to(root)}:{line} imports {module} (LSP)")
            elif top == "lowentropy" and not any(
                module == a or module.startswith(a + ".") for a in allowed
            ):
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_the_one_way_rule_allows(layer: str) -> None:
    assert violations(layer) == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    # The checker itself, on a tree of its own: a relative import that climbs into
    # server/, an LSP import, and an allowed one.
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "probe.py").write_text(
        "from ..server import app\nimport pygls.server\nfrom .renderer import text\n"
        "from lowentropy.models.types import ChatRequest\n",
        encoding="utf-8",
    )
    found = violations("prompts", tmp_path)
    assert len(found) == 2, found
    assert any("lowentropy.server" in v for v in found)
    assert any("pygls.server" in v for v in found)
