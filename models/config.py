"""Backend configuration for one role; `server/settings.py` builds these from LSP settings."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class Timeouts:
    connect: float = 2.0
    read: float = 10.0
    # Whole request, first byte to last; the pool gives up on a replica past it.
    total: float = 30.0


@attrs.frozen(kw_only=True)
class EndpointConfig:
    url: str  # base URL, e.g. http://127.0.0.1:8000 (with or without /v1)
    model: str = ""  # model name sent in requests; empty = server default
    # OpenAI/Fireworks accept a `prediction` draft for speculative decoding; vLLM does not.
    supports_prediction: bool = False


@attrs.frozen(kw_only=True)
class RoleConfig:
    """Where one role (tab, nextEdit, apply, chat, embed) generates.

    No endpoints means the embedded llama.cpp engine with `model_path`
    (None = the packaged default, Qwen2.5-Coder-0.5B-Instruct; `LOWENTROPY_DEFAULT_MODEL`
    names another packaged model).
    """

    endpoints: tuple[EndpointConfig, ...] = ()
    model: str = ""
    model_path: str | None = None
    api_key_env: str | None = (
        None  # name of the environment variable; the key itself is never stored
    )
    timeouts: Timeouts = Timeouts()
    template: str | None = None  # FIM/apply template name; None = from the model name
    tokenizer: str | None = None  # GGUF path whose vocabulary counts tokens for HTTP backends
    max_tokens: int = 64
    temperature: float = 0.0
    # The pool takes a replica out after this many consecutive failures
    # and probes it back in after `probe_interval` seconds.
    failure_threshold: int = 2
    probe_interval: float = 5.0
    # How the pool spreads requests over endpoints (models/pool.py): "affinity" (the least
    # loaded of the stable prefix's first `affinity_choices` rendezvous replicas),
    # "round_robin" or "least_loaded".
    routing: str = "affinity"
    affinity_choices: int = 1
    n_ctx: int = 4096
    n_threads: int | None = None

    @property
    def embedded(self) -> bool:
        return not self.endpoints
