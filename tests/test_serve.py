"""`voicechat serve` end to end: a real uvicorn server on 127.0.0.1, real `websockets` clients, the loopback
OpenAI-style server for the LLM and the bundled Piper voice; spoken turns are heard by RealtimeSTT."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.conftest import run_cli, word_error_rate
from tests.sse_server import Script, SSEServer
from voicechat.serve.app import Hub, create_app
from voicechat.serve.connection import ConnectionDefaults
from voicechat.serve.engines import EngineCache
from voicechat.serve.guard import Origins
from voicechat.serve.limits import ServeLimits
from voicechat.serve.protocol import REPLY_FAILED, WS_MAX_SIZE
from voicechat.serve.transport import server_config

pytestmark = pytest.mark.slow


class ServerThread:
    """The app under a real uvicorn server on a free 127.0.0.1 port, in its own thread and event loop."""

    def __init__(self, hub: Hub, origins: Origins | None = None) -> None:
        import uvicorn

        self.hub = hub
        config = server_config(create_app(hub, origins or Origins()), "127.0.0.1", 0, hub.defaults.limits)
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),),
                                       daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def url(self, path: str = "/ws") -> str:
        scheme = "ws" if path.startswith("/ws") else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def call(self, work: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop (to look at its tasks)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)


def make_hub(llm: SSEServer, token: str | None = None, characters: tuple[str, ...] = ("lydia",),
             pace: bool = False, profiles: tuple[str, ...] = ("default",),
             limits: ServeLimits = ServeLimits(), settings: dict[str, Any] | None = None) -> Hub:
    """Every offered profile pointed at the test's LLM server (and given `settings`)."""
    overrides = {name: {"llm.base_url": llm.base_url, **(settings or {})} for name in profiles}
    return Hub(ConnectionDefaults(profiles[0], characters, pace, profiles, limits),
               EngineCache(profiles, overrides), token)


@pytest.fixture
def llm() -> Iterator[SSEServer]:
    with SSEServer() as server:
        yield server


@pytest.fixture
def served(llm: SSEServer) -> Iterator[ServerThread]:
    with ServerThread(make_hub(llm)) as server:
        yield server


@dataclass
class Client:
    """A websockets client that collects what the server sends: JSON events and audio bytes, in order."""

    socket: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    order: list[str] = field(default_factory=list)  # event types, with "<audio>" for each binary frame

    async def next_event(self, timeout: float = 60) -> dict[str, Any]:
        while True:
            data = await asyncio.wait_for(self.socket.recv(), timeout)
            if isinstance(data, bytes):
                self.audio += data
                if not self.order or self.order[-1] != "<audio>":
                    self.order.append("<audio>")
                continue
            event: dict[str, Any] = json.loads(data)
            self.events.append(event)
            self.order.append(event["type"])
            return event

    async def until(self, kind: str, timeout: float = 60) -> dict[str, Any]:
        while (event := await self.next_event(timeout))["type"] != kind:
            pass
        return event

    async def say(self, text: str) -> dict[str, Any]:
        await self.socket.send(json.dumps({"type": "text", "text": text}))
        return await self.until("turn_metrics")

    def replies(self) -> str:
        return "".join(e["text"] for e in self.events if e["type"] == "reply_text")


async def connect(url: str, **options: Any) -> Client:
    client = Client(await websockets.connect(url, max_size=None, **options))
    ready = await client.until("ready")
    assert ready["characters"] == ["Lydia"] and ready["input_sample_rate"] == 16000
    return client


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_a_typed_turn_comes_back_as_text_then_audio(served: ServerThread, llm: SSEServer) -> None:
    llm.queue(Script.reply("Hello Ada. Nice to meet you."))

    async def run() -> tuple[Client, dict[str, Any], dict[str, Any]]:
        client = await connect(served.url())
        health = get_json(served.url("/health"))
        metrics = await client.say("Hi, I am Ada.")
        await client.socket.close()
        return client, health, metrics

    client, health, metrics = asyncio.run(run())
    assert health["status"] == "ok" and health["connections"] == 1 and health["token_required"] is False
    assert client.replies() == "Hello Ada. Nice to meet you."
    assert client.order[:4] == ["ready", "transcript_final", "turn_start", "reply_text"]
    assert client.order.index("audio_start") < client.order.index("<audio>") < client.order.index("audio_complete")
    assert client.order.index("audio_complete") < client.order.index("turn_metrics")
    start = next(e for e in client.events if e["type"] == "audio_start")
    assert start["sample_rate"] == 22050 and start["encoding"] == "pcm_s16le"
    assert 22050 * 2 * 0.8 < len(client.audio) < 22050 * 2 * 6  # about two seconds of speech
    assert metrics["interrupted"] is False and metrics["error"] is None and metrics["metrics"]["first_audio"] > 0
    assert [s["text"] for s in metrics["spoken"]] == ["Hello Ada.", "Nice to meet you."]
    assert llm.requests[0].body["messages"][-1] == {"role": "user", "content": "Hi, I am Ada."}


def test_two_clients_at_once_keep_separate_histories(served: ServerThread, llm: SSEServer) -> None:
    async def chat(name: str) -> Client:
        client = await connect(served.url())
        for line in (f"My name is {name}.", f"What is my name, {name}?"):
            metrics = await client.say(line)
            assert metrics["error"] is None
        await client.socket.close()
        return client

    async def run() -> list[Client]:
        return list(await asyncio.gather(chat("Ada"), chat("Bob")))

    clients = asyncio.run(run())
    assert all(client.order.count("turn_metrics") == 2 and len(client.audio) > 0 for client in clients)
    seconds = [r.body["messages"] for r in llm.requests if "What is my name" in r.body["messages"][-1]["content"]]
    assert len(seconds) == 2
    for messages in seconds:
        asked = messages[-1]["content"]
        name, other = ("Ada", "Bob") if "Ada" in asked else ("Bob", "Ada")
        history = " ".join(m["content"] for m in messages[:-1])
        assert f"My name is {name}." in history and other not in history


def test_a_client_gone_mid_reply_frees_its_session(served: ServerThread, llm: SSEServer) -> None:
    long_reply = " ".join(f"Sentence {n} goes on for a little while." for n in range(30))
    llm.queue(Script.reply(long_reply, delay=0.02))

    async def baseline() -> int:
        return len(asyncio.all_tasks())

    before = served.call(baseline())
    threads_before = {t.name for t in threading.enumerate()}

    async def run() -> None:
        client = await connect(served.url())
        await client.socket.send(json.dumps({"type": "text", "text": "Tell me a long story."}))
        await client.until("audio_start")
        await client.socket.close()

    async def grab() -> Any:
        return next(iter(served.hub.live.values()))

    asyncio.run(run())
    deadline = time.monotonic() + 30
    while served.hub.live and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not served.hub.live
    deadline = time.monotonic() + 30
    while served.call(baseline()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.call(baseline()) == before  # the turn, the sender and the TTS stream all ended
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(t.name == "voicechat-worker" for t in threading.enumerate()
                                              if t.name not in threads_before):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "voicechat-worker"]
    assert len(llm.requests) == 1
    assert get_json(served.url("/health"))["connections"] == 0


def test_the_connection_keeps_its_tasks_until_it_closes(served: ServerThread, llm: SSEServer) -> None:
    llm.queue(Script.reply(" ".join(["Still talking here."] * 20), delay=0.02))

    async def run() -> Any:
        client = await connect(served.url())
        await client.socket.send(json.dumps({"type": "text", "text": "Talk."}))
        await client.until("audio_start")
        connection = next(iter(served.hub.live.values()))
        live_tasks = [task for task in connection.tasks if not task.done()]
        await client.socket.close()
        return connection, live_tasks

    connection, live_tasks = asyncio.run(run())
    assert len(live_tasks) >= 2  # the sender and the turn in flight
    deadline = time.monotonic() + 30
    while served.hub.live and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(task.done() for task in live_tasks) and connection.session is None


def test_bad_input_gets_an_error_and_the_connection_stays_up(served: ServerThread, llm: SSEServer) -> None:
    bad: list[str | bytes] = [
        "this is not json",
        "[1, 2, 3]",
        json.dumps({"type": "dance"}),
        json.dumps({"type": "text"}),
        json.dumps({"type": "text", "text": "x" * 5000}),
        json.dumps({"type": "config", "sample_rate": 48000}),
        json.dumps({"type": "config", "encoding": "float32"}),
        json.dumps({"type": "config", "characters": ["nobody-here"]}),
        json.dumps({"type": "config", "profile": "no-such-profile"}),
        b"\x01\x02\x03",
        bytes(70_000),
    ]
    expected = ["malformed JSON", "JSON object", "unknown message type 'dance'", "text", "4000",
                "resample to 16000", "pcm_s16le", "no character card 'nobody-here'", "does not offer that profile",
                "whole int16", "70000 bytes"]
    llm.queue(Script.reply("Still here."))

    async def run() -> tuple[list[dict[str, Any]], Client, int | None]:
        client = await connect(served.url())
        errors = []
        for message in bad:
            await client.socket.send(message)
            errors.append(await client.until("error"))
        await client.say("Are you still there?")
        await client.socket.close()
        huge = await websockets.connect(served.url(), max_size=None)
        await huge.recv()
        await huge.send(bytes(WS_MAX_SIZE + 2))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(huge.recv(), 10)
        return errors, client, huge.close_code

    errors, client, close_code = asyncio.run(run())
    for error, needle in zip(errors, expected, strict=True):
        assert needle in error["message"] and error["fatal"] is False, (needle, error)
        assert "\n" not in error["message"]
        assert not any(name in error["message"] for name in ("captain", "narrator", "llamacpp", "vllm", "/"))
    assert client.replies() == "Still here."
    assert close_code == 1009  # over the WebSocket size limit: closed by the protocol, not the server process
    assert get_json(served.url("/health"))["status"] == "ok"


def test_config_changes_characters_and_profile_and_reset_forgets(llm: SSEServer) -> None:
    with ServerThread(make_hub(llm, profiles=("default", "llamacpp"))) as served:
        config, reset, switched, health = _switch_and_reset(served)
        deadline = time.monotonic() + 30
        while get_json(served.url("/health"))["profiles"] != ["default"] and time.monotonic() < deadline:
            time.sleep(0.05)
        after = get_json(served.url("/health"))
    assert switched["profile"] == "llamacpp" and switched["characters"] == config["characters"]
    assert switched["profiles"] == ["default", "llamacpp"]
    assert llm.requests[2].body["model"] == "local" and not earlier_lines(llm.requests[2], "Hello again.")
    assert health["profiles"] == ["default", "llamacpp"]
    assert after["profiles"] == ["default"]  # the switched-to profile's engines went with its last client
    captain = config["characters"][0]
    assert captain != "Lydia" and captain in llm.requests[0].body["messages"][0]["content"]
    assert len(reset["conversation"]) == 32
    assert not earlier_lines(llm.requests[1], "Ahoy, who are you?")  # history is gone
    assert captain in llm.requests[1].body["messages"][0]["content"]


def earlier_lines(request: Any, *lines: str) -> list[str]:
    """Which of `lines` a request carries as history (before its last message)."""
    history = " ".join(str(m["content"]) for m in request.body["messages"][:-1])
    return [line for line in lines if line in history]


def _switch_and_reset(served: ServerThread) -> tuple[dict[str, Any], ...]:
    async def run() -> tuple[dict[str, Any], ...]:
        client = await connect(served.url())
        await client.socket.send(json.dumps({"type": "config", "characters": ["captain"]}))
        config = await client.until("config")
        await client.say("Ahoy, who are you?")
        await client.socket.send(json.dumps({"type": "reset"}))
        reset = await client.until("reset")
        await client.say("Hello again.")
        await client.socket.send(json.dumps({"type": "config", "profile": "llamacpp"}))
        switched = await client.until("ready")
        await client.say("And now?")
        health = get_json(served.url("/health"))
        await client.socket.close()
        return config, reset, switched, health

    return asyncio.run(run())


def test_a_token_is_checked_on_connect(llm: SSEServer) -> None:
    with ServerThread(make_hub(llm, token="s3cret")) as server:

        async def run() -> list[object]:
            outcomes: list[object] = []
            for url, headers in ((server.url(), None), (server.url("/ws?token=wrong"), None),
                                 (server.url("/ws?token=s3cret"), None),
                                 (server.url(), {"Authorization": "Bearer s3cret"})):
                try:
                    client = await websockets.connect(url, additional_headers=headers)
                except websockets.InvalidStatus as refused:
                    outcomes.append(refused.response.status_code)
                    continue
                outcomes.append(json.loads(await client.recv())["type"])
                await client.close()
            return outcomes

        assert asyncio.run(run()) == [403, 403, "ready", "ready"]
        assert get_json(server.url("/health"))["token_required"] is True


def test_binding_beyond_loopback_without_a_token_is_refused() -> None:
    result = run_cli("serve", "--host", "0.0.0.0", timeout=60)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "--token" in lines[0] and "VOICECHAT_TOKEN" in lines[0]


def test_a_spoken_turn_is_heard_and_answered(served: ServerThread, llm: SSEServer, make_speech) -> None:  # type: ignore[no-untyped-def]
    from voicechat.live.sources import read_speech_file, silence, split_frames

    question = "What is the capital of France?"
    pcm = silence(0.3) + read_speech_file(make_speech(question, "q.wav")) + silence(2.0)
    llm.queue(Script.reply("The capital of France is Paris."))

    async def run() -> Client:
        client = await connect(served.url())
        await client.socket.send(silence(0.1))  # the first frame makes the recognizer (a few seconds cold)
        await client.until("listening", timeout=90)
        started = time.monotonic()
        for index, frame in enumerate(split_frames(pcm)):
            await client.socket.send(frame)
            delay = started + (index + 1) * 0.032 - time.monotonic()  # real-time pace: 32 ms frames
            if delay > 0:
                await asyncio.sleep(delay)
        await client.until("turn_metrics", timeout=90)
        await client.socket.close()
        return client

    client = asyncio.run(run())
    final = next(e for e in client.events if e["type"] == "transcript_final")
    assert word_error_rate(question, final["text"]) <= 0.2, final
    assert client.replies() == "The capital of France is Paris." and len(client.audio) > 22050
    assert llm.requests[0].body["messages"][-1]["content"] == final["text"]


def test_the_page_and_its_scripts_are_served(served: ServerThread) -> None:
    with urllib.request.urlopen(served.url("/"), timeout=10) as response:
        page = response.read().decode()
    assert '<script src="/static/app.js">' in page
    for asset in ("app.js", "mic-worklet.js", "style.css"):
        with urllib.request.urlopen(served.url(f"/static/{asset}"), timeout=10) as response:
            assert response.status == 200 and len(response.read()) > 100


def test_static_files_ship_in_the_package() -> None:
    from importlib import resources

    static = resources.files("voicechat.serve") / "static"
    assert {"index.html", "app.js", "mic-worklet.js", "style.css"} <= {p.name for p in static.iterdir()}
    assert Path(str(static)).is_dir()


def test_a_client_gone_while_its_recognizer_starts_leaves_nothing_running(served: ServerThread) -> None:
    """The recognizer being made when the client leaves is finished, then stopped: no thread or task stays.
    The first round sets up what a process keeps once (the loop's thread pool, tqdm's monitor)."""
    from voicechat.live.sources import silence

    async def count_tasks() -> int:
        return len(asyncio.all_tasks())

    async def come_and_go() -> None:
        client = await connect(served.url())
        await client.socket.send(silence(0.1))  # starts this connection's recognizer
        await asyncio.sleep(0.2)
        await client.socket.close()

    def working_threads() -> int:
        """Threads other than idle pools that grow on demand (the loop's executor, tqdm's monitor), and
        RealtimeSTT's stdout pipe worker: its shutdown never closes that pipe, so the worker ends only at
        the pipe's EOF, which under pytest's output capture can come late (without capture it is gone when
        the recognizer stops; RealtimeListener could close it)."""
        return sum(1 for t in threading.enumerate()
                   if not t.name.startswith(("asyncio_", "tqdm_monitor", "ParentPipe_Worker")))

    def settled(tasks: int, threads: int | None) -> bool:
        return (not served.hub.live and served.call(count_tasks()) <= tasks
                and (threads is None or working_threads() <= threads))

    counts: list[tuple[int, int]] = []
    for attempt in range(3):
        tasks_before, threads_before = served.call(count_tasks()), working_threads()
        asyncio.run(come_and_go())
        deadline = time.monotonic() + 30
        while not settled(tasks_before, threads_before if attempt else None) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        counts.append((served.call(count_tasks()) - tasks_before, working_threads() - threads_before))
    assert not served.hub.live
    # no growth: a count can also fall, when a thread an earlier test left finishing ends meanwhile
    grown = [(tasks > 0, threads > 0) for tasks, threads in counts[1:]]
    assert counts[0][0] <= 0 and grown == [(False, False)] * 2, (counts, [t.name for t in threading.enumerate()])
    assert not [t.name for t in threading.enumerate() if t.name.startswith("voicechat-")]


def test_an_llm_failure_is_reported_in_the_turn_and_the_key_never_shows(
        llm: SSEServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-test-never-shown-4242"
    monkeypatch.setenv("OPENROUTER_API_KEY", secret)
    llm.queue(Script.http_error(401), Script.reply("Working again."))
    with ServerThread(make_hub(llm)) as server:

        async def run() -> tuple[Client, dict[str, Any], dict[str, Any]]:
            client = await connect(server.url())
            failed = await client.say("Hello?")
            recovered = await client.say("Hello again?")
            await client.socket.close()
            return client, failed, recovered

        client, failed, recovered = asyncio.run(run())
    assert failed["error"] == REPLY_FAILED  # generic for the client...
    logged = [r.getMessage() for r in caplog.records if r.name == "voicechat.serve" and "turn 0" in r.getMessage()]
    assert len(logged) == 1 and "401" in logged[0] and "OPENROUTER_API_KEY" in logged[0]  # ...the detail logged
    assert recovered["error"] is None and client.replies().endswith("Working again.")
    assert llm.requests[0].headers["authorization"] == f"Bearer {secret}"  # the key was used...
    assert all(secret not in json.dumps(event) for event in client.events)  # ...and never sent to the client


def test_an_interrupt_stops_a_paced_reply_and_history_keeps_what_was_heard(llm: SSEServer) -> None:
    from voicechat.llm.conversation import CUT_MARK

    story = " ".join(f"Part {n} of the story is told here." for n in range(1, 16))
    llm.queue(Script.reply(story), Script.reply("Sure."))
    with ServerThread(make_hub(llm, pace=True)) as server:

        async def run() -> tuple[Client, dict[str, Any], int]:
            client = await connect(server.url())
            await client.socket.send(json.dumps({"type": "text", "text": "Tell me a story."}))
            await client.until("audio_start")
            await asyncio.sleep(1.5)  # a sentence or two has played
            await client.socket.send(json.dumps({"type": "interrupt"}))
            cut = await client.until("turn_metrics")
            audio_at_cut = len(client.audio)
            await client.say("Something else.")
            await client.socket.close()
            return client, cut, audio_at_cut

        client, cut, audio_at_cut = asyncio.run(run())
    complete = [e for e in client.events if e["type"] == "audio_complete"]
    assert complete[0]["interrupted"] is True and complete[1]["interrupted"] is False
    assert cut["interrupted"] is True
    heard = " ".join(s["text"] for s in cut["spoken"])
    assert heard.startswith("Part 1") and "Part 15" not in heard
    assert audio_at_cut < 22050 * 2 * 4  # paced: about what had time to play, not the whole story
    history = llm.requests[1].body["messages"][-2]["content"]  # the cut reply, before the new line
    assert history.endswith(CUT_MARK) and "Part 15" not in history


def test_a_port_in_use_fails_at_once_in_one_line() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), timeout=60)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0]
