"""The Session's contract with fakes (fast): every turn ends with one TurnFinished, whatever failed in it,
and the conversation goes on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from tests.fakes import FakeListener, FakeTTS, ListSink, ScriptedChat, fake_session, finished
from voicechat.conversation_log import ConversationLog
from voicechat.events import (
    AudioChunk,
    Heard,
    HeardKind,
    ReplyAwaited,
    Sentence,
    TextDelta,
    TurnFinished,
    TurnStarted,
)
from voicechat.live.sources import make_frame

T = TypeVar("T")


def run(work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(work(), 30))  # type: ignore[arg-type]


def test_a_turn_reports_its_stages_in_order_and_ends_with_turn_finished() -> None:
    session, events = fake_session(ScriptedChat(["Hello there, Ada.| How are| you today?"]), pace=False)

    async def go() -> None:
        async with session:
            await session.submit_text("Hi")
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    kinds = [type(event) for event in events]
    assert kinds[0] is Heard and kinds[1] is TurnStarted and kinds[-1] is TurnFinished
    assert kinds.index(TextDelta) < kinds.index(Sentence) < kinds.index(AudioChunk)
    assert kinds.count(AudioChunk) == 1  # only the first audio is reported
    assert [f.complete for f in finished(events)] == [True]


def test_a_speech_engine_that_fails_ends_the_turn_with_its_error_and_the_next_turn_works(tmp_path: Path) -> None:
    tts = FakeTTS(fail_on="broken")
    chat = ScriptedChat(["First part is fine. Then the broken one. And more.", "All well again."])
    session, events = fake_session(chat, tts=tts, pace=False)
    session.transcript = ConversationLog(tmp_path / "t.jsonl")

    async def go() -> None:
        async with session:
            await session.submit_text("Tell me")
            assert await session.wait_for_turns(1, timeout=10)
            await session.submit_text("Again")
            assert await session.wait_for_turns(2, timeout=10)

    run(go)
    first, second = finished(events)
    assert first.error is not None and first.error.startswith("speech (fake) failed")
    assert "synthesis broke" in first.error and not first.interrupted
    assert [s.text for s in first.spoken] == ["First part is fine."]
    assert second.complete
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["error"] is not None for r in records] == [True, False]
    assert records[0]["user"] == "Tell me" and records[1]["user"] == "Again"


def test_an_llm_failure_midway_keeps_what_was_spoken_and_reports_the_error() -> None:
    chat = ScriptedChat(["Once upon a time there was a fox. |It ran.|never"], fail_after=2)
    session, events = fake_session(chat, pace=False)

    async def go() -> None:
        async with session:
            await session.submit_text("A story")
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    (turn,) = finished(events)
    assert turn.error == "the scripted model failed"
    assert turn.spoken[0].text == "Once upon a time there was a fox."  # what came whole is still spoken
    assert "never" not in " ".join(s.text for s in turn.spoken)


def test_an_interrupt_after_the_llm_failed_keeps_both_the_interrupt_and_the_error() -> None:
    chat = ScriptedChat(["One sentence here. |Two sentences here. |three"], fail_after=2)
    session, events = fake_session(chat, tts=FakeTTS(seconds=2.0), pace=True)

    async def go() -> None:
        async with session:
            await session.submit_text("Talk")
            await asyncio.sleep(0.5)  # the LLM has failed; the first sentence is playing
            await session.interrupt()
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    (turn,) = finished(events)
    assert turn.interrupted and turn.error == "the scripted model failed"


def test_a_silent_llm_is_reported_as_awaited_before_its_first_token() -> None:
    session, events = fake_session(ScriptedChat(["Finally."], delay=0.4), pace=False,
                                   await_notice_after=0.1, reply_timeout=9.0)

    async def go() -> None:
        async with session:
            await session.submit_text("Hello?")
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    awaited = [event for event in events if isinstance(event, ReplyAwaited)]
    assert len(awaited) == 1 and awaited[0].waited == 0.1
    kinds = [type(event) for event in events]
    assert kinds.index(ReplyAwaited) < kinds.index(TextDelta)


def test_speech_detected_while_replying_interrupts_and_keeps_only_what_was_heard() -> None:
    chat = ScriptedChat(["First sentence is heard. Second one is never heard at all."])
    sink = ListSink()
    session, events = fake_session(chat, tts=FakeTTS(seconds=0.6), sink=sink, pace=True)
    listener = FakeListener()
    session.listener = listener  # type: ignore[assignment]

    async def go() -> None:
        async with session:
            listener.events.put_nowait(Heard("Tell me", HeardKind.FINAL))
            await asyncio.sleep(0.9)  # the first sentence has played, the second is playing
            listener.events.put_nowait(Heard("", HeardKind.STARTED))
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    (turn,) = finished(events)
    assert turn.interrupted and turn.error is None and sink.interrupts == 1
    assert turn.spoken[0].text == "First sentence is heard."
    assert "never heard at all" not in " ".join(s.text for s in turn.spoken)
    assert session.conversation.history[-1].cut


def test_a_voice_on_the_microphone_cuts_the_reply_before_the_recognizer_reports_it(make_speech) -> None:  # type: ignore[no-untyped-def]
    """A live microphone (onset_barge_in): the voice's own frames barge in; the listener never says STARTED."""
    from voicechat.live.sources import read_speech_file, silence, split_frames

    voice = read_speech_file(make_speech("Stop. Tell me about Mars instead.", "stop.wav"))
    chat = ScriptedChat(["First sentence is heard. Second one is never heard at all."])
    sink = ListSink()
    session, events = fake_session(chat, tts=FakeTTS(seconds=0.6), sink=sink, pace=True, onset_barge_in=True)
    listener = FakeListener()
    session.listener = listener  # type: ignore[assignment]
    quiet_frames = split_frames(silence(0.9))

    async def go() -> None:
        async with session:
            listener.events.put_nowait(Heard("Tell me", HeardKind.FINAL))
            for frame in quiet_frames:  # the first sentence plays while the room is quiet
                session.feed(make_frame(frame))
                await asyncio.sleep(0.032)
            for frame in split_frames(voice):
                session.feed(make_frame(frame))
                await asyncio.sleep(0)
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    (turn,) = finished(events)
    assert turn.interrupted and sink.interrupts == 1
    assert "never heard at all" not in " ".join(s.text for s in turn.spoken)


def test_the_next_sentence_is_synthesized_while_the_current_one_plays() -> None:
    """No gap: when sentence one has played, sentence two was already asked of the TTS."""
    tts = FakeTTS(seconds=0.5)
    chat = ScriptedChat(["Sentence one is here. Sentence two is here. Sentence three is here."])
    session, events = fake_session(chat, tts=tts, pace=True)
    asked_when_first_ended: list[int] = []

    def watch(event: object) -> None:
        if isinstance(event, AudioChunk):
            asked_when_first_ended.append(len(tts.asked))

    session.observe(watch)

    async def go() -> None:
        async with session:
            await session.submit_text("Three please")
            await asyncio.sleep(0.25)  # halfway through the first sentence's audio
            asked_when_first_ended.append(len(tts.asked))
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    assert asked_when_first_ended[-1] >= 2
    assert [s.text for s in finished(events)[0].spoken] == [
        "Sentence one is here.", "Sentence two is here.", "Sentence three is here."]


def test_a_transcript_that_cannot_be_written_still_ends_the_turn() -> None:
    class FullDisk:
        def write(self, *args: object) -> None:
            raise OSError(28, "No space left on device")

    session, events = fake_session(ScriptedChat(["Fine, thanks."]), pace=False)
    session.transcript = FullDisk()  # type: ignore[assignment]

    async def go() -> None:
        async with session:
            await session.submit_text("How are you?")
            assert await session.wait_for_turns(1, timeout=10)

    run(go)
    (turn,) = finished(events)
    assert turn.error is not None and "transcript could not be written" in turn.error
