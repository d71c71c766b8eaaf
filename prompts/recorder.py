"""Recording rendered Tab prompts and replaying their inputs with another template.

Off by default. When on, each rendered prompt appends one JSON line with its
raw inputs and its output, so a template or renderer change can be measured
on real inputs: `replay(load_records(path), get_template("qwen"), count=...)`.
A document's text is written once per recorder and content hash; later
records of the same text carry only the hash (`load_records` resolves it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from .fim import FimTemplate
from .renderer import Renderer
from .tab import TabInputs, TabPrompt, render_tab_inputs

__all__ = ["PromptRecord", "PromptRecorder", "load_records", "replay"]

FORMAT_VERSION = 1


@attrs.frozen(kw_only=True)
class PromptRecord:
    """One recorded prompt: the template used, the raw inputs and what was rendered."""

    template: str
    inputs: TabInputs
    output: TabPrompt
    time: float = 0.0  # Unix time of rendering


def _sha256(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()


class PromptRecorder:
    """Appends one JSONL record per rendered prompt to `path`; `path=None` records nothing."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def record(self, inputs: TabInputs, output: TabPrompt, *, template: FimTemplate | str) -> None:
        if self.path is None:
            return
        name = template if isinstance(template, str) else template.name
        digest = _sha256(inputs.text)
        row: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "time": time.time(),
            "template": name,
            "inputs": {**attrs.asdict(inputs), "text_sha256": digest},
            "output": attrs.asdict(output),
        }
        with self._lock:
            if digest in self._seen:
                del row["inputs"]["text"]
            line = json.dumps(row, ensure_ascii=False) + "\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
            self._seen.add(digest)


def _iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_records(path: str | os.PathLike[str]) -> list[PromptRecord]:
    """Read a recorder's file back (texts written once are resolved by hash)."""
    texts: dict[str, str] = {}
    out: list[PromptRecord] = []
    for row in _iter_rows(Path(path)):
        if row.get("v") != FORMAT_VERSION:
            raise ValueError(f"unsupported prompt record version {row.get('v')!r}")
        raw = dict(row["inputs"])
        digest = raw.pop("text_sha256")
        if "text" in raw:
            texts[digest] = raw["text"]
        else:
            raw["text"] = texts[digest]
        output = dict(row["output"])
        output["stop"] = tuple(output["stop"])
        out.append(
            PromptRecord(
                template=row["template"],
                inputs=TabInputs(**raw),
                output=TabPrompt(**output),
                time=float(row.get("time", 0.0)),
            )
        )
    return out


def replay(
    records: Iterable[PromptRecord],
    template: FimTemplate,
    *,
    count: Callable[[str], int],
    exact: bool = True,
    renderer: Renderer | None = None,
) -> list[TabPrompt]:
    """Re-render each record's inputs with `template` (and the current renderer code).

    Renders share one renderer, as in the server; sticky windows can still
    differ from a live session whose renderer saw keystrokes that were not recorded.
    """
    r = renderer if renderer is not None else Renderer(count, exact=exact)
    return [
        render_tab_inputs(rec.inputs, template=template, count=count, renderer=r) for rec in records
    ]
