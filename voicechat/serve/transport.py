"""The uvicorn server for the app, with two limits uvicorn lacks below the app.

uvicorn keeps a connection whose request headers never finish (its keep-alive timer starts only after a
response and stops at any byte), and `limit_concurrency` answers 503 only once a request is whole: 300
half-sent requests used up the process's file descriptors before the token was ever checked. Here each
TCP connection has `header_timeout` seconds to send a request's headers, and connections beyond `sockets`
are answered 503 and closed at once. Each socket's kernel send buffer is bounded too: on loopback it grows
to megabytes, which would hold a slow client's audio outside the server's own queue limit.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from voicechat.serve.limits import LIMIT_LOG, ServeLimits
from voicechat.serve.protocol import WS_MAX_SIZE

if TYPE_CHECKING:
    import uvicorn


def _plain(status: str, line: str) -> bytes:
    body = (line + "\n").encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


def guarded_protocol(limits: ServeLimits) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.sockets:
                LIMIT_LOG.warn("sockets", "refused a connection: %d open, the --max-sockets limit", limits.sockets)
                transport.write(_plain("503 Service Unavailable", f"the server has its limit of {limits.sockets} "
                                       "connections open: try again shortly"))
                transport.close()
                return
            sock = transport.get_extra_info("socket")
            if sock is not None:  # bounded, so what waits for a slow client is in the queue that has a limit
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limits.send_buffer)
            self._arm()

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(limits.header_timeout, self._headers_late)

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # gone, or now a WebSocket
            if self.conn.their_state is h11.IDLE:  # no request line and headers yet
                LIMIT_LOG.warn("header-timeout", "closed a connection that sent no whole request within %g s",
                               limits.header_timeout)
                self.transport.write(_plain("408 Request Timeout", "the request's headers did not arrive within "
                                            f"{limits.header_timeout:g} s"))
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._arm()  # the next request on this connection gets the same time

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

    return GuardedH11Protocol


def server_config(app: Any, host: str, port: int, limits: ServeLimits, **options: Any) -> uvicorn.Config:
    import uvicorn

    settings: dict[str, Any] = {"ws_max_size": WS_MAX_SIZE, "log_level": "warning", "lifespan": "on",
                                "timeout_keep_alive": 5, **options}
    return uvicorn.Config(app, host=host, port=port, http=guarded_protocol(limits), **settings)
