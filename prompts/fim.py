"""Fill-in-the-middle formats: a registry keyed by name, loaded from `templates/fim.toml`.

Each model family marks prefix, suffix and middle with its own special tokens;
the formats are data, and this module only parses them. `get_template` picks
one by name, `guess_template` from a model name or its vocabulary.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "FimTemplate",
    "UnknownTemplateError",
    "get_template",
    "guess_template",
    "line_comment",
    "template_names",
]

Slot = Literal["prefix", "suffix"]
_PLACEHOLDER = re.compile(r"\{(prefix|suffix)\}")


class UnknownTemplateError(KeyError):
    """No FIM format has this name; the message lists the valid ones."""

    def __init__(self, name: str, valid: tuple[str, ...]) -> None:
        self.name = name
        self.valid = valid
        super().__init__(f"unknown FIM template {name!r}; valid names: {', '.join(valid)}")

    def __str__(self) -> str:
        # KeyError's str() would quote the message.
        return str(self.args[0])


@attrs.frozen(kw_only=True)
class FimTemplate:
    """One FIM format; `format` holds literal text around `{prefix}` and `{suffix}`."""

    name: str
    format: str
    stop: tuple[str, ...] = ()
    repo_header: str | None = None
    file_header: str | None = None
    model_pattern: str | None = None
    vocab: tuple[tuple[str, ...], ...] = ()

    @property
    def uses_suffix(self) -> bool:
        """False for prefix continuation (`plain`): the text after the cursor is unused."""
        return "{suffix}" in self.format

    @property
    def middle_last(self) -> bool:
        """Prefix, then suffix, then a closing literal (the middle marker): text after the
        whole format reads as middle already written (PSM formats: Qwen, StarCoder, ...)."""
        segs = self.segments()
        kinds = [kind for kind, _ in segs]
        return (
            "suffix" in kinds
            and kinds.index("prefix") < kinds.index("suffix")
            and kinds[-1] == "text"
        )

    def segments(self) -> list[tuple[Literal["text", "prefix", "suffix"], str]]:
        """The format in output order: literal texts and the slots, e.g. for a renderer."""
        out: list[tuple[Literal["text", "prefix", "suffix"], str]] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(self.format):
            if m.start() > pos:
                out.append(("text", self.format[pos : m.start()]))
            out.append(("prefix" if m.group(1) == "prefix" else "suffix", ""))
            pos = m.end()
        if pos < len(self.format):
            out.append(("text", self.format[pos:]))
        return out

    def fill(self, prefix: str, suffix: str = "") -> str:
        """The whole prompt for a prefix and suffix (no budget: see `tab.render_tab_prompt`)."""
        slots = {"prefix": prefix, "suffix": suffix}
        return "".join(slots[kind] if kind != "text" else s for kind, s in self.segments())

    def repo_header_for(self, repo: str, path: str) -> str | None:
        """The repository-mode header, or None when the format has none."""
        if self.repo_header is None:
            return None
        return self.repo_header.replace("{repo}", repo).replace("{path}", path)


@functools.cache
def _data() -> dict[str, Any]:
    package = importlib.resources.files(__package__ or "lowentropy.prompts")
    raw = package.joinpath("templates/fim.toml").read_text("utf-8")
    return tomllib.loads(raw)


def _parse(name: str, entry: Mapping[str, Any]) -> FimTemplate:
    fmt = str(entry["format"])
    if fmt.count("{prefix}") != 1 or fmt.count("{suffix}") > 1:
        raise ValueError(
            f"FIM template {name!r}: format needs one {{prefix}} and at most one {{suffix}}"
        )
    vocab = tuple(
        (alts,) if isinstance(alts, str) else tuple(str(a) for a in alts)
        for alts in entry.get("vocab", ())
    )
    return FimTemplate(
        name=name,
        format=fmt,
        stop=tuple(str(s) for s in entry.get("stop", ())),
        repo_header=entry.get("repo_header"),
        file_header=entry.get("file_header"),
        model_pattern=entry.get("model_pattern"),
        vocab=vocab,
    )


@functools.cache
def _registry() -> dict[str, FimTemplate]:
    return {name: _parse(name, entry) for name, entry in _data()["templates"].items()}


def template_names() -> tuple[str, ...]:
    """Valid template names, in the order `guess_template` tries them."""
    return tuple(_registry())


def get_template(name: str) -> FimTemplate:
    """The template called `name`; `UnknownTemplateError` lists the valid names."""
    try:
        return _registry()[name]
    except KeyError:
        raise UnknownTemplateError(name, template_names()) from None


def guess_template(model_name: str, vocab_has: Callable[[str], bool] | None = None) -> FimTemplate:
    """Pick a format from the model's name, else from its special tokens, else `plain`.

    `vocab_has(token)` says whether the vocabulary holds `token` as one token.
    """
    registry = _registry()
    lowered = model_name.lower()
    for template in registry.values():
        if template.model_pattern and re.search(template.model_pattern, lowered):
            return template
    if vocab_has is not None:
        for template in registry.values():
            if template.vocab and all(any(vocab_has(t) for t in alts) for alts in template.vocab):
                return template
    return registry["plain"]


def line_comment(language: str) -> str | None:
    """The line-comment marker for an LSP language id, or None when unknown."""
    marker = _data().get("line_comments", {}).get(language)
    return None if marker is None else str(marker)
