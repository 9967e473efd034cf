"""`voicechat serve`'s small parts without a server: message validation, the token rules, event mapping,
the outbox, and the shared TTS gate."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from voicechat.errors import UsageError
from voicechat.events import AudioChunk, Heard, HeardKind, Sentence, TextDelta, TurnFinished, TurnMetrics
from voicechat.serve.auth import check_bind, is_loopback, presented_token, token_ok
from voicechat.serve.engines import SharedTTS, tts_slots
from voicechat.serve.protocol import (
    ConfigMessage,
    InterruptMessage,
    ProtocolError,
    ResetMessage,
    TextMessage,
    check_audio_frame,
    parse_message,
    session_event,
)
from voicechat.serve.sink import Outbox, WebSocketSink


def test_the_four_messages_parse() -> None:
    assert parse_message('{"type": "text", "text": "Hi"}') == TextMessage(type="text", text="Hi")
    assert isinstance(parse_message('{"type": "interrupt"}'), InterruptMessage)
    assert isinstance(parse_message('{"type": "reset"}'), ResetMessage)
    config = parse_message(json.dumps({"type": "config", "characters": ["lydia"], "sample_rate": 16000}))
    assert isinstance(config, ConfigMessage) and config.characters == ["lydia"]


@pytest.mark.parametrize(("raw", "needle"), [
    ("{not json", "malformed JSON"),
    ('"text"', "JSON object"),
    ('{"text": "no type"}', '"type"'),
    ('{"type": "sing"}', "unknown message type 'sing'"),
    ('{"type": "text", "text": ""}', "bad 'text' message: text"),
    ('{"type": "interrupt", "now": true}', "now"),
    ('{"type": "config", "characters": "lydia"}', "characters"),
    ('{"type": "config", "sample_rate": 44100}', "resample to 16000"),
    ('{"type": "config", "encoding": "f32le"}', "pcm_s16le"),
    (json.dumps({"type": "text", "text": "y" * 20000}), "limit"),
])
def test_bad_messages_are_one_line_naming_the_fix(raw: str, needle: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_audio_frames_must_be_whole_samples_and_small() -> None:
    check_audio_frame(bytes(1024))
    for frame, needle in ((bytes(1023), "whole int16"), (bytes(65538), "limit")):
        with pytest.raises(ProtocolError, match=needle):
            check_audio_frame(frame)


def test_loopback_and_the_token_rules() -> None:
    assert all(map(is_loopback, ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.0.1")))
    assert not any(map(is_loopback, ("0.0.0.0", "192.168.1.4", "::", "example.org")))
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "secret")
    with pytest.raises(UsageError, match="VOICECHAT_TOKEN"):
        check_bind("0.0.0.0", None)
    assert presented_token({"token": "a"}, {}) == "a"
    assert presented_token({}, {"authorization": "Bearer b"}) == "b"
    assert presented_token({}, {"authorization": "Basic c"}) == ""
    assert token_ok(None, "") and token_ok("x", "x") and not token_ok("x", "") and not token_ok("x", "y")


def test_session_events_become_protocol_events() -> None:
    assert session_event(Heard("hi", HeardKind.STARTED)) == {"type": "speech_started"}
    assert session_event(Heard("hi", HeardKind.STABLE)) == {
        "type": "transcript_update", "text": "hi", "stable": True}
    assert session_event(Heard("hi.", HeardKind.FINAL)) == {"type": "transcript_final", "text": "hi."}
    assert session_event(TextDelta("Yes", "Lydia")) == {"type": "reply_text", "character": "Lydia", "text": "Yes"}
    finished = session_event(TurnFinished(2, TurnMetrics(0.1, 0.2, 0.3, 0.4), True, None, (Sentence("A…", "Lydia"),)))
    assert finished is not None and finished["metrics"]["first_audio"] == 0.4 and finished["interrupted"] is True
    assert finished["spoken"] == [{"character": "Lydia", "text": "A…"}]
    assert session_event(AudioChunk(b"\0\0", 22050)) is None


def test_the_sink_frames_a_turns_audio_and_barge_in_drops_the_queue() -> None:
    async def run() -> list[object]:
        outbox = Outbox()
        sink = WebSocketSink(outbox)
        sink.begin_turn(3)
        await sink.write(AudioChunk(b"\1\0" * 10, 22050))
        await sink.write(AudioChunk(b"\2\0" * 10, 22050))
        await sink.interrupt()
        sink.finish_turn(interrupted=True)
        sink.finish_turn(interrupted=False)  # nothing more was sent: no second audio_complete
        return [await outbox.get() for _ in range(len(outbox))]

    items = asyncio.run(run())
    assert [item["type"] for item in items if isinstance(item, dict)] == ["audio_start", "audio_complete"]
    assert not any(isinstance(item, bytes) for item in items)
    assert items[-1] == {"type": "audio_complete", "turn": 3, "interrupted": True}


class SlowEngine:
    name = "slow"

    def __init__(self) -> None:
        self.running = 0
        self.most = 0

    async def prepare(self, voice: str = "") -> None:
        pass

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.05)
            yield AudioChunk(b"\0\0" * 100, 16000, sentence.index)
        finally:
            self.running -= 1


def test_the_shared_tts_is_held_while_it_synthesizes_not_while_audio_plays() -> None:
    engine = SlowEngine()
    shared = SharedTTS(engine, slots=1)
    order: list[str] = []

    async def run() -> None:
        others_heard = asyncio.Event()

        async def first() -> None:
            async for _ in shared.stream(Sentence("x", index=0)):
                order.append("0 got audio")
                await asyncio.wait_for(others_heard.wait(), 10)  # still "playing" its chunk
                order.append("0 played")

        async def other(index: int) -> None:
            async for _ in shared.stream(Sentence("x", index=index)):
                order.append(f"{index} got audio")
            if order.count("1 got audio") + order.count("2 got audio") == 2:
                others_heard.set()

        task = asyncio.create_task(first())
        await asyncio.sleep(0.01)
        await asyncio.gather(task, other(1), other(2))

    asyncio.run(run())  # a gate held during playback would time out here
    assert engine.most == 1  # and still one synthesis at a time
    assert order[0] == "0 got audio" and order[-1] == "0 played" and len(order) == 4


def test_a_cancelled_stream_frees_its_slot() -> None:
    engine = SlowEngine()
    shared = SharedTTS(engine, slots=1)

    async def run() -> int:
        first = asyncio.create_task(anext(aiter(shared.stream(Sentence("x")))))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        chunks = [chunk async for chunk in shared.stream(Sentence("y", index=5))]
        return chunks[0].sentence_index

    assert asyncio.run(asyncio.wait_for(run(), 5)) == 5
    assert engine.running == 0


def test_tts_slots_follow_the_engine() -> None:
    assert tts_slots("openai-speech") is None
    assert tts_slots("higgs") == 1
    slots = tts_slots("piper")
    assert slots is not None and slots >= 1
