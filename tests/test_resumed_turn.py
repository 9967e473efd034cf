"""A thinking pause taken for the end of the turn: the user's voice cuts the reply before a word of it is
heard, and the next turn asks both halves together, so nothing the user said is lost.

The real Session, the real OpenAI client against the loopback SSE server (the first reply held back, as a
slow model would be), Piper into a memory sink at the speakers' pace; transcripts come from a queue, as
the live listener posts them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

from tests.sse_server import Script, SSEServer
from tests.test_speculation import LYDIA, Sink, TranscriptQueue, _until
from voicechat.config.models import LLMSettings, TTSSettings
from voicechat.events import Heard, HeardKind, TurnFinished
from voicechat.live.turns import joined_utterance

pytestmark = pytest.mark.slow

HALF, REST = "Could you please?", "Remind me to call my mother."
ASKED = "Could you please... Remind me to call my mother."
SLOW = Script.reply("Of course.", delay=30.0)  # never arrives before the user speaks on
ANSWER = "I will remind you to call your mother tonight."
LONG = "Here is the first sentence of a long reply. Here is the second one, which takes a while to say."

Script_ = Callable[[object, TranscriptQueue], Awaitable[None]]


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def converse(server: SSEServer, script: Script_, turns: int, full_duplex: bool = True,
             listener: TranscriptQueue | None = None) -> tuple[list[object], object]:
    from voicechat.live.playback import Playback
    from voicechat.llm.conversation import Conversation
    from voicechat.llm.openai_chat import OpenAIChat
    from voicechat.session import Session, SessionOptions
    from voicechat.tts.piper import PiperTTS

    events: list[object] = []
    chat = OpenAIChat(LLMSettings(base_url=server.base_url), api_key="k")
    conversation = Conversation(chat, [LYDIA], "Ada")

    async def run() -> None:
        queue = listener or TranscriptQueue()
        session = Session(conversation=conversation, listener=queue,  # type: ignore[arg-type]
                          tts=PiperTTS(TTSSettings()), playback=Playback(Sink(), pace=True),
                          voices={"Lydia": "lydia"}, default_voice="lydia",
                          options=SessionOptions(full_duplex=full_duplex), observers=[events.append])
        async with session:
            await script(session, queue)
            assert await session.wait_for_turns(turns, timeout=60)
        await chat.aclose()

    asyncio.run(run())
    return events, conversation


def user_lines(server: SSEServer) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in server.requests]


def finished(events: list[object]) -> list[TurnFinished]:
    return [e for e in events if isinstance(e, TurnFinished)]


async def speak_on(listener: TranscriptQueue) -> None:
    """The user's voice comes back: the listener reports a new utterance."""
    listener.events.put_nowait(Heard("", HeardKind.STARTED))
    await asyncio.sleep(0.2)


async def cut_before_heard(server: SSEServer, listener: TranscriptQueue) -> None:
    """The first half is taken for a whole turn, and the voice going on cuts its (slow) reply unheard."""
    listener.final(HALF)
    await _until(lambda: len(server.requests) == 1)
    await speak_on(listener)


def test_the_halves_join_as_one_utterance() -> None:
    assert joined_utterance("Could you please?", "Remind me.") == "Could you please... Remind me."
    assert joined_utterance("I was wondering if...", "you could") == "I was wondering if... you could"
    assert joined_utterance("", "What time is it?") == "What time is it?"
    assert joined_utterance("What time is it?", "") == "What time is it?"


def test_a_reply_cut_before_it_was_heard_is_asked_again_with_the_rest(server: SSEServer) -> None:
    server.queue(SLOW, Script.reply(ANSWER))

    async def script(session: object, listener: TranscriptQueue) -> None:
        await cut_before_heard(server, listener)
        listener.on_quiet("remind me to call my mother")  # type: ignore[misc]
        await _until(lambda: len(server.requests) == 2)
        listener.final(REST)

    events, conversation = converse(server, script, turns=2)
    first, second = finished(events)
    assert first.interrupted and first.spoken == ()
    assert user_lines(server) == [HALF, "Could you please... remind me to call my mother"]  # the guess, joined too
    assert second.metrics.speculation == "hit" and not second.interrupted
    assert [(e.user, e.reply) for e in conversation.history] == [(ASKED, ANSWER)]  # type: ignore[attr-defined]
    assert " ".join(s.text for s in second.spoken) == ANSWER


def test_a_noise_that_cut_the_reply_asks_the_question_again(server: SSEServer) -> None:
    server.queue(SLOW, Script.reply(ANSWER))

    async def script(session: object, listener: TranscriptQueue) -> None:
        await cut_before_heard(server, listener)
        listener.final("")  # a cough: heard as a voice, transcribed as nothing

    events, conversation = converse(server, script, turns=2)
    assert [(t.interrupted, t.spoken == ()) for t in finished(events)] == [(True, True), (False, False)]
    assert user_lines(server) == [HALF, HALF]
    assert [e.user for e in conversation.history] == [HALF]  # type: ignore[attr-defined]


def test_an_utterance_long_after_the_cut_is_a_new_question(server: SSEServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A cut that no transcript followed leaves its question behind: a new voice later asks only its own."""
    import voicechat.session

    monkeypatch.setattr(voicechat.session, "UNANSWERED_FOR", 0.5)
    server.queue(SLOW, Script.reply(ANSWER))

    async def script(session: object, listener: TranscriptQueue) -> None:
        await cut_before_heard(server, listener)  # and the recognizer then heard nothing it could transcribe
        await asyncio.sleep(1.0)
        await speak_on(listener)
        listener.final(REST)

    converse(server, script, turns=2)
    assert user_lines(server) == [HALF, REST]


def test_a_reply_already_heard_is_not_asked_again(server: SSEServer) -> None:
    server.queue(Script.reply(LONG), Script.reply(ANSWER))

    async def script(session: object, listener: TranscriptQueue) -> None:
        listener.final("Tell me something long.")
        await _until(lambda: session.playback.spoken())  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)
        await speak_on(listener)
        listener.final(REST)

    events, conversation = converse(server, script, turns=2)
    first = finished(events)[0]
    assert first.interrupted and first.spoken, "the first reply should have been cut while it played"
    assert user_lines(server) == ["Tell me something long.", REST]
    assert [e.user for e in conversation.history] == ["Tell me something long.", REST]  # type: ignore[attr-defined]


def test_a_typed_turn_drops_an_unanswered_spoken_one(server: SSEServer) -> None:
    server.queue(SLOW, Script.reply(ANSWER))

    async def script(session: object, listener: TranscriptQueue) -> None:
        await cut_before_heard(server, listener)
        await session.submit_text("What time is it?")  # type: ignore[attr-defined]

    converse(server, script, turns=2)
    assert user_lines(server) == [HALF, "What time is it?"]



class FedQueue(TranscriptQueue):
    """Also keeps what the session passed on to the recognizer."""

    def __init__(self) -> None:
        super().__init__()
        self.fed: list[bytes] = []

    def feed(self, pcm: bytes) -> None:
        self.fed.append(pcm)


def test_half_duplex_lets_soft_words_through_until_the_reply_plays(server: SSEServer) -> None:
    """On open speakers sound under the barge-in level is kept from the recognizer as the reply's echo; while
    the model is still thinking there is no echo, and the user going on softly after a pause is heard."""
    import numpy as np

    from voicechat.live.sources import make_frame

    soft = (600 * np.sin(np.arange(512) / 3)).astype(np.int16).tobytes()  # about -37 dBFS: under -30
    passed: list[bool] = []
    server.queue(Script.reply(f"{LONG} {LONG}", delay=0.05))  # a sentence's words come in 0.5 s

    async def script(session: object, listener: FedQueue) -> None:
        assert make_frame(soft).level < -30
        listener.final(HALF)
        await _until(lambda: len(server.requests) == 1)
        session.feed(make_frame(soft))  # type: ignore[attr-defined]
        passed.append(listener.fed[-1] == soft)
        await _until(lambda: session.playback.audible)  # type: ignore[attr-defined]
        assert session.replying  # type: ignore[attr-defined]
        session.feed(make_frame(soft))  # type: ignore[attr-defined]
        passed.append(listener.fed[-1] == soft)

    converse(server, script, turns=1, full_duplex=False, listener=FedQueue())
    assert passed == [True, False]
