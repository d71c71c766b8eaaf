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
from lsprotocol import converters as lsp_converters

T = TypeVar("T")

_CAMEL = re.compile(r"_([a-z])")


def camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)

    def structure_factory(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {
            a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)
        }
        return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True, **overrides)

    def unstructure_factory(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {
            a.name: override(rename=camel(a.name), omit_if_default=False) for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **overrides)

    # JSON has real booleans and numbers: "yes" is not a bool, "5" is not an int.
    def strict(kind: type[Any]) -> Any:
        def hook(value: Any, _: Any) -> Any:
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                raise ValueError(f"expected {kind.__name__}, got {value!r}")
            return kind(value)

        return hook

    for kind in (bool, int, float, str):
        conv.register_structure_hook(kind, strict(kind))

    # A string is not a list of its characters.
    def is_list(tp: Any) -> bool:
        return getattr(tp, "__origin__", None) is list

    def structure_list(value: Any, tp: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        (item,) = tp.__args__
        return [conv.structure(v, item) for v in value]

    conv.register_structure_hook_func(is_list, structure_list)
    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)

    # LSP's own types inside ours (a Location, a WorkspaceEdit) are written the way
    # lsprotocol writes them (its field aliases, its omitted defaults). Registered last,
    # so it wins over the attrs factory above.
    lsp = lsp_converters.get_converter()
    conv.register_structure_hook_func(_is_lsp_type, lsp.structure)
    conv.register_unstructure_hook_func(_is_lsp_type, lsp.unstructure)
    return conv


def _is_lsp_type(tp: Any) -> bool:
    return isinstance(tp, type) and tp.__module__ == "lsprotocol.types"


converter = _make_converter()

# What structuring bad input raises (cattrs' errors, and our strict hooks' ValueError;
# TypeError from a wrong shape): callers turn these into a message naming the bad key.
STRUCTURE_ERRORS = (
    cattrs.BaseValidationError,
    cattrs.ForbiddenExtraKeysError,
    ValueError,
    TypeError,
)


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
    plain = to_plain(value) if value is not None else {}
    if plain == []:  # an empty Lua table (Neovim) or an empty array: no params
        plain = {}
    return converter.structure(plain, cls)


def unstructure(value: Any) -> Any:
    return converter.unstructure(value)


def describe_error(exc: Exception) -> str:
    """A short message naming the bad key(s) in wire spelling, e.g. `... @ settings.tab.maxTokens`."""
    if isinstance(exc, (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError)):
        messages = [
            _SNAKE_IN_PATH.sub(lambda m: m.group(1) + camel(m.group(2)), msg)
            for msg in cattrs.transform_error(exc, path="settings")
        ]
        return "; ".join(messages[:3]) or str(exc)
    return str(exc)


_SNAKE_IN_PATH = re.compile(r"([.@ ])([a-z]+(?:_[a-z]+)+)")
