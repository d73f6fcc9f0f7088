"""Keep secrets out of everything written down: logs, traces, failure records, summaries, reports, checkpoints.

A server may echo credentials in an error body (`401 ... Bearer sk-...`). Every error text that leaves a backend goes
through `redact()`, which removes:
- every registered secret (clients register their API key on construction, specs their URL passwords), in each form a
  server or a log might echo it: as it is, percent-encoded (`quote` and `quote_plus`), JSON-escaped, and, for a
  `user:password` login, its HTTP Basic encoding;
- anything shaped like a credential: `Bearer <token>`, `api_key=<value>`, `Authorization: <value>`, and the
  `user:password@` of any URL.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from urllib.parse import quote, quote_plus

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_PATTERNS = (
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|authorization)(\"?\s*[:=]\s*\"?)(?:bearer\s+)?[^\s\"',;}]{4,}"),
)
MASK = "***"


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s@\"']*)@")


def _forms(value: str) -> set[str]:
    """The spellings under which a secret may be echoed back."""
    forms = {value, quote(value), quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    if ":" in value:  # a login: the Authorization header a server might echo carries it base64-encoded
        forms.add(base64.b64encode(value.encode("utf-8")).decode("ascii"))
    return forms


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` removes it wherever it appears, in every form `_forms` lists (values shorter
    than 4 characters are ignored: masking them would garble ordinary text)."""
    if value and len(value) >= 4:
        with _LOCK:
            _SECRETS.update(form for form in _forms(value) if len(form) >= 4)


def mask_userinfo(text: str) -> str:
    """Every URL's `user:password@` (or `token@`) shown as `***@`."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def redact(text: str) -> str:
    if not text:
        return text
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = mask_userinfo(text)
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
