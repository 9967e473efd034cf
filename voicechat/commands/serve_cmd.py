"""`voicechat serve`: the voice loop over a WebSocket (voicechat.serve), for a browser or remote clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from voicechat.serve.auth import TOKEN_ENV

if TYPE_CHECKING:
    from voicechat.config.models import LLMSettings
    from voicechat.serve.guard import Origins
    from voicechat.serve.limits import ServeLimits

DEFAULT_CHARACTER = "lydia"
BASE_URL_KEY = "VOICECHAT_BASE_URL_API_KEY"  # the key for a --base-url on another host than the profile's


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback needs --token."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port to listen on."),
    profile: list[str] = typer.Option(
        ["default"], "--profile", "-p", envvar="VOICECHAT_PROFILE",
        help="Profile from `voicechat profiles list`; repeat to let clients choose among several (the first is "
        "the default). Clients can use no other.",
    ),
    character: list[str] | None = typer.Option(
        None, "--character", "-c", help="Character card; repeat for several (the first leads). Default: lydia."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar=TOKEN_ENV, show_envvar=True,
        help="Clients must send it (?token=... or Authorization: Bearer); required off loopback. Prefer the "
        "variable: a flag shows in `ps`.",
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help=f"OpenAI-compatible API URL for the first --profile only. On another host than "
        f"the profile's, its key comes from {BASE_URL_KEY}, never from the profile's variable.",
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model id at the endpoint (first --profile only)."),
    no_pace: bool = typer.Option(
        False, "--no-pace", help="Send reply audio as fast as it is made (barge-in then keeps the whole reply)."
    ),
    allow_origin: list[str] | None = typer.Option(
        None, "--allow-origin", help="A web page origin (https://host[:port]) that may use the WebSocket besides "
        "the server's own page; repeatable.",
    ),
    allow_host: list[str] | None = typer.Option(
        None, "--allow-host", help="A host name clients reach the server by (behind a proxy) besides loopback "
        "and the bound address; repeatable.",
    ),
    max_connections: int = typer.Option(16, "--max-connections", min=1, help="Conversations at once."),
    max_recognizers: int = typer.Option(
        4, "--max-recognizers", min=0, help="Speech recognizers at once (about 230 MiB each); 0: typed turns only."
    ),
    max_queued_bytes: int = typer.Option(
        8 * 1024 * 1024, "--max-queued-bytes", min=64 * 1024,
        help="Bytes waiting for one client that does not read; past that it is disconnected.",
    ),
    max_turn_rate: float = typer.Option(
        1.0, "--max-turn-rate", min=0.01, help="Typed turns a second per connection (3 may come at once)."
    ),
    max_sockets: int = typer.Option(64, "--max-sockets", min=2, help="TCP connections at once, finished or not."),
    header_timeout: float = typer.Option(
        10.0, "--header-timeout", min=0.5, help="Seconds a client has to send a request's headers."
    ),
) -> None:
    """Serve the voice loop over a WebSocket at /ws, with a browser page at / and GET /health.

    Each connection gets its own conversation; the models load once and are shared. See docs/protocol.md.
    """
    from voicechat.config.store import load_character, load_profile, load_voice
    from voicechat.serve.auth import check_bind
    from voicechat.serve.guard import Origins, normal_origin
    from voicechat.serve.limits import ServeLimits

    check_bind(host, token)
    _check_port(host, port)
    profiles = tuple(dict.fromkeys(profile))
    overrides = {profiles[0]: first_profile_overrides(load_profile(profiles[0]).llm, base_url, model)}
    for name in profiles:
        settings = load_profile(name, overrides.get(name, {}))  # every offered profile must load as written
    settings = load_profile(profiles[0], overrides[profiles[0]])
    names = tuple(dict.fromkeys(character or [DEFAULT_CHARACTER]))
    for voice in {settings.tts.voice, *(load_character(name).voice for name in names)}:
        load_voice(voice)
    origins = Origins(host, tuple(normal_origin(o) for o in allow_origin or ()),
                      tuple(h.lower() for h in allow_host or ()))
    limits = ServeLimits(connections=max_connections, recognizers=max_recognizers, queued_bytes=max_queued_bytes,
                         turn_rate=max_turn_rate, sockets=max_sockets, header_timeout=header_timeout)
    _run(host, port, Offer(profiles, names, overrides, not no_pace), token, origins, limits)


def first_profile_overrides(llm: LLMSettings, base_url: str | None, model: str | None) -> dict[str, str]:
    """--base-url and --model for the first profile. A URL on another host than the profile's own is sent
    the key in BASE_URL_KEY, never the profile's (OpenRouter's key belongs to OpenRouter)."""
    from urllib.parse import urlsplit

    overrides = {key: value for key, value in (("llm.base_url", base_url), ("llm.model", model)) if value}
    if base_url and urlsplit(base_url).netloc.lower() != urlsplit(llm.base_url).netloc.lower():
        overrides["llm.api_key_env"] = BASE_URL_KEY
    return overrides


@dataclass(frozen=True)
class Offer:
    """What the server offers its clients: profiles (the first the default), characters, pacing."""

    profiles: tuple[str, ...]
    characters: tuple[str, ...]
    overrides: dict[str, dict[str, str]]
    pace: bool


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


def _run(host: str, port: int, offer: Offer, token: str | None, origins: Origins, limits: ServeLimits) -> None:
    import contextlib
    import logging

    import uvicorn

    from voicechat.console import err
    from voicechat.errors import VoicechatError
    from voicechat.serve.app import Hub, create_app
    from voicechat.serve.connection import ConnectionDefaults
    from voicechat.serve.engines import EngineCache
    from voicechat.serve.transport import server_config

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("voicechat.serve").setLevel(logging.INFO)  # connections opened and closed
    engines = EngineCache(offer.profiles, offer.overrides)
    loaded = engines.preload(offer.profiles[0])  # a model that cannot load fails here, in one line, before binding
    defaults = ConnectionDefaults(offer.profiles[0], offer.characters, offer.pace, offer.profiles, limits)
    hub = Hub(defaults, engines, token)
    shown = f"[{host}]" if ":" in host else host
    choice = f"; clients may choose profiles {', '.join(offer.profiles)}" if len(offer.profiles) > 1 else ""
    err().print(f"voicechat serve: http://{shown}:{port}/ ({loaded.chat.name}, {loaded.tts.name}); "
                f"WebSocket at /ws{' (token required)' if token else ''}{choice}; Ctrl+C stops", markup=False,
                soft_wrap=True)
    server = uvicorn.Server(server_config(create_app(hub, origins), host, port, limits))
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: uvicorn raises it again once it has shut down
            server.run()
        if not server.started:
            raise VoicechatError(f"the server did not start on {host}:{port}: see the lines above")
    finally:
        if engines.loaded:  # uvicorn stopped before the app's shutdown ran: an embedded LLM server must still go
            import asyncio

            asyncio.run(engines.aclose())
