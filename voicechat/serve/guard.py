"""Which requests reach the app: a Host that names this server, and for WebSockets an Origin of its own.

A web page the user visits may open `ws://127.0.0.1:8765/ws` (browsers allow cross-origin WebSockets) and
so spend the user's key: only the server's own page, or origins named with `--allow-origin`, may. A page
reached by DNS rebinding (`evil.example` resolving to 127.0.0.1) sends `Host: evil.example`: only loopback
names, the bound address, IP literals when bound to every address, and `--allow-host` names are served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from voicechat.serve.auth import is_loopback
from voicechat.serve.limits import LIMIT_LOG

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Origins:
    """The `--host` the server binds, and what `--allow-origin` / `--allow-host` add. `local` below is the
    address (and port) a request actually reached: the bound one, or one of the machine's when bound to all."""

    host: str = "127.0.0.1"
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()

    def host_ok(self, name: str, local: str) -> bool:
        """`name` is a Host header's or an Origin's host, without the port. An IP literal cannot be rebound,
        so the address the request reached is as good as a loopback name."""
        name = name.lower().strip("[]")
        return (is_loopback(name) or name in (self.host.lower().strip("[]"), local.lower())
                or name in self.allowed_hosts)

    def origin_ok(self, origin: str | None, local: str, port: int) -> bool:
        if origin is None:
            return True  # not a browser: the token (off loopback) is what guards it
        if origin.rstrip("/").lower() in self.allowed_origins:
            return True
        try:
            parts = urlsplit(origin)
            origin_port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        return (parts.scheme in ("http", "https") and origin_port == port
                and self.host_ok(parts.hostname or "", local))


def normal_origin(origin: str) -> str:
    """An `--allow-origin` value as browsers send it: scheme://host[:port], no path, lower case."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        from voicechat.errors import UsageError

        raise UsageError(f"--allow-origin '{origin}': give a page origin such as https://chat.example.org "
                         "(scheme and host, an optional port, no path)")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class GuardMiddleware:
    """Refuses a request whose Host or (WebSocket) Origin is not this server's, before the app sees it."""

    def __init__(self, app: ASGIApp, origins: Origins) -> None:
        self.app, self.origins = app, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        LIMIT_LOG.warn(f"refused-{scope['type']}", "refused a %s request: %s", scope["type"], problem)
        await _refuse(scope, send, problem)

    def problem(self, scope: Scope) -> str | None:
        local, port = scope.get("server") or ("", 0)
        host = _header(scope, b"host")
        if host is None or not self.origins.host_ok(_host_name(host), str(local)):
            return ("Host is not this server's name (a DNS-rebinding page?): connect to 127.0.0.1, or start "
                    "the server with --allow-host NAME")
        if scope["type"] == "websocket" and not self.origins.origin_ok(_header(scope, b"origin"), str(local),
                                                                       int(port or 0)):
            return ("this page's origin may not use the server (another site's page?): open the server's own "
                    "page, or start it with --allow-origin ORIGIN")
        return None


async def _refuse(scope: Scope, send: Send, problem: str) -> None:
    body = (problem + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 403, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
