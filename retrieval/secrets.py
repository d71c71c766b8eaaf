"""Keep secrets out of the index and out of prompts.

Two checks, both cheap and conservative: `is_secret_path` looks at a file's
name (dotenv files, keys, credential files) and `contains_secret` at its text
(private-key blocks, well-known token shapes, high-entropy values assigned to
secret-sounding names). A file that fails either is never read into the index.

`find_secrets` also finds weaker signs that are worth hiding but not worth losing
a whole file over: the password in a URL (`postgres://user:PASSWORD@host/db`) and
any literal assigned to a password-named variable (`password = "hunter2"`).
`mask_secrets` overwrites every span it finds with `*` of the same length (line
breaks kept, so ranges stay true): the index stores masked text, and the server
masks every prompt it sends (`server/redaction.py`).

Hand-written regexes rather than detect-secrets: that library scans line by line
through a plugin registry configured by global state, several times slower than
the one pass here, which runs on every prompt.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import PurePath

__all__ = ["contains_secret", "find_secrets", "is_secret_path", "mask_secrets", "redact_secrets"]

# Matched against the file name, lower-cased.
_SECRET_NAME = re.compile(
    r"""^(?:
        \.env(?:\..*)?            # .env, .env.local, .env.production
      | .*\.env
      | .*\.(?:pem|key|p12|pfx|jks|keystore|kdbx|ppk|asc|gpg|ovpn)
      | id_(?:rsa|dsa|ecdsa|ed25519)(?:\..*)?
      | \.?netrc | _netrc
      | \.npmrc | \.pypirc | \.pgpass | \.git-credentials | \.dockercfg
      | \.htpasswd
      | credentials(?:[._-].*)?\.(?:json|ya?ml|xml|ini|toml)
      | credentials
      | .*service[-_]?account.*\.json
      | client[-_]secrets?.*\.json
      | secrets?\.(?:json|ya?ml|toml|ini|env)
    )$""",
    re.VERBOSE,
)
# Directories whose every file is a credential (~/.ssh, ~/.aws, ~/.gnupg).
_SECRET_DIRS = frozenset({".ssh", ".aws", ".gnupg", ".docker"})

# Token shapes that are secrets whatever their surroundings, in one pass.
_TOKENS = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"|\b(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|sk-(?:proj-|ant-|live-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{20,}"  # Stripe
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|npm_[A-Za-z0-9]{36}"
    r")\b"
)

# Quoted literals long enough to be a secret; scanning for these first and
# checking the name before them is ~10x faster than one case-insensitive regex.
_LITERAL = re.compile(r"""(["'])([^"'\s]{16,200})\1""")
# A secret-sounding name just before the literal: `API_KEY = "`, `"token": "`.
_SECRET_NAME_BEFORE = re.compile(
    r"(?i)(?:secret|token|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|auth[_-]?key|credential)[A-Za-z0-9_-]*[\"']?\s*(?::=|=|:)\s*$"
)
# Unquoted `NAME=value` / `name: value` lines, as in dotenv, YAML and INI files.
_BARE_ASSIGNMENT = re.compile(
    r"(?m)^[ \t]*(?:export[ \t]+)?([\w.-]+)[ \t]*[:=][ \t]*([\w+/=.~-]{16,200})[ \t]*$"
)
_SECRET_WORD = re.compile(
    r"(?i)secret|token|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key"
    r"|credential"
)
# A whole private-key block, for masking (the header alone already flags the text).
_KEY_BLOCK = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)",
    re.S,
)
# The password of a URL's userinfo: scheme://user:PASSWORD@host.
_URL_PASSWORD = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:([^\s/@'\"]+)@")
# A literal assigned to a password-named variable or key, whatever it looks like.
_PASSWORD_NAME = r"(?:passw(?:or)?d|passwd|pwd|passphrase|_pass)(?:s|\d)?"
_PASSWORD_LITERAL = re.compile(
    rf"(?i){_PASSWORD_NAME}[\"']?[ \t]*(?::=|=|:)[ \t]*([\"'])([^\"'\n]{{1,200}})\1"
)
# The same unquoted, alone on its line as in dotenv, YAML and INI files (`DB_PASS: s3cr3t`).
_PASSWORD_LINE = re.compile(
    rf"(?im)^[ \t]*(?:export[ \t]+)?[\w.-]*{_PASSWORD_NAME}[ \t]*[:=][ \t]*"
    r"([^\s\"'#]{1,200})[ \t]*$"
)
# An unquoted value that is a name or a call is code (`password = self.password`).
_CODE_VALUE = re.compile(r"[A-Za-z_]+(?:\.[A-Za-z_]\w*)*|.*[()\[\]{}].*")
# Values that only stand for a password: templates, environment lookups, masks.
_PLACEHOLDER = re.compile(r"^(?:[<{$%*].*|.*[}>]|\*+|x+|\.\.\.|none|null|true|false)$", re.I)
_NAME_LIKE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z]{2,}(?:_[A-Za-z]{2,})+")
_MIN_ENTROPY_BITS = 3.5  # bits per character; English words and paths stay below


def is_secret_path(path: str | PurePath) -> bool:
    """True for files that hold credentials by their name alone."""
    p = PurePath(path)
    if _SECRET_NAME.match(p.name.lower()):
        return True
    return any(part in _SECRET_DIRS for part in p.parts[:-1])


def _entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(value: str) -> bool:
    """High entropy and a mix of character classes, unlike identifiers or prose."""
    if _entropy(value) < _MIN_ENTROPY_BITS:
        return False
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )
    if classes < 2:
        return False
    # Placeholders such as "<your-api-key-here>" or "${TOKEN}" are not secrets.
    if re.search(r"[<>{}$%]|x{6,}|your|example|placeholder|changeme", value, re.I):
        return False
    # Names, not values: `settings.API_TOKEN`, `DEFAULT_AUTH_TOKEN_NAME`.
    return not _NAME_LIKE.fullmatch(value)


def _secret_assignments(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for m in _LITERAL.finditer(text):
        value = m.group(2)
        if not _looks_random(value):
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        before = text[max(line_start, m.start() - 80) : m.start()]
        if _SECRET_NAME_BEFORE.search(before):
            spans.append(m.span(2))
    for m in _BARE_ASSIGNMENT.finditer(text):
        if _SECRET_WORD.search(m.group(1)) and _looks_random(m.group(2)):
            spans.append(m.span(2))
    return spans


def _weak_secrets(text: str) -> list[tuple[int, int]]:
    """Passwords in URLs and password-named literals: masked, but no reason to skip a file."""
    spans: list[tuple[int, int]] = []
    if "://" in text:
        spans.extend(
            m.span(1) for m in _URL_PASSWORD.finditer(text) if not _PLACEHOLDER.match(m[1])
        )
    spans.extend(
        m.span(2) for m in _PASSWORD_LITERAL.finditer(text) if not _PLACEHOLDER.match(m[2])
    )
    spans.extend(
        m.span(1)
        for m in _PASSWORD_LINE.finditer(text)
        if not _PLACEHOLDER.match(m[1]) and not _CODE_VALUE.fullmatch(m[1])
    )
    return spans


def find_secrets(text: str) -> list[tuple[int, int]]:
    """Character spans of secret-looking strings in `text` (weak signs included)."""
    spans = [m.span() for m in _TOKENS.finditer(text)] + _secret_assignments(text)
    if "PRIVATE KEY" in text:
        spans.extend(m.span() for m in _KEY_BLOCK.finditer(text))
    spans = sorted(spans + _weak_secrets(text))
    merged: list[tuple[int, int]] = []
    for start, end in spans:  # a token may also be an assigned value: one span
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def contains_secret(text: str) -> bool:
    """True when `text` holds a private key, a known token shape or a random secret value."""
    return _TOKENS.search(text) is not None or bool(_secret_assignments(text))


def redact_secrets(text: str, replacement: str = "[REDACTED]") -> str:
    """`text` with every secret-looking span replaced, for prompts built from open buffers."""
    out: list[str] = []
    last = 0
    for start, end in find_secrets(text):
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


def mask_secrets(text: str) -> str:
    """`text` with every secret-looking span overwritten by `*` of the same length.

    Line breaks stay, so offsets, lines and ranges computed on the result are true
    of the original: the index stores this text, and every prompt goes out so."""
    spans = find_secrets(text)
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(re.sub(r"[^\r\n]", "*", text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)
