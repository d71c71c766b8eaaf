# ruff: noqa: UP006, UP035 - the old spelling is what this case edits
from typing import Any, Dict


def load(path: str) -> Dict[str, Any]:
    return {"path": path}


def keys(data: dict[str, Any]) -> list[str]:
    return sorted(data)
