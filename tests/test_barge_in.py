"""Barge-in on open speakers (fakes, fast): voice holds the reply; only words that are not its own cut it."""

from __future__ import annotations

import asyncio

from tests.fakes import FakeListener, FakeTTS, ListSink, ScriptedChat, fake_session, finished
from voicechat.events import Heard, HeardKind
from voicechat.live.barge_in import HELD, BargeInCheck
from voicechat.live.echo import EchoGuard
from voicechat.session import Session

REPLY = "The capital of France is Paris. It is a lovely city on the river Seine. Its bridges are old."


def open_speakers_session(quiet_release: float = 0.8) -> tuple[Session, FakeListener, ListSink, list[float], list]:  # type: ignore[type-arg]
    sink = ListSink()
    session, events = fake_session(ScriptedChat([REPLY]), tts=FakeTTS(seconds=0.8), sink=sink, pace=True)
    listener = FakeListener()
    session.listener = listener  # type: ignore[assignment]
    gains: list[float] = []
    session.echo_guard = EchoGuard()
    session.barge_check = BargeInCheck(session.echo_guard, gains.append, quiet_release=quiet_release)
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


def test_the_replys_own_words_hold_it_and_it_plays_on_whole() -> None:
    session, listener, sink, gains, events = open_speakers_session()

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.5)
            hear(listener, "", HeardKind.STARTED)
            await asyncio.sleep(0.1)
            assert gains == [HELD] and session.replying
            hear(listener, "the capital of france", HeardKind.UPDATE)
            assert await session.wait_for_turns(1, timeout=10)

    asyncio.run(asyncio.wait_for(go(), 30))
    (turn,) = finished(events)
    assert not turn.interrupted and sink.interrupts == 0
    assert gains == [HELD, 1.0]
    assert [s.text for s in turn.spoken][-1] == "Its bridges are old."


def test_voice_without_words_gives_the_reply_back_its_volume() -> None:
    session, listener, sink, gains, events = open_speakers_session(quiet_release=0.3)

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.4)
            hear(listener, "", HeardKind.STARTED)
            await asyncio.sleep(0.6)
            assert gains == [HELD, 1.0] and session.replying
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
    assert gains == [HELD, 1.0]
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


def test_a_held_reply_waits_while_the_voice_goes_on_and_plays_on_once_it_is_quiet() -> None:
    gains: list[float] = []

    async def go() -> tuple[list[float], list[float]]:
        check = BargeInCheck(EchoGuard(), gains.append, quiet_release=0.2)
        check.started()
        for _ in range(10):  # 0.5 s of voiced frames, more than quiet_release
            await asyncio.sleep(0.05)
            check.voiced()
        while_voiced = list(gains)
        await asyncio.sleep(0.35)
        return while_voiced, list(gains)

    while_voiced, after_quiet = asyncio.run(go())
    assert while_voiced == [HELD]
    assert after_quiet == [HELD, 1.0]


def test_a_held_reply_is_let_go_after_the_hold_limit_even_if_the_voice_goes_on() -> None:
    gains: list[float] = []

    async def go() -> None:
        check = BargeInCheck(EchoGuard(), gains.append, quiet_release=0.2, hold_limit=0.4)
        check.started()
        for _ in range(14):
            await asyncio.sleep(0.05)
            check.voiced()

    asyncio.run(go())
    assert gains == [HELD, 1.0]


def test_a_cut_keeps_a_held_reply_silent_until_the_sink_is_emptied() -> None:
    session, listener, sink, _, events = open_speakers_session()
    order: list[tuple[float, int]] = []  # each gain set, with how many cuts the sink had had by then
    assert session.barge_check is not None
    session.barge_check._duck = lambda gain: order.append((gain, sink.interrupts))

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.5)
            hear(listener, "", HeardKind.STARTED)
            hear(listener, "tell me about mars", HeardKind.UPDATE)
            assert await session.wait_for_turns(1, timeout=10)

    asyncio.run(asyncio.wait_for(go(), 30))
    assert finished(events)[0].interrupted
    assert order[0] == (HELD, 0)
    assert order[1:] == [(1.0, 1)]  # full volume again only after the cut, never while the reply was held


def test_a_held_reply_waits_for_the_recognizer_and_ignores_a_voice_just_as_it_plays_on() -> None:
    gains: list[float] = []
    recording = [True]

    async def go() -> tuple[list[float], list[float], bool]:
        check = BargeInCheck(EchoGuard(), gains.append, quiet_release=0.1, recognizing=lambda: recording[0])
        check.started()
        await asyncio.sleep(0.4)  # the voice stopped long ago, but its words are still being recognized
        while_recording = list(gains)
        recording[0] = False
        await asyncio.sleep(0.3)
        played_on = list(gains)
        check.started()  # the reply's own echo as it comes back: not held again
        return while_recording, played_on, check.pending

    while_recording, played_on, held_again = asyncio.run(go())
    assert while_recording == [HELD]
    assert played_on == [HELD, 1.0]
    assert not held_again and gains == [HELD, 1.0]


def test_a_final_transcript_of_the_replys_own_words_lets_a_held_reply_play_on() -> None:
    session, listener, sink, gains, events = open_speakers_session(quiet_release=5.0)
    assert session.barge_check is not None
    session.barge_check.recognizing = lambda: True  # only the final can end the hold

    async def go() -> None:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.5)
            hear(listener, "", HeardKind.STARTED)
            await asyncio.sleep(0.3)
            assert gains == [HELD]
            hear(listener, "The capital of France is Paris.", HeardKind.FINAL)
            await asyncio.sleep(0.1)
            assert gains == [HELD, 1.0] and session.replying
            assert await session.wait_for_turns(1, timeout=10)

    asyncio.run(asyncio.wait_for(go(), 30))
    (turn,) = finished(events)
    assert not turn.interrupted and sink.interrupts == 0


def test_a_sound_as_loud_as_the_echo_holds_the_reply_before_any_voice_is_detected() -> None:
    session, listener, sink, gains, events = open_speakers_session(quiet_release=0.3)
    assert session.barge_check is not None
    loud = [False]
    session.barge_check.sound_over_echo = lambda: loud[0]

    class NoVoice:  # the voice detector has not called it speech (yet)
        speaking = False

        def heard(self, pcm: bytes) -> bool:
            return False

        def reset(self) -> None:
            pass

    session._onset = NoVoice()  # type: ignore[assignment]

    async def go() -> tuple[list[float], list[float]]:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.5)
            loud[0] = True
            session._watch_onset(bytes(1024))
            loud[0] = False
            held = list(gains)
            await asyncio.sleep(0.6)  # no voice, no words: a door, a cough
            after = list(gains)
            assert await session.wait_for_turns(1, timeout=10)
            return held, after

    held, after = asyncio.run(asyncio.wait_for(go(), 30))
    assert held == [HELD] and after == [HELD, 1.0]
    assert not finished(events)[0].interrupted and sink.interrupts == 0


def test_a_sound_pauses_the_reply_from_the_microphones_thread_and_the_loop_holds_it() -> None:
    import threading

    from voicechat.commands.live_talk import _pause_from_microphone

    session, listener, sink, gains, events = open_speakers_session(quiet_release=0.3)

    async def go() -> tuple[list[float], bool, list[float]]:
        async with session:
            hear(listener, "Where is it", HeardKind.FINAL)
            await asyncio.sleep(0.5)
            pause = _pause_from_microphone(session, asyncio.get_running_loop())
            microphone = threading.Thread(target=pause)  # as the canceller calls it, off the event loop
            microphone.start()
            microphone.join()
            paused = list(gains)  # before the loop has had its turn
            await asyncio.sleep(0)
            assert session.barge_check is not None
            pending = session.barge_check.pending  # taken over as a hold
            await asyncio.sleep(0.6)  # no voice, no words: the reply plays on
            after = list(gains)
            assert await session.wait_for_turns(1, timeout=10)
            return paused, pending, after

    paused, pending, after = asyncio.run(asyncio.wait_for(go(), 30))
    assert paused == [HELD] and pending
    assert after == [HELD, 1.0]
    assert not finished(events)[0].interrupted and sink.interrupts == 0


def test_a_pause_from_the_microphones_thread_after_the_reply_ended_gives_the_volume_back() -> None:
    session, _, _, gains, _ = open_speakers_session()
    assert session.barge_check is not None
    check = session.barge_check

    async def go() -> None:
        async with session:
            assert check.pause_at_once()  # the echo's tail, heard as the reply ends
            assert not check.pause_at_once()  # once is enough
            session.sound_over_reply()  # the loop's turn: no reply plays
            assert not check.pending

    asyncio.run(asyncio.wait_for(go(), 30))
    assert gains == [HELD, 1.0]


def test_a_cut_while_the_microphones_thread_paused_the_reply_leaves_the_next_reply_at_full_volume() -> None:
    gains: list[float] = []

    async def go() -> None:
        check = BargeInCheck(EchoGuard(), gains.append)
        assert check.pause_at_once()
        check.settle()
        check.clear(cut=True)  # the voice was the user's: cut before the loop took the pause over
        check.release_early()  # the loop's turn comes late: nothing more to give back

    asyncio.run(go())
    assert gains == [HELD, 1.0]
