"""What every server of ours does at its edge (`serve-generator`, and any other aiohttp app we serve): a bearer
token, bounded connections that cannot be held open for free, bodies read within a deadline, and a 4xx for every
malformed request.

- **Authentication.** With an API key (`--api-key`, or the environment variable the command names) every route but
  `/health` needs `Authorization: Bearer <key>` (compared in constant time); without one the server only binds to a
  loopback address.
- **Connections.** At most `max_connections` at once. A connection must finish sending each request within
  `request_timeout` seconds of starting it (a half-sent request is closed then, whatever it still trickles), and an
  idle keep-alive connection is closed after `idle_timeout`. When the cap is reached, the connection that has been
  idle or sending the longest is closed to make room, so a flood of half-sent requests can never lock out `/health`.
- **Bodies** are read with the same deadline; a body past its size limit is a 413, a malformed one a 400.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rationalrewards.plumbing.redact import Secret

if TYPE_CHECKING:
    from aiohttp import web


@dataclass(frozen=True)
class EdgeLimits:
    max_connections: int = 512
    request_timeout: float = 30.0  # seconds to send one whole request (headers and body)
    idle_timeout: float = 15.0  # seconds a keep-alive connection may wait between requests

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.request_timeout <= 0 or self.idle_timeout <= 0:
            raise ValueError("max_connections must be at least 1 and the timeouts positive")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


SERVE_API_KEY_ENV = "RATIONALREWARDS_SERVE_API_KEY"  # the serving commands' key, where `ps` does not show it


def server_api_key(given: str | None, host: str | None, env: str = SERVE_API_KEY_ENV) -> Secret | None:
    """A server's key: the flag's, else its environment variable's. With a `host` (a network binding), a server
    reachable from other machines without a key is refused here, before any model is loaded."""
    import os

    key = given or os.environ.get(env)
    api_key = Secret(key) if key else None
    if host is not None:
        check_binding(host, api_key)
    return api_key


def check_binding(host: str, api_key: Secret | None) -> None:
    """A server reachable from other machines must ask for a key."""
    if api_key is None and not is_loopback(host):
        raise ValueError(
            f"binding to {host} makes the server reachable from other machines: give --api-key (or its environment "
            "variable), or bind to 127.0.0.1"
        )


def bearer_middleware(api_key: Secret | None, open_paths: tuple[str, ...] = ("/health",)) -> object:
    """An aiohttp middleware that answers 401 unless the request carries the key (paths in `open_paths` excepted)."""
    from aiohttp import web

    expected = f"Bearer {api_key.reveal()}".encode() if api_key is not None else None

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if expected is not None and request.path not in open_paths:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response(
                    {"error": {"message": "a valid API key is needed (Authorization: Bearer ...)", "type": "auth"}},
                    status=401,
                )
        return await handler(request)

    return check


async def read_body(request: web.Request, limit: int, seconds: float) -> bytes:
    """The whole body within `seconds` and `limit` bytes: 408 past the deadline, 413 past the size."""
    from aiohttp import web

    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks, size = [], 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="the request body did not arrive in time") from None
    return b"".join(chunks)


class _Guarded(asyncio.Protocol):
    """One connection, as aiohttp's handler sees it, under the edge's deadlines."""

    def __init__(self, inner: asyncio.Protocol, edge: ConnectionEdge) -> None:
        self.inner, self.edge = inner, edge
        self.transport: asyncio.Transport | None = None
        self.since = time.monotonic()  # when it last became idle or began a request
        self.busy = False  # a request is being handled (the handler owns the clock then)
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.since = time.monotonic()
        self.timer = asyncio.get_running_loop().call_later(seconds, self.expire)

    def expire(self) -> None:
        if not self.busy and self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP server hands a full transport
        self.edge.admit(self)
        self.arm(self.edge.limits.request_timeout)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.edge.release(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class ConnectionEdge:
    """Counts the server's connections, evicts the stalest when full, and marks them busy while a handler runs."""

    def __init__(self, limits: EdgeLimits) -> None:
        self.limits = limits
        self.open: dict[asyncio.BaseTransport, _Guarded] = {}
        self.evicted = 0

    def admit(self, connection: _Guarded) -> None:
        if len(self.open) >= self.limits.max_connections:
            waiting = [c for c in self.open.values() if not c.busy]
            if waiting:
                stalest = min(waiting, key=lambda c: c.since)
                if stalest.transport is not None:
                    stalest.transport.close()
                    self.evicted += 1
        assert connection.transport is not None
        self.open[connection.transport] = connection

    def release(self, connection: _Guarded) -> None:
        if connection.transport is not None:
            self.open.pop(connection.transport, None)

    def middleware(self) -> object:
        """Marks a connection busy while its request is handled, then gives it the idle deadline."""
        from aiohttp import web

        @web.middleware
        async def track(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            connection = self.open.get(request.transport) if request.transport is not None else None
            if connection is not None:
                connection.busy = True
                if connection.timer is not None:
                    connection.timer.cancel()
            try:
                return await handler(request)
            finally:
                if connection is not None:
                    connection.busy = False
                    connection.arm(self.limits.idle_timeout)

        return track


async def run_guarded(
    app: web.Application,
    host: str,
    port: int,
    edge: ConnectionEdge,
    *,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve `app` until cancelled, every connection under `edge`."""
    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=edge.limits.idle_timeout)
    await runner.setup()
    handler_factory = runner.server
    assert handler_factory is not None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Guarded(handler_factory(), edge), host, port, backlog=1024)
    if ready is not None:
        ready()
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        await runner.cleanup()


__all__ = [
    "ConnectionEdge",
    "EdgeLimits",
    "bearer_middleware",
    "check_binding",
    "is_loopback",
    "read_body",
    "run_guarded",
]
