"""`voicechat talk --text --no-audio` end to end: the real CLI in a subprocess against a real SSE server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.sse_server import Script, SSEServer
from tests.test_llm_conversation import ScriptedModel
from voicechat.config.store import load_character
from voicechat.events import AudioChunk, Sentence
from voicechat.llm.conversation import CUT_MARK

SECRET = "sk-or-v1-secret-7d3f0a9e"


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def talk(server: SSEServer, transcript: Path, lines: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("talk", "--no-greeting", "--text", "--no-audio", "--base-url", server.base_url,
                   "--transcript", str(transcript), *extra, input=lines,
                   env={"VOICECHAT_LLM_MAX_RETRIES": "0", **(env or {})}, timeout=120)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_two_turns_stream_print_and_land_in_the_transcript(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.reply("Hello Ada, nice to meet you.", delay=0.005), Script.reply("I love old maps."))
    transcript = tmp_path / "talk.jsonl"
    result = talk(server, transcript, "hello\n\nwhat do you like?\n", env={"VOICECHAT_USER_NAME": "Ada"})
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["Lydia: Hello Ada, nice to meet you.", "Lydia: I love old maps."]
    lines = records(transcript)
    assert [(r["turn"], r["user"], r["replies"], r["cut"], r["error"]) for r in lines] == [
        (0, "hello", [{"character": "Lydia", "text": "Hello Ada, nice to meet you."}], False, None),
        (1, "what do you like?", [{"character": "Lydia", "text": "I love old maps."}], False, None),
    ]
    assert lines[0]["user_name"] == "Ada" and lines[0]["conversation_id"] == lines[1]["conversation_id"]
    assert lines[0]["started"] <= lines[0]["finished"] <= lines[1]["started"]
    system = server.requests[1].body["messages"][0]["content"]
    assert system.startswith("You are Lydia.") and "talking with Ada" in system
    examples = ["user", "assistant"] * len(load_character("lydia").examples)  # the card's example exchanges
    roles = [m["role"] for m in server.requests[1].body["messages"]]
    assert roles == ["system", *examples, "user", "assistant", "user"]


@pytest.mark.slow
def test_a_dropped_stream_then_a_good_turn(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.reply("Once upon a time there was a fox.", drop_after=4), Script.reply("Sorry, as I said."))
    transcript = tmp_path / "talk.jsonl"
    result = talk(server, transcript, "tell me a story\ngo on\n")
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert stdout.splitlines() == ["Lydia: Once upon a time", "Lydia: Sorry, as I said."]
    assert "reply cut:" in stderr and "connection dropped" in stderr
    assert "1 turn(s) got no full reply" in stderr
    assert result.returncode == 1
    assert [(r["replies"][0]["text"], r["cut"]) for r in records(transcript)] == [
        ("Once upon a time", True), ("Sorry, as I said.", False)
    ]
    assert server.requests[1].body["messages"][-2]["content"] == "Once upon a time" + CUT_MARK


@pytest.mark.slow
def test_the_key_is_sent_but_never_shown_or_written(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.http_error(401), Script.reply("Welcome back."))
    transcript = tmp_path / "talk.jsonl"
    result = talk(server, transcript, "hi\nhi again\n", env={"OPENROUTER_API_KEY": SECRET})
    stderr = result.stderr.decode()
    assert "set OPENROUTER_API_KEY to a valid API key" in stderr
    assert result.stdout.decode().strip() == "Lydia: Welcome back."
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    for text in (result.stdout.decode(), stderr, transcript.read_text()):
        assert SECRET not in text
    assert records(transcript)[0]["error"].startswith("127.0.0.1")


@pytest.mark.slow
def test_reset_starts_over_and_quit_stops(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.reply("One."), Script.reply("Two."), Script.reply("Three."))
    transcript = tmp_path / "talk.jsonl"
    result = talk(server, transcript, "first\n/reset\nsecond\n/quit\nthird\n")
    assert result.returncode == 0
    assert len(server.requests) == 2
    examples = ["user", "assistant"] * len(load_character("lydia").examples)  # the card's example exchanges
    assert [m["role"] for m in server.requests[1].body["messages"]] == ["system", *examples, "user"]
    first, second = records(transcript)
    assert first["conversation_id"] != second["conversation_id"]
    assert "history cleared" in result.stderr.decode()


@pytest.mark.slow
def test_several_characters_each_get_their_lines(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.reply("<Lydia>Welcome aboard.</Lydia>\n<Captain Reyes>Report, crew member.</Captain Reyes>"
                              "<Bob>Hi.</Bob>"))
    transcript = tmp_path / "talk.jsonl"
    result = talk(server, transcript, "hello both\n", "--character", "lydia", "--character", "captain")
    assert result.stdout.decode().splitlines() == [
        "Lydia: Welcome aboard.", "Captain Reyes: Report, crew member.", "Lydia: Hi."
    ]
    assert [r["character"] for r in records(transcript)[0]["replies"]] == ["Lydia", "Captain Reyes", "Lydia"]
    assert result.stderr.decode().count("'Bob', who is not in this chat") == 1
    assert "<Lydia>" in server.requests[0].body["messages"][0]["content"]


@pytest.mark.slow
def test_profile_parameters_and_backend_notice(server: SSEServer, tmp_path: Path) -> None:
    transcript = tmp_path / "talk.jsonl"
    result = talk(server, transcript, "hi\n", "--profile", "llamacpp", "--model", "tiny",
                  env={"VOICECHAT_LLM_BACKEND": "llamacpp"})
    body = server.requests[0].body
    assert result.returncode == 0
    assert (body["model"], body["top_k"], body["min_p"], body["repeat_penalty"]) == ("tiny", 40, 0.05, 1.1)
    assert "repetition_penalty" not in body

    result = talk(server, transcript, "hi\n", env={"VOICECHAT_LLM_BACKEND": "ollama", "VOICECHAT_LLM_TOP_K": "40"})
    assert "note: Ollama's /v1 API does not use top_k" in result.stderr.decode()
    assert "top_k" not in server.requests[1].body


@pytest.mark.slow
def test_bad_transcript_folder_and_unknown_character_fail_before_any_request(
    server: SSEServer, tmp_path: Path
) -> None:
    result = talk(server, tmp_path / "missing" / "t.jsonl", "hi\n")
    assert result.returncode == 1 and "does not exist" in result.stderr.decode()
    result = talk(server, tmp_path / "t.jsonl", "hi\n", "--character", "nobody")
    assert result.returncode == 2 and "unknown character 'nobody'" in result.stderr.decode()
    assert server.requests == []


class FakeTTS:
    """Turns each sentence into one chunk whose bytes name it, and remembers what it was asked."""

    name = "fake"

    def __init__(self) -> None:
        self.asked: list[Sentence] = []

    async def prepare(self, voice: str = "") -> None:
        pass

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        self.asked.append(sentence)
        yield AudioChunk(sentence.text.encode(), 16000, sentence.index, character=sentence.character)


class ListSink:
    def __init__(self) -> None:
        self.chunks: list[AudioChunk] = []
        self.closed = False

    async def write(self, chunk: AudioChunk) -> None:
        self.chunks.append(chunk)

    async def interrupt(self) -> None:
        raise AssertionError("nothing interrupts this turn")

    async def close(self) -> None:
        self.closed = True

    async def abort(self) -> None:
        raise AssertionError("a finished turn is closed, not aborted")


def test_a_turn_is_spoken_sentence_by_sentence_in_each_characters_voice(tmp_path: Path) -> None:
    from voicechat.config.models import Profile
    from voicechat.conversation_log import ConversationLog
    from voicechat.events import TurnFinished
    from voicechat.session_setup import build_session

    cast = [load_character("lydia"), load_character("captain")]
    model = ScriptedModel(["<Lydia>Hello there, my friend. Welcome!</Lydia>|<Captain Reyes>Report.|</Captain Reyes>"])
    tts, sink = FakeTTS(), ListSink()
    finished: list[TurnFinished] = []

    async def run() -> None:
        with ConversationLog(tmp_path / "t.jsonl") as writer:
            session = build_session(Profile(), cast, model, tts=tts, sink=sink, transcript=writer)  # type: ignore[arg-type]
            session.observe(lambda event: finished.append(event) if isinstance(event, TurnFinished) else None)
            async with session:
                await session.submit_text("hi")
                assert await session.wait_for_turns(1, timeout=30)

    asyncio.run(run())
    assert [f.complete for f in finished] == [True]
    assert [(s.text, s.character, s.voice, s.index) for s in tts.asked] == [
        ("Hello there, my friend.", "Lydia", "lydia", 0),
        ("Welcome!", "Lydia", "lydia", 1),
        ("Report.", "Captain Reyes", "joe", 2),
    ]
    assert [c.pcm for c in sink.chunks] == [b"Hello there, my friend.", b"Welcome!", b"Report."]


def test_the_speaking_path_speaks_sentences_that_arrive_over_time(tmp_path: Path) -> None:
    """The one speaking path (no audio device in CI, so into a WAV): sentences put while a reply streams."""
    from tests.conftest import transcribe_file, word_error_rate
    from voicechat.audio.sinks import WavFileSink
    from voicechat.config.models import TTSSettings
    from voicechat.speak import speak
    from voicechat.tts.piper import PiperTTS

    target = tmp_path / "spoken.wav"

    async def arriving() -> AsyncIterator[Sentence]:
        yield Sentence("Good morning to you.", "Lydia", "lydia", 0)
        await asyncio.sleep(0.2)
        yield Sentence("The coffee is ready.", "Lydia", "lydia", 1)

    asyncio.run(speak(PiperTTS(TTSSettings()), arriving(), WavFileSink(target)))
    assert word_error_rate("Good morning to you. The coffee is ready.", transcribe_file(target)) <= 0.25
