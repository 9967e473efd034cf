"""The security review of `voicechat serve` (issue 13), each finding against a real server on 127.0.0.1:
who may connect (Origin, Host), what a client may choose (profiles), what it is told (no secrets, names or
paths), and the limits that keep one client from starving the others."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import websockets

from tests.sse_server import Script, SSEServer
from tests.test_serve import Client, ServerThread, connect, get_json, make_hub
from voicechat.serve.guard import Origins
from voicechat.serve.limits import ServeLimits
from voicechat.serve.protocol import REPLY_FAILED

pytestmark = pytest.mark.slow


@pytest.fixture
def llm() -> Any:
    with SSEServer() as server:
        yield server


def ws_status(url: str, headers: dict[str, str]) -> int | str:
    """The HTTP status a WebSocket handshake was refused with, or the first event's type."""

    options: dict[str, Any] = {}
    if "Host" in headers:  # the URL names the host, the socket goes to 127.0.0.1 (as after DNS rebinding)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        url = f"ws://{headers.pop('Host')}/ws"
        options = {"host": "127.0.0.1", "port": port}

    async def run() -> int | str:
        try:
            client = await websockets.connect(url, additional_headers=headers, **options)
        except websockets.InvalidStatus as refused:
            return int(refused.response.status_code)
        first = json.loads(await asyncio.wait_for(client.recv(), 60))["type"]
        await client.close()
        return str(first)

    return asyncio.run(run())


def http_status(url: str, host: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_only_the_servers_own_page_or_an_allowed_origin_opens_the_websocket(llm: SSEServer) -> None:
    """F1: a page on another site must not open ws://127.0.0.1 and talk on the user's key."""
    origins = Origins("127.0.0.1", allowed_origins=("https://chat.example.org",))
    with ServerThread(make_hub(llm), origins) as server:
        port = server.port
        outcomes = {origin: ws_status(server.url(), {"Origin": origin} if origin else {})
                    for origin in ("", f"http://127.0.0.1:{port}", f"http://localhost:{port}",
                                   f"http://[::1]:{port}", "https://chat.example.org", "http://evil.example",
                                   f"http://evil.example:{port}", "http://127.0.0.1:1", "null",
                                   f"http://127.0.0.1.evil.example:{port}")}
    assert outcomes == {"": "ready", f"http://127.0.0.1:{port}": "ready", f"http://localhost:{port}": "ready",
                        f"http://[::1]:{port}": "ready", "https://chat.example.org": "ready",
                        "http://evil.example": 403, f"http://evil.example:{port}": 403, "http://127.0.0.1:1": 403,
                        "null": 403, f"http://127.0.0.1.evil.example:{port}": 403}


def test_a_rebound_host_name_is_refused_on_every_route(llm: SSEServer) -> None:
    """F2: DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends `Host: evil.example`."""
    with ServerThread(make_hub(llm)) as server:
        port = server.port
        refused = [http_status(server.url(path), f"evil.example:{port}") for path in ("/", "/health", "/static/app.js")]
        allowed = [http_status(server.url("/health"), host)[0]
                   for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}")]
        websocket = ws_status(server.url(), {"Host": f"evil.example:{port}"})
        page = urllib.request.urlopen(server.url("/"), timeout=10)
    assert [status for status, _ in refused] == [403, 403, 403]
    assert all("Host" in body and "--allow-host" in body and body.count("\n") == 1 for _, body in refused)
    assert allowed == [200, 200, 200] and websocket == 403
    assert page.headers["X-Frame-Options"] == "DENY"  # nor framed by another site for a hidden click


def test_clients_choose_only_offered_profiles(llm: SSEServer) -> None:
    """F3: a client's `config` may not load a profile the server was not started with."""
    with ServerThread(make_hub(llm, profiles=("default",))) as server:

        async def run() -> dict[str, Any]:
            client = await connect(server.url())
            await client.socket.send(json.dumps({"type": "config", "profile": "llamacpp"}))
            error = await client.until("error")
            await client.socket.close()
            return error

        error = asyncio.run(run())
        loaded = sorted(server.hub.engines.loaded)
    assert "does not offer that profile" in error["message"] and "llamacpp" not in error["message"]
    assert loaded == ["default"]


def test_base_url_sends_the_profiles_key_only_to_the_profiles_host() -> None:
    """F3: `--base-url` elsewhere than the profile's own host must not take OPENROUTER_API_KEY there."""
    from voicechat.commands.serve_cmd import BASE_URL_KEY, first_profile_overrides
    from voicechat.config.store import load_profile

    llm = load_profile("default").llm
    elsewhere = first_profile_overrides(llm, "http://127.0.0.1:9999/v1", None)
    same_host = first_profile_overrides(llm, "https://openrouter.ai/api/v2", "some/model")
    assert elsewhere == {"llm.base_url": "http://127.0.0.1:9999/v1", "llm.api_key_env": BASE_URL_KEY}
    assert same_host == {"llm.base_url": "https://openrouter.ai/api/v2", "llm.model": "some/model"}
    assert first_profile_overrides(llm, None, "m") == {"llm.model": "m"}


def test_an_upstream_error_body_echoing_the_key_reaches_neither_client_nor_log(
        llm: SSEServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """F4: an upstream error that quotes the request's key is logged scrubbed, told to the client generically."""
    secret = "sk-or-v1-echoed-back-0123456789"
    monkeypatch.setenv("OPENROUTER_API_KEY", secret)
    llm.queue(Script.reply("Never heard.", error_after=0,
                           error_message=f"invalid request: key {secret} has no access to this model"))
    caplog.set_level(logging.WARNING, logger="voicechat.serve")
    with ServerThread(make_hub(llm)) as server:

        async def run() -> Client:
            client = await connect(server.url())
            await client.say("Hello?")
            await client.socket.close()
            return client

        client = asyncio.run(run())
    metrics = next(e for e in client.events if e["type"] == "turn_metrics")
    assert metrics["error"] == REPLY_FAILED
    assert all(secret not in json.dumps(event) for event in client.events)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "has no access" in logged and "[redacted]" in logged and secret not in logged


def test_a_deeply_nested_frame_is_an_error_event_and_spares_the_other_recognizer(
        llm: SSEServer, caplog: pytest.LogCaptureFixture) -> None:
    """F5: "[" * 2000 is one error event, no traceback; another client's recognizer starting meanwhile is
    not failed by whatever this connection logs."""
    from voicechat.live.sources import silence

    caplog.set_level(logging.DEBUG)
    with ServerThread(make_hub(llm)) as server:

        async def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
            speaker, flooder = await connect(server.url()), await connect(server.url())
            await speaker.socket.send(silence(0.1))  # its recognizer starts (seconds) while the flood goes on
            errors = []
            for _ in range(100):
                await flooder.socket.send("[" * 2000)
                errors.append(await flooder.until("error"))
            for _ in range(60):
                await speaker.socket.send(silence(0.032))
            while (event := await speaker.next_event(90))["type"] not in ("listening", "error"):
                pass
            await speaker.socket.close()
            await flooder.socket.close()
            return errors, event

        errors, outcome = asyncio.run(run())
    assert outcome["type"] == "listening", outcome
    assert len(errors) == 100 and all("nested too deeply" in e["message"] for e in errors)
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_connections_beyond_the_limit_get_one_line_and_a_close(llm: SSEServer) -> None:
    """F6: a connection cap, said in one line to the client."""
    with ServerThread(make_hub(llm, limits=ServeLimits(connections=2))) as server:

        async def run() -> tuple[dict[str, Any], int | None, str]:
            first, second = await connect(server.url()), await connect(server.url())
            third = await websockets.connect(server.url())
            refused = json.loads(await asyncio.wait_for(third.recv(), 30))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(third.recv(), 30)
            await first.socket.close()
            await second.socket.close()
            deadline = time.monotonic() + 30
            while server.hub.live and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            again = await connect(server.url())  # room again once the others left
            await again.socket.close()
            return refused, third.close_code, third.close_reason

        refused, code, reason = asyncio.run(run())
    assert refused["type"] == "error" and refused["fatal"] is True and "limit of 2 conversations" in refused["message"]
    assert code == 1013 and "limit of 2" in reason


def test_recognizers_beyond_the_limit_are_refused_but_typed_turns_go_on(llm: SSEServer) -> None:
    """F6: recognizers cost 200+ MiB each: a cap (here none at all) with one line to the client."""
    from voicechat.live.sources import silence

    llm.queue(Script.reply("Typed still works."))
    with ServerThread(make_hub(llm, limits=ServeLimits(recognizers=0))) as server:

        async def run() -> tuple[dict[str, Any], Client]:
            client = await connect(server.url())
            await client.socket.send(silence(0.1))
            error = await client.until("error")
            await client.say("Can you hear me?")
            await client.socket.close()
            return error, client

        error, client = asyncio.run(run())
    assert "at most 0 recognizers" in error["message"] and "typed turns still work" in error["message"]
    assert client.replies() == "Typed still works."


def test_a_client_that_does_not_read_is_disconnected_at_the_queue_limit(
        llm: SSEServer, caplog: pytest.LogCaptureFixture) -> None:
    """F7: the server holds at most --max-queued-bytes for a client that stops reading."""
    story = " ".join(f"Sentence {n} is part of a long answer that goes on." for n in range(40))
    llm.queue(Script.reply(story))
    limit = 256 * 1024
    whole = {"llm.reply_sentences": 0, "llm.reply_words": 0}  # the whole story is spoken: megabytes of audio
    with ServerThread(make_hub(llm, limits=ServeLimits(queued_bytes=limit), settings=whole)) as server:

        async def run() -> tuple[int, int | None, str | None]:
            # a tiny receive buffer and no reading: the server's writes back up into its queue
            client = await websockets.connect(server.url(), max_size=None, max_queue=1)
            raw = client.transport.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await client.send(json.dumps({"type": "text", "text": "Tell me everything."}))
            while not server.hub.live:
                await asyncio.sleep(0.01)
            most = 0
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                live = list(server.hub.live.values())
                if not live:
                    break
                most = max(most, live[0].outbox.queued)
                await asyncio.sleep(0.01)
            client.transport.abort()
            return most, client.close_code, client.close_reason

        most, _, _ = asyncio.run(run())
        assert not server.hub.live  # the server ended it
    assert 0 < most <= limit
    assert any("read nothing while 262144 bytes waited" in r.getMessage() for r in caplog.records)


def test_typed_turns_beyond_the_rate_are_dropped_with_one_line(llm: SSEServer) -> None:
    """F8: 20 turns sent at once reach the LLM as at most the burst, the rest each get an error line."""
    for _ in range(20):
        llm.queue(Script.reply("Ok."))
    with ServerThread(make_hub(llm, limits=ServeLimits(turn_rate=0.5, turn_burst=3))) as server:

        async def run() -> Client:
            client = await connect(server.url())
            for n in range(20):
                await client.socket.send(json.dumps({"type": "text", "text": f"Turn {n}."}))
            deadline = time.monotonic() + 30
            while client.order.count("error") < 17 and time.monotonic() < deadline:
                await client.next_event(30)
            await asyncio.sleep(1.0)
            await client.socket.close()
            return client

        client = asyncio.run(run())
    errors = [e for e in client.events if e["type"] == "error"]
    assert len(errors) == 17 and all("too many typed turns" in e["message"] for e in errors)
    assert len(llm.requests) <= 3


def test_half_sent_requests_are_closed_and_sockets_are_capped(llm: SSEServer) -> None:
    """F9: a request whose headers never finish is closed after --header-timeout; sockets past the cap are
    answered 503 at once; /health still answers."""
    limits = ServeLimits(sockets=6, header_timeout=1.0)
    with ServerThread(make_hub(llm, limits=limits)) as server:
        slow = []
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line
            slow.append(sock)
        time.sleep(0.3)
        extra = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
        refused = [sock.recv(200).decode() for sock in extra]
        started = time.monotonic()
        answers = [sock.recv(200).decode() for sock in slow]
        waited = time.monotonic() - started
        health = get_json(server.url("/health"))
        for sock in slow + extra:
            sock.close()
    assert sum("503" in text for text in refused) >= 1  # 4 slow + 3 more > 6
    assert all("408" in text for text in answers) and waited < 5
    assert health["status"] == "ok"


def test_a_recognizer_starting_is_not_failed_by_errors_other_code_logs() -> None:
    """F5: the recognizer's start watches RealtimeSTT's own loggers: an ERROR any other part of the server
    logs meanwhile (another connection's, here a stand-in logging every 5 ms) must not fail it."""
    import threading

    from tests.conftest import bundled_whisper_dir
    from voicechat.live.listener import ListenerSettings, RealtimeListener

    stop = threading.Event()

    def noise() -> None:
        while not stop.is_set():
            logging.getLogger("voicechat.serve").error("another connection's trouble")
            stop.wait(0.005)

    async def run() -> None:
        listener = RealtimeListener(ListenerSettings(bundled_whisper_dir(), bundled_whisper_dir()))
        try:
            await listener.start()
        finally:
            await listener.stop()

    talker = threading.Thread(target=noise, daemon=True)
    talker.start()
    try:
        asyncio.run(run())  # raised "the speech recognizer could not load ..." when it watched the root logger
    finally:
        stop.set()
        talker.join()
