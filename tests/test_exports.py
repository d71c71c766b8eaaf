"""Each package's `__all__` names exactly what it exports, and importing it stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["lowentropy.server", "lowentropy.models", "lowentropy.prompts", "lowentropy.retrieval"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names {item!r}, which does not exist"
    public = {
        n
        for n in vars(module)
        if not n.startswith("_") and not isinstance(getattr(module, n), type(sys))
    }
    public -= {"annotations"}
    assert public <= set(exported) | {"app", "config", "errors", "types"}, public - set(exported)


def test_importing_the_packages_loads_no_model_runtime() -> None:
    """torch, sentence-transformers and llama_cpp load on first use, not on import."""
    code = (
        "import sys; import "
        + ", ".join(PACKAGES)
        + "; print(sorted(m for m in ('torch', 'sentence_transformers', 'llama_cpp') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
