"""Speculative replies: start the LLM, and the first clause's speech, while the end of turn is confirmed.

When the user goes quiet and the live transcript reads some words, `Speculator.speculate(text)` sends
the request the turn would send and synthesizes the reply's first sentence. When the final transcript
comes, the turn's own request goes through `SpeculativeModel.stream`: if its user line says the same
words (case and punctuation aside), it gets the prepared stream, tokens already read included, and the
first sentence plays from `PreparedSpeech`'s cache; otherwise the speculation is cancelled and a fresh
request goes out. A speculation never touches the conversation's history: only the turn's own reply is
recorded, and nothing of a missed one reaches the speakers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from voicechat.events import AudioChunk, Sentence

if TYPE_CHECKING:
    from voicechat.llm.base import ChatMessage, ChatModel
    from voicechat.llm.conversation import Conversation
    from voicechat.session import Session
    from voicechat.tts.base import TextToSpeech

HIT, MISS = "hit", "miss"


def same_words(first: str, second: str) -> bool:
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9']+", text.lower())

    return words(first) == words(second)


def _same_request(first: Sequence[ChatMessage], second: Sequence[ChatMessage]) -> bool:
    """The same history and the same words in the user's last line."""
    if len(first) != len(second) or not first:
        return False
    return list(first[:-1]) == list(second[:-1]) and same_words(first[-1].content, second[-1].content)


@dataclass
class _Prepared:
    """One speculative request: the pieces read so far, and the task still reading them."""

    messages: list[ChatMessage]
    pieces: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None
    done: bool = False
    reader: asyncio.Task[None] | None = None


class SpeculativeModel:
    """Wraps the conversation's ChatModel: hands a matching prepared stream to the turn, else goes fresh."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.notices = inner.notices
        self._prepared: _Prepared | None = None
        self.last_outcome = ""  # "hit", "miss" or "" for the latest turn's request

    def prepare(self, messages: list[ChatMessage]) -> _Prepared:
        self.cancel()
        prepared = _Prepared(messages)
        prepared.reader = asyncio.create_task(self._read(prepared))
        self._prepared = prepared
        return prepared

    @property
    def prepared(self) -> _Prepared | None:
        return self._prepared

    def cancel(self) -> None:
        if self._prepared is not None and self._prepared.reader is not None:
            self._prepared.reader.cancel()
        self._prepared = None

    def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        prepared, self._prepared = self._prepared, None
        if prepared is not None and _same_request(prepared.messages, messages):
            self.last_outcome = HIT
            return self._replay(prepared)
        if prepared is not None:
            self.last_outcome = MISS
            if prepared.reader is not None:
                prepared.reader.cancel()
        else:
            self.last_outcome = ""
        return self.inner.stream(messages)

    async def aclose(self) -> None:
        self.cancel()
        await self.inner.aclose()

    async def prime(self, messages: Sequence[ChatMessage]) -> None:
        from voicechat.llm.base import PromptCache

        if isinstance(self.inner, PromptCache):
            await self.inner.prime(messages)

    async def _read(self, prepared: _Prepared) -> None:
        stream = self.inner.stream(prepared.messages)
        try:
            async for piece in stream:
                prepared.pieces.append(piece)
                prepared.arrived.set()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # handed to the turn that takes this stream
            prepared.error = error
        finally:
            prepared.done = True
            prepared.arrived.set()
            close = getattr(stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(BaseException):
                    await close()

    async def _replay(self, prepared: _Prepared) -> AsyncIterator[str]:
        sent = 0
        try:
            while True:
                while sent < len(prepared.pieces):
                    sent += 1
                    yield prepared.pieces[sent - 1]
                if prepared.done:
                    break
                prepared.arrived.clear()
                if sent == len(prepared.pieces) and not prepared.done:
                    await prepared.arrived.wait()
            if prepared.error is not None:
                raise prepared.error
        finally:
            if prepared.reader is not None and not prepared.reader.done():
                prepared.reader.cancel()  # the turn stopped reading (budget spent, barge-in)


class PreparedSpeech:
    """Wraps the TTS: a sentence synthesized ahead (same words, same voice) plays from memory."""

    def __init__(self, inner: TextToSpeech) -> None:
        self.inner = inner
        self.name = inner.name
        self._ready: dict[tuple[str, str], list[AudioChunk]] = {}
        self._making: asyncio.Task[None] | None = None

    async def prepare(self, voice: str = "") -> None:
        """Load the voice and speak one word to no one: a first synthesis pays extra (the first turn's)."""
        await self.inner.prepare(voice)
        async for _ in self.inner.stream(Sentence("Hello.", voice=voice)):
            pass

    def make_ahead(self, sentence: Sentence) -> None:
        self.forget()
        self._making = asyncio.create_task(self._make(sentence))

    def forget(self) -> None:
        if self._making is not None:
            self._making.cancel()
            self._making = None
        self._ready.clear()

    async def _make(self, sentence: Sentence) -> None:
        chunks = [chunk async for chunk in self.inner.stream(sentence)]
        self._ready[(sentence.text, sentence.voice)] = chunks

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        key = (sentence.text, sentence.voice)
        if key not in self._ready and self._making is not None and not self._making.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(self._making)  # being made for this very sentence: cheaper to wait
        chunks = self._ready.pop(key, None)
        if chunks is None:
            async for chunk in self.inner.stream(sentence):
                yield chunk
            return
        for chunk in chunks:
            yield replace(chunk, sentence_index=sentence.index, character=sentence.character)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class Speculator:
    """Owns the speculation of one conversation: what was guessed, and the wrapped model and speech."""

    def __init__(self, conversation: Conversation, tts: TextToSpeech | None,
                 voices: dict[str, str], default_voice: str) -> None:
        self.conversation = conversation
        self.model = SpeculativeModel(conversation.model)
        conversation.model = self.model
        self.speech = PreparedSpeech(tts) if tts is not None else None
        self.voices, self.default_voice = voices, default_voice
        self.text = ""
        self._speaking_ahead: asyncio.Task[None] | None = None

    def speculate(self, text: str) -> None:
        """The user is quiet after `text`: start its reply (a new guess replaces the last one)."""
        if not text.strip() or same_words(text, self.text):
            return
        self.cancel()
        self.text = text
        prepared = self.model.prepare(self.conversation.messages(text))
        if self.speech is not None:
            self._speaking_ahead = asyncio.create_task(self._first_sentence(prepared))

    def cancel(self) -> None:
        """The user went on speaking: nothing of the guess is kept."""
        self.text = ""
        self.model.cancel()
        if self._speaking_ahead is not None:
            self._speaking_ahead.cancel()
            self._speaking_ahead = None
        if self.speech is not None:
            self.speech.forget()

    def outcome(self, final_text: str) -> str:
        """As the turn starts: "hit" (its reply is the prepared one), "miss" (cancelled) or "" (no guess)."""
        if not self.text:
            return ""
        prepared = self.model.prepared
        if prepared is not None and _same_request(prepared.messages, self.conversation.messages(final_text)):
            self.text = ""
            return HIT
        self.cancel()
        return MISS

    async def _first_sentence(self, prepared: _Prepared) -> None:
        """Split the prepared pieces as the turn will, and synthesize the first sentence ahead."""
        from voicechat.llm.tags import TagParser
        from voicechat.text.streaming import SentenceStreamer

        assert self.speech is not None
        lead = self.conversation.lead.name
        parser = TagParser([c.name for c in self.conversation.characters], lead)
        streamer = SentenceStreamer(self.voices, self.default_voice)
        read = 0
        while True:
            while read < len(prepared.pieces):
                read += 1
                for delta in parser.feed(prepared.pieces[read - 1]):
                    sentences = streamer.feed(delta)
                    if sentences:
                        self.speech.make_ahead(sentences[0])
                        return
            if prepared.done:
                return
            prepared.arrived.clear()
            if read == len(prepared.pieces):
                await prepared.arrived.wait()


def attach(session: Session) -> Speculator:
    """Speculate for this session: its listener's quiet moments start guesses, its voice cancels them."""
    from voicechat.events import Heard, HeardKind

    speculator = Speculator(session.conversation, session.tts, dict(session.voices), session.default_voice)
    if speculator.speech is not None:
        session.tts = speculator.speech
    listener = session.listener
    if listener is not None:
        listener.on_quiet = lambda text: speculator.speculate(session.voiced_text(text))
        listener.on_voice = speculator.cancel

    def on_event(event: object) -> None:
        if isinstance(event, Heard) and event.kind is HeardKind.STARTED:
            speculator.cancel()  # a new utterance: the last guess is stale

    session.observe(on_event)
    return speculator
