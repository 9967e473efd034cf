"""Barge-in on open speakers (fakes, fast): voice ducks the reply; only words that are not its own cut it."""

from __future__ import annotations

import asyncio

from tests.fakes import FakeListener, FakeTTS, ListSink, ScriptedChat, fake_session, finished
from voicechat.events import Heard, HeardKind
from voicechat.live.barge_in import DUCKED, BargeInCheck
from voicechat.live.echo import EchoGuard
from voicechat.session import Session

REPLY = "The capital of France is Paris. It is a lovely city on the river Seine. Its bridges are old."


def open_speakers_session(window: float = 2.5) -> tuple[Session, FakeListener, ListSink, list[float], list]:  # type: ignore[type-arg]
    sink = ListSink()
    session, events = fake_session(ScriptedChat([REPLY]), tts=FakeTTS(seconds=0.8), sink=sink, pace=True)
    listener = FakeListener()
    session.listener = listener  # type: ignore[assignment]
    gains: list[float] = []
    session.echo_guard = EchoGuard()
    session.barge_check = BargeInCheck(session.echo_guard, gains.append, window=window)
    return session, listener, sink, gains, events


def hear(listener: FakeListener, text: str, kind: HeardKind) -> None:
    listener.events.put_nowait(Heard(text, kind))


def voice_half_a_second_into_the_reply(session: Session, listener: FakeListener) -> None:
    """A question, then voice (no words) 0.5 s into its reply; returns once the turn has finished."""

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.5)
            hear(listener, "", HeardKind.STARTED)
            assert await session.wait_for_turns(1, timeout=10)

    asyncio.run(asyncio.wait_for(go(), 30))


def test_the_replys_own_words_duck_it_and_it_plays_on_whole() -> None:
    session, listener, sink, gains, events = open_speakers_session()

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.5)
            hear(listener, "", HeardKind.STARTED)
            await asyncio.sleep(0.1)
            assert gains == [DUCKED] and session.replying
            hear(listener, "the capital of france", HeardKind.UPDATE)
            assert await session.wait_for_turns(1, timeout=10)

    asyncio.run(asyncio.wait_for(go(), 30))
    (turn,) = finished(events)
    assert not turn.interrupted and sink.interrupts == 0
    assert gains == [DUCKED, 1.0]
    assert [s.text for s in turn.spoken][-1] == "Its bridges are old."


def test_voice_without_words_gives_the_reply_back_its_volume() -> None:
    session, listener, sink, gains, events = open_speakers_session(window=0.3)

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.4)
            hear(listener, "", HeardKind.STARTED)
            await asyncio.sleep(0.6)
            assert gains == [DUCKED, 1.0] and session.replying
            assert await session.wait_for_turns(1, timeout=10)

    asyncio.run(asyncio.wait_for(go(), 30))
    assert not finished(events)[0].interrupted and sink.interrupts == 0


def test_words_that_are_not_the_replys_cut_it_before_the_final_transcript() -> None:
    session, listener, sink, gains, events = open_speakers_session()

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(1.0)
            hear(listener, "", HeardKind.STARTED)
            hear(listener, "mars", HeardKind.UPDATE)  # one word is not judged yet
            await asyncio.sleep(0.1)
            assert session.replying
            hear(listener, "mars please", HeardKind.UPDATE)
            assert await session.wait_for_turns(1, timeout=10)

    asyncio.run(asyncio.wait_for(go(), 30))
    (turn,) = finished(events)
    assert turn.interrupted and sink.interrupts == 1
    assert gains == [DUCKED, 1.0]
    assert "bridges" not in " ".join(s.text for s in turn.spoken)


def test_with_headphones_voice_cuts_the_reply_at_once() -> None:
    session, listener, sink, gains, events = open_speakers_session()
    session.barge_check = None

    voice_half_a_second_into_the_reply(session, listener)
    assert finished(events)[0].interrupted and sink.interrupts == 1 and gains == []


def test_a_cut_in_word_alone_stops_the_reply_unless_the_reply_said_it() -> None:
    guard = EchoGuard()
    gains: list[float] = []

    async def go() -> tuple[bool, bool, bool]:
        check = BargeInCheck(guard, gains.append)
        check.started()
        said_by_reply = check.heard("Wait.", ["Wait for the bell, then go."])
        check.started()
        hallucinated = check.heard("Okay.", ["The capital of France is Paris."])
        cut_in = check.heard("Stop.", ["The capital of France is Paris."])
        return said_by_reply, hallucinated, cut_in

    assert asyncio.run(go()) == (False, False, True)


def test_a_voice_louder_than_any_echo_cuts_the_reply_without_waiting_for_words() -> None:
    session, listener, sink, gains, events = open_speakers_session()
    assert session.barge_check is not None
    session.barge_check.louder_than_echo = lambda: True

    voice_half_a_second_into_the_reply(session, listener)
    assert finished(events)[0].interrupted and sink.interrupts == 1 and gains == []
