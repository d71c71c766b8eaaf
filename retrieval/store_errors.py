"""One clear sentence when the index database cannot be reached.

LanceDB reports an object store failure as the Rust error's debug dump
(kilobytes of `RetryError { ... }`). A user needs three things from it: which
URI, what went wrong (no such bucket, access denied, no connection) and where
the credentials come from.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

__all__ = ["StoreUnavailableError", "describe_store_failure", "store_errors"]

# Where each object store takes its credentials and endpoint from (LanceDB reads
# the standard variables of each cloud's SDK).
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION, plus AWS_ENDPOINT "
    "for MinIO, R2 or another S3-compatible server (and AWS_ALLOW_HTTP=true for http://)",
    "gs": "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS",
    "az": "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY",
}
_SCHEME_STORE = {"s3": "s3", "s3+ddb": "s3", "gs": "gs", "az": "az", "abfs": "az", "abfss": "az"}
_MAX_DETAIL = 200


class StoreUnavailableError(RuntimeError):
    """The index database at a URI could not be opened or written."""

    def __init__(self, uri: str, cause: str) -> None:
        super().__init__(describe_store_failure(uri, cause))
        self.uri = uri


def describe_store_failure(uri: str, cause: str) -> str:
    message = f"cannot use the index database {uri}: {_summary(cause)}"
    store = _SCHEME_STORE.get(urlsplit(uri).scheme)
    if store is not None:
        message += f". Credentials and endpoint come from {_CREDENTIALS[store]}"
    return message


@contextlib.contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """Turns a database failure inside the block into a StoreUnavailableError."""
    try:
        yield
    except Exception as exc:
        raise StoreUnavailableError(uri, str(exc) or type(exc).__name__) from exc


def _summary(text: str) -> str:
    """The gist of an object store error: the failed connection, or status and code."""
    if "kind: Connect" in text or "error trying to connect" in text:
        endpoint = re.search(r"uri: Some\((\w+://[^/)\s]+)", text)
        return f"could not connect to {endpoint.group(1) if endpoint else 'the endpoint'}"
    status = re.search(r"status: (\d{3})", text)
    code = re.search(r"<Code>([^<]+)</Code>", text)
    if status or code:
        parts = [f"HTTP {status.group(1)}" if status else "", code.group(1) if code else ""]
        return " ".join(p for p in parts if p)
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return first if len(first) <= _MAX_DETAIL else first[: _MAX_DETAIL - 1] + "…"
