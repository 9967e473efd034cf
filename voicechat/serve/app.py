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

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("voicechat.serve")
POLICY_VIOLATION = 1008  # WebSocket close code for a missing or wrong token


@dataclass
class Hub:
    """What the app holds: its settings, the shared engines and the live connections."""

    defaults: ConnectionDefaults
    engines: EngineCache
    token: str | None = None
    live: dict[str, Connection] = field(default_factory=dict)


def create_app(hub: Hub) -> "FastAPI":
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
    async def index() -> str:
        return (static / "index.html").read_text(encoding="utf-8")

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
        connection = Connection(websocket, hub.engines, hub.defaults)
        hub.live[connection.id] = connection
        log.info("connection %s opened (%d live)", connection.id, len(hub.live))
        try:
            await connection.serve()
        finally:
            hub.live.pop(connection.id, None)
            with contextlib.suppress(Exception):
                await websocket.close()
            log.info("connection %s closed (%d live)", connection.id, len(hub.live))

    return app
