"""Server URLs as users write them: normalised to an API root, several joined by commas, and credentials taken out.

Light on purpose (no HTTP client): specs are parsed at a command's start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from rationalrewards.plumbing.redact import Secret, mask_userinfo


def normalise_base_url(url: str) -> str:
    """`http://host:port` -> `http://host:port/v1`; a URL with a path is taken as the API root as given."""
    url = url.rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
    return url + "/v1" if parsed.path in ("", "/") else url


def without_credentials(url: str) -> tuple[str, str | None]:
    """`http://user:pw@host/v1` -> (`http://host/v1`, `user:pw`), percent-decoded; (url, None) when it has none."""
    split = urlsplit(url)
    if split.username is None and split.password is None:
        return url, None
    try:
        host, port = split.hostname or "", split.port
    except ValueError:  # a port that is not a number: say so without the credentials
        raise ValueError(f"bad port in the URL of {split.scheme}://***@{split.netloc.rpartition('@')[2]}") from None
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    login = f"{unquote(split.username or '')}:{unquote(split.password or '')}"
    return urlunsplit((split.scheme, netloc, split.path, split.query, split.fragment)), login


def base_urls(urls: str | Sequence[str]) -> tuple[list[str], Secret | None]:
    """One URL or several (a list, or one string with commas), normalised and without credentials; duplicates
    refused. A `user:password` in the URLs comes back apart, as a `Secret` (the servers of one backend share one)."""
    items = [u for part in ([urls] if isinstance(urls, str) else urls) for u in str(part).split(",") if u.strip()]
    if not items:
        raise ValueError("give at least one server URL")
    stripped = [without_credentials(u.strip()) for u in items]
    logins = {login for _, login in stripped if login is not None}
    if len(logins) > 1:
        raise ValueError("the servers of one backend must share one login (different user:password in the URLs)")
    normalised = [normalise_base_url(url) for url, _ in stripped]
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"the same server URL is given twice: {normalised}")
    return normalised, (Secret(logins.pop()) if logins else None)


def masked_url(text: str) -> str:
    """A URL (or any text holding URLs) with every `user:password@` shown as `***@`: for messages and manifests."""
    return mask_userinfo(text)
