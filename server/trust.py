"""Who may choose where code and credentials go: the user, never a cloned repository.

A workspace's own `lowentropy.toml` travels with the repository, so whoever wrote
it could point the server at their endpoint (`tab.endpoints`), make it send an
environment variable as a bearer token (`apiKeyEnv`), load a file of their choosing
(`modelPath`, `tokenizer`, `index.rerankModel`) or write the index and the prompts
somewhere else (`index.dbUri`, `index.cacheDir`, `recordPrompts`). Those keys are
honoured only from user-level configuration: the user's config file
(`$LOWENTROPY_CONFIG`, else `$XDG_CONFIG_HOME/lowentropy/config.toml`, else
`~/.config/lowentropy/config.toml`), the client's `initializationOptions` and
`workspace/didChangeConfiguration`, or from a workspace the user trusted by
listing it (or a folder above it) under `trustedWorkspaces` in that file.
Everything else in a workspace file (budgets, excludes, templates) applies as before.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "ROLE_KEYS",
    "SENSITIVE_KEYS",
    "UserConfig",
    "load_user_config",
    "strip_sensitive",
    "untrusted_message",
    "user_config_path",
]

ROLE_KEYS = ("tab", "nextEdit", "apply", "chat", "embed")
# Per role: where requests go, which secret they carry, which files get loaded.
_ROLE_SENSITIVE = ("endpoints", "apiKeyEnv", "modelPath", "tokenizer")
# Outside the roles: where the index and recorded prompts are written, what loads.
_OTHER_SENSITIVE = (("index", "dbUri"), ("index", "cacheDir"), ("index", "rerankModel"))
_TOP_SENSITIVE = ("recordPrompts",)
TRUST_KEY = "trustedWorkspaces"

SENSITIVE_KEYS: tuple[str, ...] = (
    *(f"{role}.{key}" for role in ROLE_KEYS for key in _ROLE_SENSITIVE),
    *(f"{a}.{b}" for a, b in _OTHER_SENSITIVE),
    *_TOP_SENSITIVE,
)


class UserConfigError(ValueError):
    """The user's config file is unreadable; the message names the file."""


@attrs.frozen(kw_only=True)
class UserConfig:
    """The user's config file: a settings document and the workspaces trusted with it all."""

    path: Path | None = None  # None when there is no file
    settings: dict[str, Any] | None = None  # same schema as lowentropy.toml
    trusted: tuple[Path, ...] = ()

    def trusts(self, root: Path) -> bool:
        """True when `root` (resolved) is a trusted folder or lies under one."""
        real = Path(os.path.realpath(root))
        return any(real == t or t in real.parents for t in self.trusted)


def user_config_path() -> Path:
    override = os.environ.get("LOWENTROPY_CONFIG")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lowentropy" / "config.toml"


def load_user_config(path: Path | None = None) -> UserConfig:
    """Read the user's config file; no file is an empty config. Raise UserConfigError."""
    path = path or user_config_path()
    if not path.is_file():
        return UserConfig()
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserConfigError(f"{path}: {exc}") from exc
    if isinstance(raw.get("lowentropy"), dict):
        raw = {**raw["lowentropy"], **{k: v for k, v in raw.items() if k != "lowentropy"}}
    trusted = raw.pop(TRUST_KEY, [])
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise UserConfigError(f"{path}: {TRUST_KEY} must be a list of folder paths")
    folders = tuple(Path(os.path.realpath(Path(t).expanduser())) for t in trusted)
    return UserConfig(path=path, settings=raw or None, trusted=folders)


def strip_sensitive(document: Any) -> tuple[Any, list[str]]:
    """`document` without the keys only the user may set, and the dotted names removed.

    A workspace may not extend trust either: its own `trustedWorkspaces` goes too."""
    if not isinstance(document, dict):
        return document, []
    out = dict(document)
    removed: list[str] = []
    for key in (*_TOP_SENSITIVE, TRUST_KEY):
        if key in out:
            del out[key]
            removed.append(key)
    sections: Iterable[tuple[str, tuple[str, ...]]] = [
        *((role, _ROLE_SENSITIVE) for role in ROLE_KEYS),
        ("index", tuple(b for a, b in _OTHER_SENSITIVE if a == "index")),
    ]
    for section, keys in sections:
        # TOML may spell a role in snake case too; settings only take camelCase.
        table = out.get(section)
        if not isinstance(table, dict):
            continue
        kept = {k: v for k, v in table.items() if k not in keys}
        removed.extend(f"{section}.{k}" for k in table if k in keys)
        out[section] = kept
    return out, removed


def untrusted_message(root: Path, removed: list[str], config: Path) -> str:
    keys = ", ".join(removed)
    return (
        f"lowentropy: ignored {keys} from {root / 'lowentropy.toml'}: a workspace's own file "
        "may not choose where code and credentials go. Set them in your user configuration "
        f"({config}) or trust this folder there with {TRUST_KEY} = [{str(root)!r}]."
    )


@attrs.frozen(kw_only=True)
class Sources:
    """Settings documents for one workspace, lowest first, and what to tell the user."""

    user: dict[str, Any] | None = None
    workspace: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


def settings_sources(root: Path | None, config_path: Path | None = None) -> Sources:
    """The user's settings and the workspace's `lowentropy.toml`, the latter without the
    sensitive keys unless the user trusts `root`; a bad file is left out with a warning."""
    from .settings import SettingsError, load_toml

    warnings: list[str] = []
    try:
        user = load_user_config(config_path)
    except UserConfigError as exc:
        user = UserConfig()
        warnings.append(f"lowentropy: your configuration is unreadable: {exc}")
    workspace = None
    if root is not None:
        try:
            workspace = load_toml(root)
        except SettingsError as exc:
            warnings.append(f"lowentropy: {exc}")
        if workspace is not None and not user.trusts(root):
            workspace, removed = strip_sensitive(workspace)
            if removed:
                warnings.append(untrusted_message(root, removed, user.path or user_config_path()))
    return Sources(user=user.settings, workspace=workspace, warnings=tuple(warnings))
