"""One error hierarchy for every backend, translated from httpx in one place.

BackendError                 (retryable: bool, user_message: str)
├── BackendUnavailable       connection refused, DNS, no healthy replica   retryable
├── BackendTimeout           connect/read/total timeout                    retryable
├── BackendStreamBroken      SSE stream cut or malformed midway            retryable
├── BackendHTTPError         a non-2xx status (5xx retryable, 4xx not)
└── BackendConfigError       bad model path, missing API key variable      not retryable
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx


class BackendError(Exception):
    retryable: bool = False

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        super().__init__(message)
        self.endpoint = endpoint

    @property
    def user_message(self) -> str:
        where = f" ({self.endpoint})" if self.endpoint else ""
        return f"{self}{where}"


class BackendUnavailable(BackendError):
    retryable = True


class BackendTimeout(BackendError):
    retryable = True


class BackendStreamBroken(BackendError):
    retryable = True


class BackendHTTPError(BackendError):
    def __init__(self, message: str, *, status: int, endpoint: str = "") -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status
        self.retryable = status >= 500 or status == 429


class BackendConfigError(BackendError):
    retryable = False


@contextlib.contextmanager
def map_httpx_errors(endpoint: str) -> Iterator[None]:
    """Translate httpx exceptions into the hierarchy above."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BackendTimeout(f"timed out: {type(exc).__name__}", endpoint=endpoint) from exc
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise BackendUnavailable(f"cannot connect: {exc}", endpoint=endpoint) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise BackendStreamBroken(f"stream broken: {exc}", endpoint=endpoint) from exc
    except httpx.HTTPStatusError as exc:
        raise BackendHTTPError(
            f"HTTP {exc.response.status_code}", status=exc.response.status_code, endpoint=endpoint
        ) from exc
    except httpx.TransportError as exc:
        raise BackendUnavailable(f"transport error: {exc}", endpoint=endpoint) from exc
