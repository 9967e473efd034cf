"""`talk --continue` sends the earlier turns to the LLM and appends to the same conversation; a new conversation
opens with the characters' greetings, shown, spoken and kept as its first turn."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, transcribe_file, word_error_rate
from tests.live_rig import Devices, SpeakerRecording, listening, microphone  # noqa: F401 (a fixture)
from tests.sse_server import Script, SSEServer

LYDIA_GREETING = "Hi, I'm Lydia. What's on your mind today?"
CAPTAIN_GREETING = "Captain Reyes on the bridge. Report, crew member."


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def talk(server: SSEServer, lines: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("talk", "--text", "--no-audio", "--base-url", server.base_url, *extra, input=lines,
                   env={"VOICECHAT_LLM_MAX_RETRIES": "0", **(env or {})}, timeout=120)


def records(home: Path) -> list[dict[str, Any]]:
    """Every saved turn, oldest first. Not in file-name order: a conversation begun in the same second as
    the one before is talk-<time>-2.jsonl, which sorts before talk-<time>.jsonl."""
    folder = home / "data" / "transcripts"
    found = [json.loads(line) for path in folder.glob("*.jsonl") for line in path.read_text().splitlines()]
    return sorted(found, key=lambda record: (record["started"], record["turn"]))


def said(request: Any, character: str | None = "lydia") -> list[tuple[str, str]]:
    """What a request carried after the system prompt and the card's example exchanges (one character only)."""
    from voicechat.config.store import load_character

    examples = 2 * len(load_character(character).examples) if character else 0
    return [(m["role"], m["content"]) for m in request.body["messages"][1 + examples:]]


@pytest.mark.slow
def test_continue_sends_the_earlier_turns_and_appends_to_the_same_conversation(server: SSEServer,
                                                                                voicechat_home: Path) -> None:
    server.queue(Script.reply("Hello, nice to meet you."), Script.reply("I love old maps."),
                 Script.reply("Rivers are roads that move."))
    first = talk(server, "hello there\nwhat do you like?\n", "--no-greeting")
    assert first.returncode == 0, first.stderr.decode()
    again = talk(server, "and rivers?\n", "--continue")
    assert again.returncode == 0, again.stderr.decode()
    assert again.stdout.decode().splitlines() == ["Lydia: Rivers are roads that move."]  # no greeting: not new
    assert said(server.requests[2]) == [
        ("user", "hello there"), ("assistant", "Hello, nice to meet you."),
        ("user", "what do you like?"), ("assistant", "I love old maps."), ("user", "and rivers?"),
    ]
    lines = records(voicechat_home)
    assert len({line["conversation_id"] for line in lines}) == 1
    assert [(line["turn"], line["user"]) for line in lines] == [(0, "hello there"), (1, "what do you like?"),
                                                                (2, "and rivers?")]
    assert len(list((voicechat_home / "data" / "transcripts").glob("*.jsonl"))) == 1  # the same file


@pytest.mark.slow
def test_continue_id_takes_that_conversation_its_cast_and_the_history_bounds(server: SSEServer,
                                                                           voicechat_home: Path) -> None:
    server.queue(Script.reply("Ships are my life."), Script.reply("Stars guide us."), Script.reply("Hello."))
    assert talk(server, "tell me about ships\nand the stars?\n", "-c", "captain", "--no-greeting").returncode == 0
    assert talk(server, "hi\n", "--no-greeting").returncode == 0  # a later conversation, with Lydia
    captain = records(voicechat_home)[0]["conversation_id"]
    server.queue(Script.reply("Aye."))
    result = talk(server, "anything else?\n", "--continue", captain[:6], env={"VOICECHAT_LLM_HISTORY_TURNS": "1"})
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["Captain Reyes: Aye."]
    request = server.requests[3]
    assert request.body["messages"][0]["content"].startswith("You are Captain Reyes.")
    assert said(request, "captain") == [("user", "and the stars?"), ("assistant", "Stars guide us."),
                             ("user", "anything else?")]  # history_turns = 1: only the last exchange
    assert [r["turn"] for r in records(voicechat_home) if r["conversation_id"] == captain] == [0, 1, 2]


def test_continue_without_history_and_an_id_without_continue_fail_in_one_line(voicechat_home: Path) -> None:
    nothing = run_cli("talk", "--text", "--no-audio", "--continue", input="hi\n")
    assert nothing.returncode == 2
    assert nothing.stderr.decode().strip().startswith("error: no earlier conversation to continue in ")
    stray = run_cli("talk", "--text", "--no-audio", "abc123", input="hi\n")
    assert stray.returncode == 2 and "pass --continue abc123" in stray.stderr.decode()
    unknown = run_cli("talk", "--text", "--no-audio", "--continue", "abc123", input="hi\n")
    assert unknown.returncode == 2 and "no conversation with ID 'abc123'" in unknown.stderr.decode()


@pytest.mark.slow
def test_a_new_conversation_opens_with_each_greeting_in_history(server: SSEServer, voicechat_home: Path) -> None:
    server.queue(Script.reply("<Lydia>Hello both.</Lydia>"))
    result = talk(server, "hello\n", "-c", "lydia", "-c", "captain")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == [f"Lydia: {LYDIA_GREETING}", f"Captain Reyes: {CAPTAIN_GREETING}",
                                                   "Lydia: Hello both."]
    first = records(voicechat_home)[0]
    assert (first["turn"], first["user"]) == (0, "")
    assert first["replies"] == [{"character": "Lydia", "text": LYDIA_GREETING},
                                {"character": "Captain Reyes", "text": CAPTAIN_GREETING}]
    assert said(server.requests[0], None) == [
        ("assistant", f"<Lydia>{LYDIA_GREETING}</Lydia><Captain Reyes>{CAPTAIN_GREETING}</Captain Reyes>"),
        ("user", "hello"),
    ]
    shown = run_cli("history", "show", first["conversation_id"][:8]).stdout.decode()
    assert f"Lydia: {LYDIA_GREETING}" in shown


@pytest.mark.slow
def test_no_greeting_and_reset(server: SSEServer) -> None:
    server.queue(Script.reply("One."), Script.reply("Two."))
    quiet = talk(server, "hello\n", "--no-greeting")
    assert quiet.stdout.decode().splitlines() == ["Lydia: One."]
    assert said(server.requests[0]) == [("user", "hello")]
    again = talk(server, "/reset\nhi\n", "--no-greeting")
    assert again.stdout.decode().splitlines() == ["Lydia: Two."]
    server.queue(Script.reply("Three."))
    greeted_twice = talk(server, "/reset\nhey\n")
    assert greeted_twice.stdout.decode().splitlines() == [f"Lydia: {LYDIA_GREETING}"] * 2 + ["Lydia: Three."]


@pytest.mark.slow
def test_the_greeting_is_spoken_into_a_scripted_run_s_wav(server: SSEServer, voicechat_home: Path,
                                                          make_speech: Callable[[str, str], Path],
                                                          tmp_path: Path) -> None:
    question = make_speech("What is the capital of France?", "question.wav")
    server.queue(Script.reply("The capital of France is Paris."))
    answer = tmp_path / "answer.wav"
    result = run_cli("talk", "--base-url", server.base_url, "--input", str(question), "--output", str(answer),
                     env={"OPENROUTER_API_KEY": "test-key-not-secret"})
    assert result.returncode == 0, result.stderr.decode()
    heard = transcribe_file(answer)
    assert word_error_rate(f"{LYDIA_GREETING} The capital of France is Paris.", heard) <= 0.25, heard
    assert heard.lower().index("lydia") < heard.lower().index("paris")
    assert [(r["turn"], r["user"] == "") for r in records(voicechat_home)] == [(0, True), (1, False)]
    assert said(server.requests[0])[0] == ("assistant", LYDIA_GREETING)


@pytest.mark.slow
def test_serve_config_continue_loads_the_earlier_turns(server: SSEServer, voicechat_home: Path) -> None:
    import asyncio

    from tests.test_serve import ServerThread, connect, make_hub

    server.queue(Script.reply("I love old maps."))
    assert talk(server, "what do you like?\n", "--no-greeting").returncode == 0
    conversation = records(voicechat_home)[0]["conversation_id"]
    server.queue(Script.reply("Rivers are roads that move."))

    async def run(url: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        client = await connect(url)
        await client.socket.send(json.dumps({"type": "config", "continue": "nope"}))
        refused = await client.until("error")
        await client.socket.send(json.dumps({"type": "config", "continue": "last"}))
        continued = await client.until("continued")
        metrics = await client.say("and rivers?")
        await client.socket.close()
        return refused, continued, metrics

    with ServerThread(make_hub(server)) as served:
        refused, continued, metrics = asyncio.run(run(served.url()))
    assert "no earlier conversation 'nope' to continue on this server" in refused["message"]
    assert continued == {"type": "continued", "conversation": conversation, "turns": 1}
    assert metrics["error"] is None
    assert said(server.requests[1]) == [("user", "what do you like?"), ("assistant", "I love old maps."),
                                        ("user", "and rivers?")]


class Lines:
    """A subprocess's stdout lines, read in a thread so a test can wait for one with a deadline."""

    def __init__(self, process: Any) -> None:
        import queue
        import threading

        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self._queue.put(line.decode().rstrip("\n")) for line in process.stdout],
                         daemon=True).start()

    def wait_for(self, start: str, timeout: float = 120) -> str:
        import queue
        import time

        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if line.startswith(start):
                return line
        raise AssertionError(f"no line starting {start!r} within {timeout} s; saw {self.seen}")


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="failed once, passed in other CI-like runs of the same commit: not yet stable")
def test_the_live_microphone_loop_greets_and_continues(microphone: Devices,  # noqa: F811 (the fixture)
                                                       server: SSEServer, voicechat_home: Path,
                                                       make_speech: Callable[[str, str], Path],
                                                       tmp_path: Path) -> None:
    """Real devices (PulseAudio's virtual microphone and speakers): the greeting is heard on the speakers, and
    a second live run with --continue sends the first run's turns to the LLM."""
    import os
    import signal
    import subprocess
    import sys

    def live(question: Path, reply: str, *extra: str) -> None:
        server.queue(Script.reply(reply))
        command = [sys.executable, "-m", "voicechat", "talk", "--headphones", "--base-url", server.base_url, *extra]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, **microphone.env, "OPENROUTER_API_KEY": "test-key-not-secret",
                                   "PYTHONUNBUFFERED": "1"}) as process:
            lines = Lines(process)
            try:
                if not extra:
                    lines.wait_for(f"Lydia: {LYDIA_GREETING}")
                listening(process.pid)
                microphone.speak(question)
                lines.wait_for(f"Lydia: {reply}")
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)

    speakers = SpeakerRecording(microphone, tmp_path / "speakers.wav")
    try:
        live(make_speech("What is the capital of France?", "q1.wav"), "The capital of France is Paris.")
    finally:
        speakers.stop()
    heard = transcribe_file(tmp_path / "speakers.wav")
    assert word_error_rate(f"{LYDIA_GREETING} The capital of France is Paris.", heard) <= 0.3, heard
    live(make_speech("And what about Germany?", "q2.wav"), "Berlin is the capital of Germany.", "--continue")
    first, second = server.requests
    assert said(first)[0] == ("assistant", LYDIA_GREETING)
    assert [role for role, _ in said(second)] == ["assistant", "user", "assistant", "user"]
    assert said(second)[2] == ("assistant", "The capital of France is Paris.")
    assert word_error_rate("And what about Germany?", said(second)[3][1]) <= 0.25
    turns = records(voicechat_home)
    assert [t["turn"] for t in turns] == [0, 1, 2] and len({t["conversation_id"] for t in turns}) == 1
