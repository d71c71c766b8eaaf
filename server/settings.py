"""Settings in two layers: the wire schema (camelCase, all optional) and resolved settings.

Sources, later ones win: defaults < the user's config file < `lowentropy.toml` in
the workspace root (without the keys that send data or load files unless the user
trusts the workspace: `trust.py`) < `initializationOptions` <
`workspace/didChangeConfiguration`. All use the same schema (under the
`lowentropy` key in LSP messages, top level in the TOML files).
An invalid document raises `SettingsError` naming the bad key; the caller keeps
the last good settings and tells the user.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

import attrs

from lowentropy.models.config import EndpointConfig, RoleConfig
from lowentropy.models.pool import ROUTINGS
from lowentropy.models.types import ROLES, Role

from .wire import STRUCTURE_ERRORS, camel, converter, describe_error


class SettingsError(ValueError):
    """Invalid configuration; the message names the bad key."""


# ---- wire schema: every field optional --------------------------------------------------


@attrs.define(kw_only=True)
class WireEndpoint:
    url: str
    model: str | None = None
    supports_prediction: bool | None = None


@attrs.define(kw_only=True)
class WireTimeouts:
    connect: float | None = None
    read: float | None = None
    total: float | None = None


@attrs.define(kw_only=True)
class WireRole:
    endpoints: list[WireEndpoint] | None = None
    model: str | None = None
    model_path: str | None = None
    api_key_env: str | None = None
    timeouts: WireTimeouts | None = None
    template: str | None = None
    tokenizer: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    failure_threshold: int | None = None
    probe_interval: float | None = None
    routing: str | None = None  # the pool's: affinity | round_robin | least_loaded
    affinity_choices: int | None = None
    n_ctx: int | None = None
    n_threads: int | None = None


@attrs.define(kw_only=True)
class WireCompletion:
    context_tokens: int | None = None
    max_lines: int | None = None
    multiline: bool | None = None
    prefetch: bool | None = None
    warm_delay_ms: int | None = None
    budget_ms: int | None = None
    enabled: bool | None = None


@attrs.define(kw_only=True)
class WireIndex:
    enabled: bool | None = None
    db_uri: str | None = None
    cache_dir: str | None = None
    exclude: list[str] | None = None
    sync_delay_ms: int | None = None
    rerank_model: str | None = None
    rerank_top: int | None = None


@attrs.define(kw_only=True)
class WireChatContext:
    tokens: int | None = None
    max_chunks: int | None = None


@attrs.define(kw_only=True)
class WireSettings:
    tab: WireRole | None = None
    next_edit: WireRole | None = None
    apply: WireRole | None = None
    chat: WireRole | None = None
    embed: WireRole | None = None
    completion: WireCompletion | None = None
    index: WireIndex | None = None
    chat_context: WireChatContext | None = None
    record_prompts: str | None = None
    apply_budget_ms: int | None = None


# ---- resolved settings -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CompletionOptions:
    enabled: bool = True
    context_tokens: int = 1024  # prompt budget for Tab, output reserve included
    max_lines: int = 8  # a multi-line suggestion never runs longer
    multiline: bool = True
    prefetch: bool = True
    warm_delay_ms: int = 400  # warm the cache after this long without typing
    # A suggestion later than this is worth less than none: the request answers empty and
    # the generation finishes in the background (its KV cache and its result are kept).
    budget_ms: int = 1200


# Answers differ in length by role: a Tab suggestion is a few lines, a chat
# answer a few paragraphs, an apply rewrite a whole region.
ROLE_DEFAULTS: dict[Role, RoleConfig] = {
    **{r: RoleConfig() for r in ROLES},
    "chat": RoleConfig(max_tokens=384),
    "apply": RoleConfig(max_tokens=2048),
    "nextEdit": RoleConfig(max_tokens=256),
}


@attrs.frozen(kw_only=True)
class IndexOptions:
    enabled: bool = True
    db_uri: str | None = None  # any LanceDB URI; None = a folder in the user's cache dir
    cache_dir: str | None = None  # parent of the per-workspace state folders
    exclude: tuple[str, ...] = ()  # gitignore-style patterns, relative to the root
    sync_delay_ms: int = 1500  # quiet time after the last change before a path is re-synced
    # Folder of a sentence-transformers CrossEncoder that reorders the head of each
    # search (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2, downloaded); None = no rerank.
    rerank_model: str | None = None
    rerank_top: int = 20  # fused hits the cross-encoder scores (one model pass each)


@attrs.frozen(kw_only=True)
class ChatContextOptions:
    tokens: int = 2048  # prompt budget for codebase chat, answer reserve included
    max_chunks: int = 8  # retrieved chunks offered to the prompt (priority decides the rest)


@attrs.frozen(kw_only=True)
class Settings:
    roles: dict[Role, RoleConfig] = attrs.field(factory=lambda: dict(ROLE_DEFAULTS))
    completion: CompletionOptions = CompletionOptions()
    index: IndexOptions = IndexOptions()
    chat_context: ChatContextOptions = ChatContextOptions()
    record_prompts: str | None = None
    # How long an apply request may take before it answers, unless the client asks to wait:
    # a model rewrite that cannot finish in it is refused (server/apply/budget.py). A miss
    # must come back in < 2 s; placing the sketch and the round trip take the rest.
    apply_budget_ms: int = 1500

    def role(self, role: Role) -> RoleConfig:
        return self.roles[role]


_ROLE_KEYS: dict[Role, str] = {
    "tab": "tab",
    "nextEdit": "next_edit",
    "apply": "apply",
    "chat": "chat",
    "embed": "embed",
}


T = TypeVar("T")


def _set(obj: T, **changes: Any) -> T:
    """`attrs.evolve` with only the changes that were given (not None)."""
    return attrs.evolve(obj, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[misc]


def _resolve_role(base: RoleConfig, wire: WireRole | None) -> RoleConfig:
    if wire is None:
        return base
    endpoints = None
    if wire.endpoints is not None:
        endpoints = tuple(
            EndpointConfig(
                url=e.url,
                model=e.model or wire.model or "",
                supports_prediction=bool(e.supports_prediction),
            )
            for e in wire.endpoints
        )
    timeouts = base.timeouts
    if wire.timeouts is not None:
        timeouts = _set(
            timeouts,
            connect=wire.timeouts.connect,
            read=wire.timeouts.read,
            total=wire.timeouts.total,
        )
    if wire.routing is not None and wire.routing not in ROUTINGS:
        raise SettingsError(f"routing: one of {', '.join(ROUTINGS)}, got {wire.routing!r}")
    for name in ("max_tokens", "failure_threshold", "affinity_choices", "n_ctx", "n_threads"):
        value = getattr(wire, name)
        if value is not None and value <= 0:
            raise SettingsError(f"{camel(name)}: must be a positive integer, got {value}")
    return _set(
        base,
        endpoints=endpoints,
        model=wire.model,
        model_path=wire.model_path,
        api_key_env=wire.api_key_env,
        timeouts=timeouts,
        template=wire.template,
        tokenizer=wire.tokenizer,
        max_tokens=wire.max_tokens,
        temperature=wire.temperature,
        failure_threshold=wire.failure_threshold,
        probe_interval=wire.probe_interval,
        routing=wire.routing,
        affinity_choices=wire.affinity_choices,
        n_ctx=wire.n_ctx,
        n_threads=wire.n_threads,
    )


def _check_apply_format(name: str | None) -> None:
    """The apply role's `template` names an apply prompt format, not a FIM template."""
    from lowentropy.prompts.apply import apply_format_names

    if name is not None and name not in apply_format_names():
        known = ", ".join(apply_format_names())
        raise SettingsError(f"apply.template: unknown apply format {name!r} (known: {known})")


def parse_wire(raw: Any) -> WireSettings:
    """Structure one raw settings document; raise SettingsError naming the bad key."""
    if raw is None:
        return WireSettings()
    if not isinstance(raw, dict):
        raise SettingsError(f"settings must be an object, got {type(raw).__name__}")
    try:
        return converter.structure(raw, WireSettings)
    except STRUCTURE_ERRORS as exc:
        raise SettingsError(describe_error(exc)) from exc


def resolve(*documents: Any, base: Settings | None = None) -> Settings:
    """Apply raw settings documents in order over `base` (defaults when None)."""
    settings = base or Settings()
    for raw in documents:
        wire = parse_wire(raw)
        roles = dict(settings.roles)
        for role, key in _ROLE_KEYS.items():
            try:
                roles[role] = _resolve_role(roles[role], getattr(wire, key))
            except SettingsError as exc:
                raise SettingsError(f"{role}.{exc}") from exc
        _check_apply_format(roles["apply"].template)
        completion = settings.completion
        if wire.completion is not None:
            c = wire.completion
            if c.budget_ms is not None and c.budget_ms <= 0:
                raise SettingsError(f"completion.budgetMs: must be positive ({c.budget_ms})")
            if c.context_tokens is not None and c.context_tokens < 64:
                raise SettingsError(f"completion.contextTokens: too small ({c.context_tokens})")
            completion = _set(
                completion,
                enabled=c.enabled,
                context_tokens=c.context_tokens,
                max_lines=c.max_lines,
                multiline=c.multiline,
                prefetch=c.prefetch,
                warm_delay_ms=c.warm_delay_ms,
                budget_ms=c.budget_ms,
            )
        if wire.apply_budget_ms is not None and wire.apply_budget_ms <= 0:
            raise SettingsError(f"applyBudgetMs: must be positive ({wire.apply_budget_ms})")
        settings = Settings(
            roles=roles,
            completion=completion,
            index=_resolve_index(settings.index, wire.index),
            chat_context=_resolve_chat_context(settings.chat_context, wire.chat_context),
            record_prompts=wire.record_prompts or settings.record_prompts,
            apply_budget_ms=wire.apply_budget_ms or settings.apply_budget_ms,
        )
    return settings


def _resolve_index(base: IndexOptions, wire: WireIndex | None) -> IndexOptions:
    if wire is None:
        return base
    if wire.sync_delay_ms is not None and wire.sync_delay_ms < 0:
        raise SettingsError(f"index.syncDelayMs: must be >= 0, got {wire.sync_delay_ms}")
    if wire.rerank_top is not None and wire.rerank_top < 1:
        raise SettingsError(f"index.rerankTop: must be >= 1, got {wire.rerank_top}")
    rerank_model = wire.rerank_model
    if rerank_model is not None:
        if not rerank_model.strip():
            rerank_model = ""  # an empty string switches a configured reranker off
        else:
            folder = Path(rerank_model).expanduser()
            if not (folder / "config.json").is_file():
                raise SettingsError(
                    f"index.rerankModel: {rerank_model} is not a model folder (no config.json); "
                    "give the folder of a sentence-transformers CrossEncoder (models load "
                    "offline, never from the network)"
                )
            rerank_model = str(folder.resolve())
    return _set(
        base,
        enabled=wire.enabled,
        db_uri=wire.db_uri,
        cache_dir=wire.cache_dir,
        exclude=tuple(wire.exclude) if wire.exclude is not None else None,
        sync_delay_ms=wire.sync_delay_ms,
        rerank_model=rerank_model,
        rerank_top=wire.rerank_top,
    )


def _resolve_chat_context(
    base: ChatContextOptions, wire: WireChatContext | None
) -> ChatContextOptions:
    if wire is None:
        return base
    if wire.tokens is not None and wire.tokens < 256:
        raise SettingsError(f"chatContext.tokens: too small ({wire.tokens})")
    if wire.max_chunks is not None and wire.max_chunks < 0:
        raise SettingsError(f"chatContext.maxChunks: must be >= 0, got {wire.max_chunks}")
    return _set(base, tokens=wire.tokens, max_chunks=wire.max_chunks)


def load_toml(root: Path) -> dict[str, Any] | None:
    """The workspace's `lowentropy.toml`, or None when there is none."""
    path = root / "lowentropy.toml"
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"lowentropy.toml: {exc}") from exc


def unwrap(raw: Any) -> Any:
    """Accept both `{lowentropy: {...}}` and the bare document."""
    if isinstance(raw, dict) and "lowentropy" in raw:
        return raw["lowentropy"]
    return raw
