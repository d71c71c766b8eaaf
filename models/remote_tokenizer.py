"""Token counting for HTTP backends, synchronous (the server calls it from a worker thread).

In order of preference:
1. `RoleConfig.tokenizer` names a GGUF: count with its vocabulary (llama.cpp, vocab only).
2. The endpoint's tokenize route: `/tokenize` (vLLM `{"prompt"}`, llama.cpp server
   `{"content"}`, one request serves both) or llama-cpp-python's `/extras/tokenize`
   (`{"input"}`), cached by text. Servers that add BOS are calibrated once by
   tokenizing the empty string, so counts are of the text alone.
3. Nothing answers: characters / 4, `exact = False`, one warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import attrs
import httpx

from lowentropy.models.config import EndpointConfig, RoleConfig
from lowentropy.models.errors import BackendConfigError, BackendError, map_httpx_errors
from lowentropy.models.http_backend import api_root, auth_headers

log = logging.getLogger(__name__)

ESTIMATE = "estimate"
GGUF = "gguf"


@attrs.frozen
class TokenizeRoute:
    path: str
    body_key: str  # where the text goes; the others are added by `tokenize_body`


ROUTES: tuple[TokenizeRoute, ...] = (
    TokenizeRoute("/tokenize", "prompt"),
    TokenizeRoute("/extras/tokenize", "input"),
)


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def tokenize_body(route: TokenizeRoute, text: str, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {route.body_key: text}
    if route.path == "/tokenize":
        # llama.cpp's server reads "content"; vLLM adds BOS unless told not to.
        body["content"] = text
        body["add_special_tokens"] = False
    if model:
        body["model"] = model
    return body


def parse_count(payload: Any) -> int | None:
    if not isinstance(payload, dict):
        return None
    count = payload.get("count")
    if isinstance(count, int):
        return count
    tokens = payload.get("tokens")
    if isinstance(tokens, list):
        return len(tokens)
    return None


class _LruCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> int | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: int) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


class RemoteTokenizer:
    """A `Tokenizer` for one HTTP endpoint. `exact` is optimistic until the first count."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        role: RoleConfig,
        *,
        cache_size: int = 1024,
        client: httpx.Client | None = None,
        retry_interval: float = 30.0,
    ) -> None:
        self._root = api_root(endpoint.url)
        self._model = endpoint.model or role.model
        self._api_key_env = role.api_key_env
        self._cache = _LruCache(cache_size)
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._route: TokenizeRoute | None = None
        self._overhead = 0
        self._source = ""  # "", GGUF, a route path, or ESTIMATE
        self._retry_at = 0.0
        self._warned = False
        self._llama: Any = None
        self._owns_client = client is None
        self._client = client
        if role.tokenizer:
            self._llama = _load_vocab(role.tokenizer)
            self._source = GGUF
        elif client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(role.timeouts.read, connect=role.timeouts.connect)
            )

    @property
    def exact(self) -> bool:
        return self._source != ESTIMATE

    @property
    def source(self) -> str:
        """How counts are made: "gguf", a route path, "estimate" ("" = not known yet)."""
        return self._source

    def count(self, text: str) -> int:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        if self._llama is not None:
            with self._lock:  # one llama context; tokenize is not documented thread-safe
                n = len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))
            self._cache.put(text, n)
            return n
        route = self._route or self._discover()
        if route is None:
            return estimate_tokens(text)
        try:
            raw = self._remote_count(route, text)
        except BackendError as exc:
            log.debug("tokenize via %s failed (%s); estimating", self._root, exc)
            return estimate_tokens(text)
        if raw is None:
            return estimate_tokens(text)
        n = max(0, raw - self._overhead)
        self._cache.put(text, n)
        return n

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()

    # -- discovery and I/O

    def _discover(self) -> TokenizeRoute | None:
        with self._lock:
            if self._route is not None:
                return self._route
            if self._source == ESTIMATE and time.monotonic() < self._retry_at:
                return None
            unreachable = False
            for route in ROUTES:
                try:
                    empty = self._remote_count(route, "")
                except BackendError as exc:
                    # Unreachable is not "no route": try again later.
                    unreachable = True
                    reason = exc.user_message
                    break
                if empty is not None:
                    self._route, self._overhead, self._source = route, empty, route.path
                    log.info("counting tokens via %s%s", self._root, route.path)
                    return route
            else:
                reason = "no tokenize route answered"
            self._source = ESTIMATE
            self._retry_at = (
                time.monotonic() + self._retry_interval if unreachable else float("inf")
            )
            if not self._warned:
                self._warned = True
                log.warning(
                    "token counts for %s are estimates (characters / 4): %s", self._root, reason
                )
            return None

    def _remote_count(self, route: TokenizeRoute, text: str) -> int | None:
        """POST one tokenize request; None when the route is absent or answers oddly."""
        assert self._client is not None
        try:
            headers = auth_headers(self._api_key_env)
        except BackendConfigError:
            return None
        with map_httpx_errors(self._root):
            response = self._client.post(
                self._root + route.path,
                json=tokenize_body(route, text, self._model),
                headers=headers,
            )
        if response.status_code != 200:
            return None
        try:
            return parse_count(response.json())
        except ValueError:
            return None


def _load_vocab(path: str) -> Any:
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - a base dependency
        raise BackendConfigError("llama-cpp-python is needed to read a GGUF tokenizer") from exc
    try:
        return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    except (ValueError, OSError, RuntimeError) as exc:
        raise BackendConfigError(f"cannot read the tokenizer GGUF {path}: {exc}") from exc
