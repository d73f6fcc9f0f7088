"""Keep secrets out of everything written down: logs, traces, failure records, summaries, reports, checkpoints.

A server may echo credentials in an error body (`401 ... Bearer sk-...`). Every error text that leaves a backend goes
through `redact()`, which removes any registered secret (clients register their API key on construction) and anything
shaped like a credential: `Bearer <token>`, `api_key=<value>`, `Authorization: <value>`.
"""

from __future__ import annotations

import re
import threading

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_PATTERNS = (
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|authorization)(\"?\s*[:=]\s*\"?)(?:bearer\s+)?[^\s\"',;}]{4,}"),
)
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` removes it wherever it appears (values shorter than 4 characters are
    ignored: masking them would garble ordinary text)."""
    if value and len(value) >= 4:
        with _LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


class Secret:
    """A credential held as a value that never prints: `repr` and `str` show a mask, and the value is registered for
    redaction the moment it exists. `reveal()` is the one way to read it (when building an auth header)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret cannot be empty")
        register_secret(value)
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
