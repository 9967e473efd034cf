"""The browser page in headless Debian chromium against the real `voicechat serve` command: it loads,
connects, fills in a typed turn (?say=...), sends it when the user clicks Send (never by itself), and shows
the reply, with the reply's audio received.

Chromium is driven over the DevTools protocol with the `websockets` client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.conftest import word_error_rate
from tests.sse_server import Script, SSEServer

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
SECRET = "sk-browser-test-never-logged-77"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


def stop(process: subprocess.Popen[bytes], how: signal.Signals, grace: float) -> None:
    """Ask a child to stop with `how`; kill it if it has not within `grace` seconds."""
    process.send_signal(how)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def llm() -> Iterator[SSEServer]:
    with SSEServer() as server:
        yield server


@pytest.fixture
def voicechat_serve(llm: SSEServer) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`voicechat serve` in a subprocess on a free port, with a token (as a remote deployment would have)."""
    port = free_port()
    env = {**os.environ, "VOICECHAT_TOKEN": "tok-123", "OPENROUTER_API_KEY": SECRET}
    process = subprocess.Popen([sys.executable, "-m", "voicechat", "serve", "--port", str(port), "--base-url",
                                llm.base_url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or urllib.request.urlopen(f"{base}/health", timeout=2).status,
                 90, "voicechat serve answered /health")
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield base, process
    finally:
        if process.poll() is None:
            stop(process, signal.SIGINT, 30)


@contextlib.contextmanager
def run_chromium(profile: Path, extra: Sequence[str] = ()) -> Iterator[str]:
    """A headless chromium; yields the DevTools WebSocket URL of its page."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    process = subprocess.Popen([CHROMIUM, *FLAGS, *extra, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        active = profile / "DevToolsActivePort"
        port = wait_for(lambda: active.is_file() and active.read_text().split("\n")[0], 60, "chromium started")

        def page() -> str | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                targets = json.loads(response.read())
            return next((t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"), None)

        yield wait_for(page, 30, "chromium's page target")
    finally:
        stop(process, signal.SIGTERM, 20)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[str]:
    with run_chromium(tmp_path / "chromium-profile") as devtools:
        yield devtools


class DevTools:
    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.exceptions: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), 30))
            if message.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(json.dumps(message["params"]["exceptionDetails"])[:500])
            if message.get("id") == ident:
                assert "error" not in message, message
                return dict(message["result"])

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


PAGE_STATE = """JSON.stringify({
  status: document.getElementById('status').textContent,
  state: document.getElementById('status').dataset.state,
  log: document.getElementById('log').innerText,
  bytes: Number(document.getElementById('audio').dataset.bytes),
})"""


def test_the_page_shows_a_typed_turns_reply(voicechat_serve: tuple[str, Any], chromium: str, llm: SSEServer) -> None:
    """A link with ?say= fills the box; a script's click sends nothing (review F14); the user's click sends."""
    base, _ = voicechat_serve
    llm.queue(Script.reply("Hello from the server. Nice to meet you."))
    url = f"{base}/?token=tok-123&say=" + urllib.parse.quote("Hi there, browser here.")
    before: dict[str, Any] = {}

    async def untouched(tools: DevTools) -> None:
        await tools.evaluate("document.getElementById('send').click()")  # a script's click: not the user's
        await asyncio.sleep(1.5)
        before.update(requests=len(llm.requests), text=await tools.evaluate("document.getElementById('text').value"))

    state, exceptions = asyncio.run(watch_page(chromium, url, "first audio", before_click=untouched, press="send"))
    assert before == {"requests": 0, "text": "Hi there, browser here."}  # nothing went without the user
    assert state["state"] == "ready" and "Lydia" in state["status"], state
    assert "you: Hi there, browser here." in state["log"]
    assert "Lydia: Hello from the server. Nice to meet you." in state["log"]
    assert "first audio" in state["log"] and state["bytes"] > 22050, state  # the reply's PCM reached the page
    assert exceptions == []
    assert llm.requests[0].body["messages"][-1]["content"] == "Hi there, browser here."
    health = json.loads(urllib.request.urlopen(f"{base}/health", timeout=5).read())
    assert health["token_required"] is True


def test_the_page_without_the_token_says_it_was_refused(voicechat_serve: tuple[str, Any], chromium: str) -> None:
    base, _ = voicechat_serve
    state, _ = asyncio.run(watch_page(chromium, f"{base}/", None, 30))
    assert state["state"] == "error" and state["status"].startswith("disconnected"), state
    assert "add ?token=... to this page's address" in state["status"]


def test_serve_logs_connections_not_secrets_and_stops_on_ctrl_c(voicechat_serve: tuple[str, Any]) -> None:
    base, process = voicechat_serve

    async def one_turn() -> str:
        url = base.replace("http", "ws") + "/ws"
        async with websockets.connect(url, additional_headers={"Authorization": "Bearer tok-123"}) as client:
            await client.send(json.dumps({"type": "text", "text": "Hi."}))
            seen = []
            while "turn_metrics" not in seen:
                message = await asyncio.wait_for(client.recv(), 60)
                if isinstance(message, str):
                    seen.append(json.loads(message)["type"])
            return ",".join(seen)

    assert "reply_text" in asyncio.run(one_turn())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    text = stderr.decode()
    assert process.returncode == 0, text
    assert "Traceback" not in text and f"voicechat serve: {base}/" in text
    assert SECRET not in text and "tok-123" not in text
    assert "opened (1 live)" in text and "closed (0 live)" in text



QUESTION = "What is the capital of France?"


def microphone_wav(make_speech: Any) -> Path:
    """The question between silences, as chromium's fake microphone plays it (looped)."""
    import wave

    speech = make_speech(QUESTION, "question.wav")
    with wave.open(str(speech)) as source:
        rate, frames = source.getframerate(), source.readframes(source.getnframes())
    target = speech.with_name("microphone.wav")
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(rate) + frames + bytes(rate * 2 * 8))  # 0.5 s, the question, 8 s of silence
    return target


async def click(tools: DevTools, element: str) -> None:
    """A real mouse click at the element's centre, as the user makes one (a trusted event)."""
    box = await tools.evaluate(f"JSON.stringify(document.getElementById('{element}').getBoundingClientRect())")
    rect = json.loads(box)
    x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
    for kind in ("mousePressed", "mouseReleased"):
        await tools.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


async def page_state(tools: DevTools) -> dict[str, Any]:
    return dict(json.loads(await tools.evaluate(PAGE_STATE) or "{}"))


async def watch_page(devtools: str, url: str, done: str | None, timeout: float = 60, *,
                     before_click: Any = None, press: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Open `url`; once connected, run `before_click(tools)` and click the element `press` (as the user);
    then poll the page until its log shows `done` (or the page reports an error)."""
    async with websockets.connect(devtools, max_size=None) as socket:
        tools = DevTools(socket)
        await tools.call("Runtime.enable")
        await tools.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        acted = press is None and before_click is None
        while time.monotonic() < deadline:
            state = await page_state(tools)
            if (done is not None and done in state.get("log", "")) or state.get("state") == "error":
                break
            if not acted and state.get("state") == "ready":
                acted = True
                if before_click is not None:
                    await before_click(tools)
                if press is not None:
                    await click(tools, press)
            await asyncio.sleep(0.2)
        return state, tools.exceptions


@pytest.mark.xfail(strict=False, reason="failed once, passed in other CI-like runs of the same commit: not yet stable")
def test_the_page_hears_its_microphone_and_answers(voicechat_serve: tuple[str, Any], llm: SSEServer,
                                                  make_speech: Any, tmp_path: Path) -> None:
    """getUserMedia -> AudioWorklet -> 16 kHz int16 frames -> the server's recognizer -> a spoken reply."""
    base, _ = voicechat_serve
    llm.queue(Script.reply("Paris is the capital of France."))
    microphone = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={microphone_wav(make_speech)}"]
    with run_chromium(tmp_path / "chromium-profile", microphone) as devtools:
        state, exceptions = asyncio.run(watch_page(devtools, f"{base}/?token=tok-123", "first audio", 90,
                                                   press="mic"))
    assert "listening" in state["log"], state
    heard = next(line for line in state["log"].splitlines() if line.startswith("you: "))
    assert word_error_rate(QUESTION, heard.removeprefix("you: ")) <= 0.2, heard
    assert "Lydia: Paris is the capital of France." in state["log"] and state["bytes"] > 22050
    assert exceptions == []
