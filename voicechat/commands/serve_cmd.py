"""`voicechat serve`: the voice loop over a WebSocket (voicechat.serve), for a browser or remote clients."""

from __future__ import annotations

import typer

from voicechat.serve.auth import TOKEN_ENV

DEFAULT_CHARACTER = "lydia"


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback needs --token."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port to listen on."),
    profile: str = typer.Option(
        "default", "--profile", "-p", envvar="VOICECHAT_PROFILE", help="Profile from `voicechat profiles list`."
    ),
    character: list[str] | None = typer.Option(
        None, "--character", "-c", help="Character card; repeat for several (the first leads). Default: lydia."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar=TOKEN_ENV, show_envvar=True,
        help="Clients must send it (?token=... or Authorization: Bearer); required off loopback. Prefer the "
        "variable: a flag shows in `ps`.",
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible API URL (overrides the profile)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model id at the endpoint (overrides the profile)."),
    no_pace: bool = typer.Option(
        False, "--no-pace", help="Send reply audio as fast as it is made (barge-in then keeps the whole reply)."
    ),
) -> None:
    """Serve the voice loop over a WebSocket at /ws, with a browser page at / and GET /health.

    Each connection gets its own conversation; the models load once and are shared. See docs/protocol.md.
    """
    from voicechat.config.store import load_character, load_profile, load_voice
    from voicechat.serve.auth import check_bind

    check_bind(host, token)
    _check_port(host, port)
    overrides = {key: value for key, value in (("llm.base_url", base_url), ("llm.model", model)) if value}
    settings = load_profile(profile, overrides)
    names = tuple(dict.fromkeys(character or [DEFAULT_CHARACTER]))
    for voice in {settings.tts.voice, *(load_character(name).voice for name in names)}:
        load_voice(voice)
    _run(host, port, profile, names, token, overrides, not no_pace)


def _check_port(host: str, port: int) -> None:
    """A port in use fails now, in one line, before any model loads."""
    import socket

    from voicechat.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UsageError(f"--host {host} is not an address of this machine ({error.strerror}): use an IP such "
                         "as 127.0.0.1 or 0.0.0.0") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise UsageError(f"cannot listen on {host}:{port} ({error.strerror}): pick another --port or stop "
                             "what uses it") from None


def _run(host: str, port: int, profile: str, names: tuple[str, ...], token: str | None,
         overrides: dict[str, str], pace: bool) -> None:
    import logging

    import uvicorn

    from voicechat.console import err
    from voicechat.serve.app import Hub, create_app
    from voicechat.serve.connection import ConnectionDefaults
    from voicechat.serve.engines import EngineCache
    from voicechat.serve.protocol import WS_MAX_SIZE

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("voicechat.serve").setLevel(logging.INFO)  # connections opened and closed
    engines = EngineCache(overrides)
    loaded = engines.preload(profile)  # a model that cannot load fails here, in one line, before binding
    hub = Hub(ConnectionDefaults(profile, names, pace), engines, token)
    shown = f"[{host}]" if ":" in host else host
    err().print(f"voicechat serve: http://{shown}:{port}/ ({loaded.chat.name}, {loaded.tts.name}); "
                f"WebSocket at /ws{' (token required)' if token else ''}; Ctrl+C stops", markup=False,
                soft_wrap=True)
    try:
        uvicorn.run(create_app(hub), host=host, port=port, ws_max_size=WS_MAX_SIZE, log_level="warning",
                    lifespan="on")
    finally:
        if engines.loaded:  # uvicorn stopped before the app's shutdown ran: an embedded LLM server must still go
            import asyncio

            asyncio.run(engines.aclose())
