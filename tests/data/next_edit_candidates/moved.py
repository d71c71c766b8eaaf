# ruff: noqa: UP035, I001 - the old spelling and another project's import layout
import json
import sys

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Callable,
    Literal,
)


@dataclass
class Job:
    run: Callable[[str], Any]
    args: Sequence[str]
    where: Path
    mode: Literal["fast", "slow"] = "fast"


def main() -> None:
    print(json.dumps(sys.argv))
