"""Speculative replies: a guess that the final transcript confirms plays at once; a wrong one leaves no trace.

The real Session, the real OpenAI client against the loopback SSE server, Piper into a memory sink; the
transcripts come from a queue, as the live listener posts them, and `on_quiet` / `on_voice` are called as
the listener calls them when the user goes quiet or speaks on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import transcribe_file, word_error_rate
from tests.sse_server import Script, SSEServer
from voicechat.config.models import Character, LLMSettings, TTSSettings
from voicechat.events import AudioChunk, Heard, HeardKind, TurnFinished
from voicechat.live.speculation import same_words

pytestmark = pytest.mark.slow

GUESSED = "The clock says noon, time for lunch."
OTHER = "Paris is the capital of France."
LYDIA = Character(name="Lydia", persona="A friendly librarian.", voice="lydia")


class TranscriptQueue:
    """Where the Session takes transcripts from: the listener's queue, filled by the test."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Heard] = asyncio.Queue()
        self.on_quiet = None
        self.on_voice = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def feed(self, pcm: bytes) -> None:
        return None

    def final(self, text: str) -> None:
        self.events.put_nowait(Heard(text, HeardKind.FINAL))


class Sink:
    def __init__(self) -> None:
        self.chunks: list[AudioChunk] = []

    async def write(self, chunk: AudioChunk) -> None:
        self.chunks.append(chunk)

    async def interrupt(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def abort(self) -> None:
        return None

    def save(self, path: Path) -> Path:
        import soundfile

        pcm = b"".join(chunk.pcm for chunk in self.chunks)
        soundfile.write(path, np.frombuffer(pcm, dtype=np.int16), self.chunks[0].sample_rate)
        return path


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


async def _until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.02)


def converse(server: SSEServer, script: object) -> tuple[list[object], Sink, object]:
    """Run `script(session, listener)` in a real Session; returns its events, the sink and the conversation."""
    from voicechat.live.playback import Playback
    from voicechat.llm.conversation import Conversation
    from voicechat.llm.openai_chat import OpenAIChat
    from voicechat.session import Session, SessionOptions
    from voicechat.tts.piper import PiperTTS

    events: list[object] = []
    sink = Sink()
    listener = TranscriptQueue()
    chat = OpenAIChat(LLMSettings(base_url=server.base_url), api_key="k")
    conversation = Conversation(chat, [LYDIA], "Ada")

    async def run() -> None:
        session = Session(conversation=conversation, listener=listener,  # type: ignore[arg-type]
                          tts=PiperTTS(TTSSettings()), playback=Playback(sink), voices={"Lydia": "lydia"},
                          default_voice="lydia", options=SessionOptions(full_duplex=True),
                          observers=[events.append])
        async with session:
            await script(session, listener)  # type: ignore[operator]
            assert await session.wait_for_turns(1, timeout=60)
        await chat.aclose()

    asyncio.run(run())
    return events, sink, conversation


def finished(events: list[object]) -> TurnFinished:
    (turn,) = [e for e in events if isinstance(e, TurnFinished)]
    return turn


def test_same_words_ignore_case_and_punctuation() -> None:
    assert same_words("what time is it", "What time is it?")
    assert not same_words("what time is it", "What time is it now?")


def test_a_confirmed_guess_plays_the_prepared_reply(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.reply(GUESSED))

    async def script(session: object, listener: TranscriptQueue) -> None:
        listener.on_quiet("what time is it")  # type: ignore[misc]
        await _until(lambda: len(server.requests) == 1)
        await asyncio.sleep(1.0)  # the end of turn being confirmed: the first sentence gets made meanwhile
        listener.final("What time is it?")

    events, sink, conversation = converse(server, script)
    turn = finished(events)
    assert turn.metrics.speculation == "hit" and turn.error is None
    assert len(server.requests) == 1  # the turn took the prepared request, it sent none of its own
    assert server.requests[0].body["messages"][-1]["content"] == "what time is it"
    assert [(e.user, e.reply) for e in conversation.history] == [("What time is it?", GUESSED)]  # type: ignore[attr-defined]
    assert turn.metrics.first_audio is not None and turn.metrics.transcript is not None
    assert turn.metrics.first_audio - turn.metrics.transcript < 0.15  # nothing left to wait for
    # the guessed reply is what played (tiny.en may slip on a word of Piper's, so not one exact word)
    assert word_error_rate(GUESSED, transcribe_file(sink.save(tmp_path / "hit.wav"))) <= 0.4


def test_a_wrong_guess_leaves_nothing_in_history_or_audio(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.reply(GUESSED), Script.reply(OTHER))

    async def script(session: object, listener: TranscriptQueue) -> None:
        listener.on_quiet("what time is it")  # type: ignore[misc]
        await _until(lambda: len(server.requests) == 1)
        await asyncio.sleep(1.0)
        listener.final("What is the capital of France?")

    events, sink, conversation = converse(server, script)
    turn = finished(events)
    assert turn.metrics.speculation == "miss" and turn.error is None
    assert [r.body["messages"][-1]["content"] for r in server.requests] == [
        "what time is it", "What is the capital of France?"]
    assert [(e.user, e.reply) for e in conversation.history] == [("What is the capital of France?", OTHER)]  # type: ignore[attr-defined]
    heard = transcribe_file(sink.save(tmp_path / "miss.wav")).lower()
    # tiny.en hears Piper's "Paris" as "Harris" on some runs: the rest of the sentence is the proof it was spoken
    assert "capital of france" in heard and "noon" not in heard and "lunch" not in heard


def test_speaking_on_cancels_the_guess(server: SSEServer, tmp_path: Path) -> None:
    server.queue(Script.reply(GUESSED), Script.reply(OTHER))

    async def script(session: object, listener: TranscriptQueue) -> None:
        listener.on_quiet("what time is it")  # type: ignore[misc]
        await _until(lambda: len(server.requests) == 1)
        listener.on_voice()  # type: ignore[misc]
        listener.final("What time is it?")

    events, _, conversation = converse(server, script)
    turn = finished(events)
    assert turn.metrics.speculation == ""  # nothing was guessed any more when the turn began
    assert len(server.requests) == 2
    assert [e.user for e in conversation.history] == ["What time is it?"]  # type: ignore[attr-defined]


def test_the_live_listener_guesses_at_the_pause_before_the_final_transcript(make_speech) -> None:  # type: ignore[no-untyped-def]
    """RealtimeSTT makes no live text in a pause: the guess is its early transcription of the pause, offered
    before the final transcript reaches the session; a question spoken whole is guessed right."""
    from tests.conftest import bundled_whisper_dir
    from voicechat.config.models import Profile
    from voicechat.live.listener import RealtimeListener, listener_settings
    from voicechat.live.sources import RealTimePacer, read_speech_file, silence, split_frames

    question = read_speech_file(make_speech("What is the capital of France?", "q.wav"))
    guesses: list[str] = []
    guessed_before_final: list[str] = []

    async def run() -> Heard:
        listener = RealtimeListener(listener_settings(Profile().stt, bundled_whisper_dir()))
        listener.on_quiet = guesses.append
        await listener.start()
        pacer = RealTimePacer()
        try:
            for block in split_frames(silence(0.5) + question + silence(6.0)):
                listener.feed(block)
                await pacer.wait(len(block) / 32000)
            while True:
                event = await asyncio.wait_for(listener.events.get(), 30)
                if event.kind is HeardKind.FINAL and event.text:
                    guessed_before_final.extend(guesses)
                    return event
        finally:
            await listener.stop()

    final = asyncio.run(run())
    assert guessed_before_final, f"no guess was offered before the final transcript came: {guesses}"
    assert same_words(guessed_before_final[-1], final.text), (guesses, final.text)  # a short pause may guess early too
