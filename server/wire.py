"""One cattrs converter for the wire: camelCase JSON <-> snake_case attrs classes.

pygls hands unknown (custom) methods' params over as nested namedtuples;
`to_plain` turns them back into dicts so they can be structured strictly.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

T = TypeVar("T")

_CAMEL = re.compile(r"_([a-z])")


def camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)

    def structure_factory(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
        return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True, **overrides)

    def unstructure_factory(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {
            a.name: override(rename=camel(a.name), omit_if_default=False) for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **overrides)

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return conv


converter = _make_converter()


def to_plain(value: Any) -> Any:
    """Namedtuple-ish objects from pygls -> plain dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: to_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def structure(value: Any, cls: type[T]) -> T:
    return converter.structure(to_plain(value) if value is not None else {}, cls)


def unstructure(value: Any) -> Any:
    return converter.unstructure(value)


def describe_error(exc: Exception) -> str:
    """A short message naming the bad key(s) of a cattrs validation error."""
    if isinstance(exc, cattrs.ClassValidationError):
        parts = []
        for sub, note in exc.group_exceptions():
            name = getattr(note, "name", None)
            parts.append(f"{name}: {sub}" if name else str(sub))
        return "; ".join(parts) or str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key(s): {', '.join(sorted(exc.extra_fields))}"
    return str(exc)
