"""Small stand-ins for the pipeline's stages, for fast tests of the Session's contract (event order, barge-in,
errors). They prove a contract; the end-to-end tests with real models prove the product."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from voicechat.config.models import Character, Profile
from voicechat.events import AudioChunk, Heard, Sentence, SessionEvent, TurnFinished
from voicechat.llm.base import ChatMessage, LLMError
from voicechat.session import Session
from voicechat.session_setup import build_session

LYDIA = Character(name="Lydia", persona="A librarian.", voice="lydia")


@dataclass
class ScriptedChat:
    """A ChatModel whose replies are scripted: text split at '|' into pieces, optional delay per piece, or an
    error after some pieces; it records what it was sent."""

    replies: list[str] = field(default_factory=list)
    delay: float = 0.0
    fail_after: int | None = None  # raise LLMError after this many pieces of the next reply
    name: str = "scripted"
    notices: tuple[str, ...] = ()
    sent: list[list[ChatMessage]] = field(default_factory=list)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        self.sent.append(list(messages))
        reply = self.replies.pop(0) if self.replies else "OK."
        fail_after, self.fail_after = self.fail_after, None
        for count, piece in enumerate(reply.split("|")):
            if count == fail_after:
                raise LLMError("the scripted model failed")
            if self.delay:
                await asyncio.sleep(self.delay)
            yield piece

    async def aclose(self) -> None:
        pass


@dataclass
class FakeTTS:
    """One chunk per sentence (`seconds` long), whose bytes start with the sentence's text; it can fail."""

    seconds: float = 0.05
    fail_on: str | None = None  # raise when asked for a sentence containing this
    name: str = "fake"
    asked: list[Sentence] = field(default_factory=list)

    async def prepare(self, voice: str = "") -> None:
        pass

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        self.asked.append(sentence)
        if self.fail_on is not None and self.fail_on in sentence.text:
            raise RuntimeError(f"synthesis broke on {sentence.text!r}")
        samples = int(16000 * self.seconds)
        text = sentence.text.encode()[: 2 * samples]
        pcm = text + bytes(2 * samples - len(text))
        yield AudioChunk(pcm, 16000, sentence.index, character=sentence.character)


@dataclass
class ListSink:
    """An AudioSink that keeps what it is given."""

    chunks: list[AudioChunk] = field(default_factory=list)
    interrupts: int = 0
    closed: bool = False

    async def write(self, chunk: AudioChunk) -> None:
        self.chunks.append(chunk)

    async def interrupt(self) -> None:
        self.interrupts += 1

    async def close(self) -> None:
        self.closed = True

    async def abort(self) -> None:
        self.closed = True


class FakeListener:
    """A listener whose transcript events the test posts itself."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Heard] = asyncio.Queue()
        self.fed = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def feed(self, pcm: bytes) -> None:
        self.fed += len(pcm)


def fake_session(chat: ScriptedChat, tts: FakeTTS | None = None, sink: ListSink | None = None,
                 pace: bool = True, **options: object) -> tuple[Session, list[SessionEvent]]:
    """A Session over fakes (built like every real one), and the list its events land in."""
    from voicechat.session import SessionOptions

    events: list[SessionEvent] = []
    session = build_session(Profile(), [LYDIA], chat, tts=tts or FakeTTS(), sink=sink or ListSink(),  # type: ignore[arg-type]
                            pace=pace, options=SessionOptions(**options))  # type: ignore[arg-type]
    session.observe(events.append)
    return session, events


def finished(events: list[SessionEvent]) -> list[TurnFinished]:
    return [event for event in events if isinstance(event, TurnFinished)]
