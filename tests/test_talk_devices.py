"""`voicechat talk` on real audio devices: the live microphone loop as a user runs it.

The real command runs on the rig's PulseAudio devices (tests/audio_rig.py): a question spoken into the
microphone, the reply recorded from the speakers and transcribed back, the room's echo from speakers to
microphone at a chosen level, Ctrl+C and SIGTERM piped and under a terminal (tmux). The LLM is the
scripted loopback server; speech is Piper, recognition the bundled Whisper.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio_rig import AudioRig, open_rig
from tests.conftest import REPO, devices_of_a_new_process, run_cli, synthesize_wav, transcribe_file, word_error_rate
from tests.sse_server import Script, SSEServer

pytestmark = pytest.mark.slow

KEY = {"OPENROUTER_API_KEY": "test-key-not-secret"}
DEBUG_LOG = {"VOICECHAT_LOG_LEVEL": "DEBUG"}  # every word heard goes to talk.log, shown when a test fails
QUESTION = "What is the capital of France?"
REPLY = ("The capital of France is Paris. It is a lovely city on the river Seine, with many old bridges and "
         "wide streets.")
LONG_REPLY = ("Once upon a time there was a small boat on a wide grey sea. The sailor in it had lost his map. "
              "He watched the stars every night to find his way home. One night a storm came and threw the "
              "waves high. The boat spun around and around until the morning came.")
INTERRUPTION = "Stop. Tell me about Mars instead."
MARS = "Mars is a cold red planet."
PAUSED_QUESTION = ("Could you please", "remind me to call my mother?")
PAUSED_REPLY = "Of course, I will remind you to call your mother tonight."
READY_TIMEOUT = 180  # the recognizer loads in 15-25 s on a busy 2-core machine
STOP_WITHIN = 2.0  # the bound for Ctrl+C / SIGTERM: a stopped conversation, not a hang
QUESTION_WER = 0.4  # tiny.en through the devices: two words of six may slip ("But what is capital of France?")


@pytest.fixture(scope="module")
def rig() -> Iterator[AudioRig]:
    yield from open_rig("talk_")  # devices of its own: other tests may play on the shared ones meanwhile


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("speech")
    return {text: synthesize_wav(text, folder / f"{index}.wav") for index, text in enumerate((QUESTION, INTERRUPTION))}


def talk_command(server: SSEServer, transcript: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "voicechat", "talk", "--base-url", server.base_url, "--transcript",
            str(transcript), "--no-greeting", *extra]


def records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_turns(transcript: Path, count: int, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(records(transcript)) < count:
        time.sleep(0.2)
    return records(transcript)


class PipedTalk:
    """`voicechat talk` with stdout and stderr piped, as in a script or a service."""

    def __init__(self, server: SSEServer, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.transcript = tmp_path / "talk.jsonl"
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(talk_command(server, self.transcript, *extra), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env={**os.environ, **KEY, **DEBUG_LOG, **(env or {})},
                                        cwd=REPO)
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if line.startswith("listening:"):
                self.ready.set()

    def output(self) -> str:
        """What talk printed, then the words its recognizer heard (talk.log), for a failing test to show."""
        log = Path(os.environ["VOICECHAT_HOME"]) / "data" / "logs" / "talk.log"
        heard = [line for line in log.read_text().splitlines() if "voicechat." in line] if log.exists() else []
        return "\n".join([*self.lines, "--- talk.log ---", *heard[-60:]])

    def wait_ready(self) -> None:
        assert self.ready.wait(READY_TIMEOUT), "\n".join(self.lines)

    def end(self, how: signal.Signals) -> tuple[int, float]:
        """Send `how`; the exit code and the seconds it took to exit."""
        sent = time.monotonic()
        self.process.send_signal(how)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"talk still running 30 s after {how.name}") from None
        return code, time.monotonic() - sent

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def piped(server: SSEServer, tmp_path: Path) -> Iterator[list[PipedTalk]]:
    started: list[PipedTalk] = []
    yield started
    for talk in started:
        talk.kill()


def one_question(rig: AudioRig, talk: PipedTalk, speech: dict[str, Path], tmp_path: Path) -> tuple[list, str]:  # type: ignore[type-arg]
    """Speak the question, wait for its turn and a few seconds more (an echo loop would add turns)."""
    talk.wait_ready()
    monitor = rig.monitor()
    rig.speak_and_wait(speech[QUESTION])
    turns = wait_for_turns(talk.transcript, 1, timeout=120)
    time.sleep(4.0)
    heard = transcribe_file(monitor.stop(tmp_path / "speakers.wav"))
    return records(talk.transcript) or turns, heard


@pytest.mark.parametrize("echo_db", [None, -6, -12, -18, -24])
def test_one_spoken_question_is_one_turn_and_its_reply_is_heard_whole(  # type: ignore[no-untyped-def]
        rig, server, piped, speech, tmp_path: Path, echo_db: int | None) -> None:
    rig.echo(echo_db)
    server.queue(*(Script.reply(REPLY) for _ in range(30)))  # speculative requests get the same reply
    talk = PipedTalk(server, tmp_path)
    piped.append(talk)
    turns, heard = one_question(rig, talk, speech, tmp_path)
    how = signal.SIGTERM if echo_db is None else signal.SIGINT
    code, took = talk.end(how)
    output = talk.output()

    assert len(turns) == 1, f"echo at {echo_db} dB made extra turns: {[t['user'] for t in turns]}\n{output}"
    assert word_error_rate(QUESTION, str(turns[0]["user"])) <= QUESTION_WER
    assert turns[0]["cut"] is False, output
    assert word_error_rate(REPLY, heard) <= 0.35, heard  # played whole on the speakers
    assert code == 128 + how and took < STOP_WITHIN, (code, took)
    assert records(talk.transcript) == turns  # the transcript is intact after the signal
    assert f"User: {turns[0]['user']}" in talk.lines and "Traceback" not in output


def test_the_reply_is_cut_by_a_real_interruption_with_echo_present(  # type: ignore[no-untyped-def]
        rig, server, piped, speech, tmp_path: Path) -> None:
    rig.echo(-12)
    server.queue(Script.reply(LONG_REPLY), Script.reply(LONG_REPLY), *(Script.reply(MARS) for _ in range(3)))
    talk = PipedTalk(server, tmp_path)
    piped.append(talk)
    talk.wait_ready()
    monitor = rig.monitor()
    rig.speak_and_wait(speech[QUESTION])
    assert monitor.wait_for_sound(timeout=60) is not None, "\n".join(talk.lines)
    time.sleep(2.5)  # the user lets the reply run, then talks over it
    rig.speak_and_wait(speech[INTERRUPTION])
    turns = wait_for_turns(talk.transcript, 2, timeout=90)
    time.sleep(3.0)
    monitor.stop(tmp_path / "speakers.wav")
    talk.end(signal.SIGINT)
    output = talk.output()

    assert len(turns) >= 2, output
    first, second = turns[0], turns[1]
    assert first["cut"] is True, output
    heard = first["replies"][0]["text"]  # type: ignore[index]
    assert LONG_REPLY.startswith(heard.rstrip("…").strip()) and "morning" not in heard
    assert word_error_rate(INTERRUPTION, str(second["user"])) <= 0.35, second["user"]
    assert len(turns) == 2, f"extra turns: {[t['user'] for t in turns]}"


def test_a_thinking_pause_taken_for_the_end_of_the_turn_loses_no_words(  # type: ignore[no-untyped-def]
        rig, server, piped, tmp_path: Path) -> None:
    """A 0.3 s end-of-turn silence ends the turn in the user's 1.2 s pause; the reply to the first half (held
    back 3 s, as a slow model would) is cut by the voice before any of it plays, and the next turn asks both
    halves together."""
    import numpy as np
    import soundfile

    halves = [synthesize_wav(text, tmp_path / f"half{index}.wav") for index, text in enumerate(PAUSED_QUESTION)]
    (first, rate), (second, _) = (soundfile.read(path, dtype="int16") for path in halves)
    spoken = tmp_path / "paused.wav"
    soundfile.write(spoken, np.concatenate([first, np.zeros(int(1.2 * rate), np.int16), second]), rate)
    rig.echo(None)
    server.queue(*(Script([PAUSED_REPLY], delay=3.0) for _ in range(30)))
    talk = PipedTalk(server, tmp_path, env={"VOICECHAT_STT_TURN_DETECTION": "silence",
                                            "VOICECHAT_STT_END_OF_TURN_SILENCE": "0.3"})
    piped.append(talk)
    talk.wait_ready()
    monitor = rig.monitor()
    rig.speak_and_wait(spoken)
    turns = wait_for_turns(talk.transcript, 2, timeout=120)
    time.sleep(6.0)  # the answer plays, and a third turn would show
    heard = transcribe_file(monitor.stop(tmp_path / "speakers.wav"))
    talk.end(signal.SIGINT)
    output = talk.output()

    assert len(turns) == 2, f"{[t['user'] for t in records(talk.transcript)]}\n{output}"
    assert turns[0]["cut"] is True and not turns[0]["replies"], output  # nothing of the half's reply was heard
    asked = str(turns[1]["user"])
    assert word_error_rate(" ".join(PAUSED_QUESTION), asked.replace("...", " ")) <= QUESTION_WER, output
    assert "please" in asked.lower() and "mother" in asked.lower(), output  # both halves, in one turn
    assert word_error_rate(PAUSED_REPLY, heard) <= 0.35, heard  # the answer played, once
    last_request = server.requests[-1].body["messages"]
    assert "please" in last_request[-1]["content"].lower() and "mother" in last_request[-1]["content"].lower()
    assert not any("please" in m["content"].lower() for m in last_request[:-1] if m["role"] == "user")


def test_devices_are_chosen_by_name_and_by_index(rig, server, piped, speech, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig.echo(None)
    pulse = [name for name, _, _ in devices_of_a_new_process()].index("pulse")
    server.queue(*(Script.reply(REPLY) for _ in range(30)))
    talk = PipedTalk(server, tmp_path, "--input-device", "pulse", "--output-device", str(pulse))
    piped.append(talk)
    turns, heard = one_question(rig, talk, speech, tmp_path)
    talk.end(signal.SIGINT)
    assert len(turns) == 1 and word_error_rate(QUESTION, str(turns[0]["user"])) <= QUESTION_WER
    assert word_error_rate(REPLY, heard) <= 0.35, heard


@pytest.mark.parametrize(("flag", "kind"), [("--input-device", "input"), ("--output-device", "output")])
def test_a_device_that_is_not_there_is_bad_usage_in_one_line(rig, flag: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = run_cli("talk", flag, "no-such-device", env=KEY, timeout=60)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2, lines
    assert lines == [f"error: no {kind} device matches 'no-such-device': choose one of 0: pulse, 1: default"]
    assert time.monotonic() - started < 20  # before any model loads


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_under_a_terminal_each_line_shows_once_and_ctrl_c_ends_talk(  # type: ignore[no-untyped-def]
        rig, server, speech, tmp_path: Path) -> None:
    rig.echo(-18)
    server.queue(*(Script.reply(REPLY) for _ in range(30)))
    transcript, exit_file = tmp_path / "talk.jsonl", tmp_path / "exit"
    env = {**{k: v for k, v in os.environ.items() if k.startswith(("VOICECHAT_", "PULSE_", "HOME", "PATH"))}, **KEY}
    assert env.get("PULSE_SINK") == rig.speakers
    command = (f"cd {shlex.quote(str(REPO))} && env {' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())} "
               f"{shlex.join(talk_command(server, transcript))}; echo $? > {shlex.quote(str(exit_file))}; sleep 60")
    tmux = ["tmux", "-L", f"voicechat-test-{os.getpid()}"]
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "30", "-s", "talk", command], check=True)
    try:
        def pane() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p", "-S", "-", "-t", "talk"], capture_output=True,
                                  text=True).stdout

        deadline = time.monotonic() + READY_TIMEOUT
        while "listening:" not in pane() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "listening:" in pane(), pane()
        rig.speak_and_wait(speech[QUESTION])
        turns = wait_for_turns(transcript, 1, timeout=120)
        time.sleep(2.0)
        screen = pane()
        assert len(turns) == 1, screen
        user_lines = [line for line in screen.splitlines() if line.startswith("User:")]
        reply_lines = [line for line in screen.splitlines() if line.startswith("Lydia:")]
        assert len(user_lines) == 1 and len(reply_lines) == 1, screen

        sent = time.monotonic()
        subprocess.run([*tmux, "send-keys", "-t", "talk", "C-c"], check=True)
        while not exit_file.exists() and time.monotonic() - sent < 30:
            time.sleep(0.05)
        took = time.monotonic() - sent
        assert exit_file.exists(), pane()
        time.sleep(0.1)  # the shell has created the file; let it write the code
        assert exit_file.read_text().strip() == "130" and took < STOP_WITHIN, (took, pane())
        assert records(transcript) == turns and "Traceback" not in pane()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
