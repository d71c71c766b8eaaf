"""Generation and embedding backends: the embedded llama.cpp engine, OpenAI-compatible HTTP
replicas and the pool over them. Knows nothing of LSP.

Heavy modules (llama_cpp, torch) load on first use: import `lowentropy.models.embedded`
or `lowentropy.models.pool` directly when you need them.
"""

from .config import EndpointConfig, RoleConfig, Timeouts
from .errors import (
    BackendConfigError,
    BackendError,
    BackendHTTPError,
    BackendStreamBroken,
    BackendTimeout,
    BackendUnavailable,
)
from .types import (
    ROLES,
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Embedder,
    Generator,
    Role,
    Tokenizer,
)

__all__ = [
    "ROLES",
    "BackendConfigError",
    "BackendError",
    "BackendHTTPError",
    "BackendStreamBroken",
    "BackendTimeout",
    "BackendUnavailable",
    "ChatMessage",
    "ChatRequest",
    "CompletionRequest",
    "Embedder",
    "EndpointConfig",
    "Generator",
    "Role",
    "RoleConfig",
    "Timeouts",
    "Tokenizer",
]
