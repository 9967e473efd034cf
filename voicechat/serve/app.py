"""The FastAPI app: `GET /` (the browser page), `GET /health`, and the voice loop at `WS /ws`."""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose types are imported
# inside create_app (fastapi stays out of `voicechat --help`).

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from voicechat import __version__
from voicechat.serve.auth import presented_token, token_ok
from voicechat.serve.connection import Connection, ConnectionDefaults
from voicechat.serve.engines import EngineCache
from voicechat.serve.guard import GuardMiddleware, Origins
from voicechat.serve.limits import LIMIT_LOG, Slots
from voicechat.serve.protocol import error_event

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("voicechat.serve")
POLICY_VIOLATION = 1008  # WebSocket close code for a missing or wrong token
TRY_AGAIN_LATER = 1013  # WebSocket close code when the server has its limit of connections


@dataclass
class Hub:
    """What the app holds: its settings, the shared engines and the live connections."""

    defaults: ConnectionDefaults
    engines: EngineCache
    token: str | None = None
    live: dict[str, Connection] = field(default_factory=dict)
    recognizers: Slots = field(default_factory=lambda: Slots(0))

    def __post_init__(self) -> None:
        self.recognizers = Slots(self.defaults.limits.recognizers)


def create_app(hub: Hub, origins: Origins) -> Any:
    """The app behind its Host and Origin guard (an ASGI app for uvicorn)."""
    return GuardMiddleware(_fastapi_app(hub), origins)


def _fastapi_app(hub: Hub) -> "FastAPI":
    from fastapi import FastAPI, WebSocket
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    @contextlib.asynccontextmanager
    async def lifespan(app: "FastAPI") -> AsyncIterator[None]:
        try:
            yield
        finally:
            for connection in list(hub.live.values()):
                await connection.close()
            await hub.engines.aclose()

    app = FastAPI(title="voicechat", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.hub = hub
    static = resources.files("voicechat.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        # never inside another site's frame, where a hidden click could start the microphone
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"),
                            headers={"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"})

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "connections": len(hub.live),
                "profiles": sorted(hub.engines.loaded), "token_required": bool(hub.token)}

    @app.websocket("/ws")
    async def voice(websocket: WebSocket) -> None:
        if not token_ok(hub.token, presented_token(websocket.query_params, websocket.headers)):
            await websocket.close(code=POLICY_VIOLATION, reason="token required: connect with ?token=...")
            return
        await websocket.accept()
        limit = hub.defaults.limits.connections
        if len(hub.live) >= limit:
            LIMIT_LOG.warn("connections", "refused a WebSocket: %d conversations open, the --max-connections "
                           "limit", limit)
            line = f"the server has its limit of {limit} conversations open: try again later"
            await websocket.send_json(error_event(line, fatal=True))
            await websocket.close(code=TRY_AGAIN_LATER, reason=line[:120])
            return
        connection = Connection(websocket, hub.engines, hub.defaults, hub.recognizers)
        hub.live[connection.id] = connection
        log.info("connection %s opened (%d live)", connection.id, len(hub.live))
        try:
            await connection.serve()
        finally:
            hub.live.pop(connection.id, None)
            with contextlib.suppress(Exception):
                if connection.close_reason:
                    await websocket.close(code=POLICY_VIOLATION, reason=connection.close_reason[:120])
                else:
                    await websocket.close()
            log.info("connection %s closed (%d live)", connection.id, len(hub.live))

    return app
