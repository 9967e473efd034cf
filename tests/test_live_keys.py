"""Keys in the live view, through a real terminal (tmux) and real devices (the PulseAudio rig): m mutes,
space is push-to-talk, Esc interrupts the reply, q quits; the help line says so."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live_rig import Devices, microphone  # noqa: F401 (a fixture)
from tests.sse_server import Script, SSEServer
from voicechat.events import AudioFrame
from voicechat.live.keys import HELP, MicGate

SPOKEN = (" ".join(f"Sentence {n} of a long reply goes on." for n in range(1, 30)))


def test_the_gate_passes_silence_when_closed() -> None:
    gate = MicGate()
    frame = AudioFrame(pcm=b"\x10\x20" * 512, sample_rate=16000, level=-20.0)
    assert gate.pass_frame(frame) is frame and gate.status() == "hands-free"
    gate.press_space()
    assert gate.open and gate.status() == "push-to-talk: talking (space to stop)"
    gate.press_space()
    closed = gate.pass_frame(frame)
    assert not gate.open and closed.pcm == bytes(1024) and closed.level == -96.0
    gate.press_space()
    gate.toggle_mute()
    assert not gate.open and gate.status() == "MUTED (m to unmute)"


class Terminal:
    """One tmux session on its own server socket, running a command; keys in, the screen out."""

    def __init__(self, command: str, name: str) -> None:
        self.socket = f"voicechat-test-{os.getpid()}-{name}"
        self._tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "45", f"{command}; echo EXITED $?; sleep 60")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        """What the pane shows (and scrolled past), as one line: the view's lines may wrap."""
        return " ".join(self._tmux("capture-pane", "-p", "-t", "t", "-S", "-200").split())

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, found: Callable[[str], bool], timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found(screen := self.screen()):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed it within {timeout} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def requests_after(server: SSEServer, count: int, seconds: float) -> int:
    """How many requests the LLM server has after waiting `seconds` (to see that none came)."""
    time.sleep(seconds)
    return len(server.requests) - count


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="seen once with talk gone before its first screen in a CI-like run; "
                   "passes alone: not yet stable on the shared rig")
def test_mute_push_to_talk_interrupt_and_quit(microphone: Devices,  # noqa: F811 (the fixture)
                                             server: SSEServer, voicechat_home: Path,
                                             make_speech: Callable[[str, str], Path]) -> None:
    question = make_speech("What is the capital of France?", "question.wav")
    server.queue(Script.reply("The capital of France is Paris."), Script.reply(SPOKEN, delay=0.15))
    env = {"VOICECHAT_HOME": str(voicechat_home), "OPENROUTER_API_KEY": "test-key-not-secret", **microphone.env}
    command = " ".join([
        "env", *(f"{key}={shlex.quote(value)}" for key, value in env.items()),
        shlex.quote(sys.executable), "-m", "voicechat", "talk", "--headphones", "--no-greeting",
        "--base-url", shlex.quote(server.base_url),
    ])
    terminal = Terminal(command, "keys")
    try:
        terminal.wait_for(lambda screen: "listening: speak when you like" in screen and HELP in screen)
        assert "mic hands-free" in terminal.screen()
        time.sleep(1.0)  # the microphone stream opens just after the line

        terminal.keys("m")
        terminal.wait_for(lambda screen: "mic MUTED (m to unmute)" in screen, 10)
        microphone.speak(question)
        assert requests_after(server, 0, 4.0) == 0  # muted: nothing heard, nothing asked

        terminal.keys("m")
        terminal.wait_for(lambda screen: "mic hands-free" in screen, 10)
        microphone.speak(question)
        terminal.wait_for(lambda screen: "The capital of France is Paris." in screen and "end of speech" in screen)

        microphone.speak(question)
        terminal.wait_for(lambda screen: "Sentence 2 of a long reply" in screen)
        terminal.keys("Escape")
        terminal.wait_for(lambda screen: "(interrupted)" in screen, 20)

        terminal.keys("Space")
        terminal.wait_for(lambda screen: "push-to-talk: talking (space to stop)" in screen, 10)
        terminal.keys("Space")
        terminal.wait_for(lambda screen: "push-to-talk: space to talk" in screen, 10)
        microphone.speak(question)
        assert requests_after(server, 2, 4.0) == 0  # push-to-talk, not talking: the microphone is closed

        terminal.keys("q")
        terminal.wait_for(lambda screen: "EXITED 0" in screen, 60)
    finally:
        terminal.close()
    folder = voicechat_home / "data" / "transcripts"
    turns = [json.loads(line) for path in folder.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert [turn["cut"] for turn in turns] == [False, True]
    assert turns[0]["replies"][0]["text"] == "The capital of France is Paris."
    assert "Sentence 29" not in turns[1]["replies"][0]["text"]
