"""The critic and the refine loop as an MCP server (`rationalrewards mcp`, or `build_mcp_server` from Python), for any
MCP client: Claude Desktop, IDE agents, the OpenAI Agents SDK's MCP support, another process.

Tools: `critique_image`, `compare_images` and, when a generator is given, `refine_image` (the kept image as a path and
a data URL, with its critique). Images are file paths, `file://` URIs or `data:` URLs, read on the server's machine.
A mistake in the arguments or a critic that cannot answer comes back as an MCP error result (`isError`) with the
message, which the model reads; it never ends the session.

Transports: stdio (a client starts the server as a subprocess) and streamable HTTP (`/mcp`). Over HTTP the server has
no login of its own beyond a bearer key: it listens on loopback unless a key is given (`--api-key` or
$RATIONALREWARDS_MCP_API_KEY), which every request must then carry.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from rationalrewards.integrations import tools
from rationalrewards.plumbing.redact import Secret
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.scoring import RewardPolicy

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

API_KEY_ENV = "RATIONALREWARDS_MCP_API_KEY"
INSTRUCTIONS = (
    "Judge generated images with a reasoning critic: critique_image scores one image per aspect (1-4) with reasons "
    "and proposes a better request; compare_images says which of two is preferred; refine_image (when offered) "
    "generates, critiques and regenerates until the critic is satisfied. Pass images as file paths, file:// URIs or "
    "data: URLs."
)


def _answer(result: tools.ToolResult) -> dict[str, Any]:
    """A tool's result, or an MCP error result (raised, the SDK turns it into `isError` with this message)."""
    from mcp.server.mcpserver.exceptions import ToolError

    if result.get("kind") == "error":
        raise ToolError(str(result["error"]))
    return dict(result)


def _erroring(function: Callable[..., Awaitable[tools.ToolResult]]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`function` with its error results raised as MCP errors (same signature: the SDK reads the arguments' schema
    through `functools.wraps`)."""

    @functools.wraps(function)
    async def answer(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return _answer(await function(*args, **kwargs))

    return answer


def build_mcp_server(
    critic: RewardModel,
    backends: tools.LoopBackends | None = None,
    *,
    policy: RewardPolicy = "paper",
    name: str = "rationalrewards",
) -> MCPServer:
    """An `MCPServer` with the critic's tools, and `refine_image` when `backends` (a generator and a critic) are given."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name, instructions=INSTRUCTIONS)
    for tool in tools.agent_tools(critic, backends, policy=policy):
        server.tool(name=tool.name, description=tool.description)(_erroring(tool.function))
    return server


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]
]


def bearer_guard(app: ASGIApp, api_key: Secret) -> ASGIApp:
    """An ASGI wrapper that answers 401 to an HTTP request without `Authorization: Bearer <key>`."""
    import hmac

    expected = f"Bearer {api_key.reveal()}".encode()

    async def guarded(
        scope: MutableMapping[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[Any]]
    ) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send(
                    {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"missing or wrong bearer key"})
                return
        await app(scope, receive, send)

    return guarded


def serve_http(server: MCPServer, host: str, port: int, api_key: Secret | None) -> None:
    """Serve over streamable HTTP at `http://host:port/mcp` until interrupted."""
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    from rationalrewards.plumbing.serving import check_binding, is_loopback

    check_binding(host, api_key)
    # The SDK's DNS-rebinding check guards loopback servers from web pages; a keyed server on a network address is
    # reached by other hosts' names, and the key is its guard.
    security = None if is_loopback(host) else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app: Any = server.streamable_http_app(transport_security=security, host=host)
    if api_key is not None:
        app = bearer_guard(app, api_key)
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["API_KEY_ENV", "bearer_guard", "build_mcp_server", "serve_http"]
