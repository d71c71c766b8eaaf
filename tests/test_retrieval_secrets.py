"""Secrets never reach the index or a prompt: names, token shapes, random assigned values."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from lowentropy.retrieval import (
    contains_secret,
    find_secrets,
    is_secret_path,
    mask_secrets,
    redact_secrets,
)

# Built at run time so no scanner flags this file itself.
FAKE_GITHUB = "ghp_" + "a1B2c3D4e5" * 4
FAKE_OPENAI = "sk-" + "proj-" + "Zq8xR2mP4tL6vN1kW3yH5jB7"
FAKE_AWS = "AKIA" + "IOSFODNN7QWERTY2"
PRIVATE_KEY = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        "config/.env.production",
        "certs/server.pem",
        "tls/server.key",
        "home/.ssh/id_rsa",
        "id_ed25519.pub",
        ".netrc",
        ".npmrc",
        ".pypirc",
        "credentials.json",
        "gcp/credentials-prod.json",
        "home/.aws/credentials",
        "keys/service-account-prod.json",
        "secrets.yaml",
    ],
)
def test_secret_paths(path: str) -> None:
    assert is_secret_path(path)


@pytest.mark.parametrize(
    "path", ["src/secrets.py", "env.py", "keyboard.py", "docs/keys.md", "README.md", "tokens.rs"]
)
def test_ordinary_paths(path: str) -> None:
    assert not is_secret_path(path)


@pytest.mark.parametrize(
    "text",
    [
        PRIVATE_KEY,
        f'AWS_ACCESS_KEY_ID = "{FAKE_AWS}"',
        f"token = '{FAKE_GITHUB}'",
        f"OPENAI_API_KEY={FAKE_OPENAI}",
        'api_key: "9fQ2xLr7TzPq81mWbNc4"',
        '{"client_secret": "aB3dE5gH7jK9mN1pQ3sT"}',
        "DB_PASSWORD=Zx81kPq0rTw93LmNaV",
    ],
)
def test_secret_text(text: str) -> None:
    assert contains_secret(text)
    redacted = redact_secrets(text)
    assert "[REDACTED]" in redacted
    assert not contains_secret(redacted)


@pytest.mark.parametrize(
    "text",
    [
        'api_key = "<your-api-key-here>"',
        "api_key = os.environ['OPENAI_API_KEY']",
        'name = "some_long_identifier_name"',
        "token_count = compute_tokens(text, model_name)",
        'SECRET_KEY = "xxxxxxxxxxxxxxxxxxxxxxxx"',
    ],
)
def test_ordinary_text(text: str) -> None:
    assert not contains_secret(text)
    assert redact_secrets(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('password = "hunter2"', "hunter2"),
        ('DATABASE_URL = "postgres://app:pw4orders@db/app"', "pw4orders"),
        ("DB_PASS: s3cr3tpw", "s3cr3tpw"),
    ],
)
def test_weak_secrets_are_masked_but_keep_the_file(text: str, secret: str) -> None:
    """Short passwords and URL passwords: not worth losing a file from the index over."""
    assert not contains_secret(text)
    masked = mask_secrets(text)
    assert secret not in masked and len(masked) == len(text)


def test_find_secrets_spans_point_at_the_value() -> None:
    text = f"first line\nGITHUB_TOKEN = '{FAKE_GITHUB}'\n"
    (span,) = find_secrets(text)
    assert text[span[0] : span[1]] == FAKE_GITHUB


def test_standard_library_has_no_false_positives() -> None:
    """Every .py file of the standard library is ordinary code: none is flagged."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    flagged = []
    count = 0
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        count += 1
        if contains_secret(text):
            flagged.append(str(path.relative_to(stdlib)))
    assert count > 500
    assert flagged == []
