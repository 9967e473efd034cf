"""One live conversation: audio in -> transcript -> LLM reply -> sentences -> speech out, with barge-in.

The Session owns the stages' lifecycle (`async with Session(...)`) and all cancellation: a user who
starts speaking while a reply plays (barge-in) cancels the LLM stream and the TTS work in flight, the
sink drops what it had queued, and the conversation keeps only the words that were heard. Everything
that happens is reported, in order, to `on_event` as the frozen dataclasses of `voicechat.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from voicechat.events import (
    AudioFrame,
    Sentence,
    TranscriptEvent,
    TranscriptKind,
    TurnFinished,
    TurnMetrics,
    TurnStarted,
)
from voicechat.live.playback import Playback

if TYPE_CHECKING:
    from voicechat.live.listener import RealtimeListener
    from voicechat.llm.conversation import Conversation
    from voicechat.transcript import TranscriptWriter
    from voicechat.tts.base import TextToSpeech

SPEECH_LEVEL = -45.0  # dBFS: frames louder than this count as the user's voice for end-of-speech timing


@dataclass(frozen=True)
class SessionOptions:
    barge_in: bool = True
    full_duplex: bool = False  # headphones (or scripted input): no echo to guard against
    barge_in_level: float = -30.0  # half-duplex: while replying, only audio this loud reaches the recognizer


@dataclass
class _Clock:
    """Milestones of the turn in flight, in time.monotonic() seconds."""

    speech_end: float
    transcript: float
    first_token: float | None = None
    first_sentence: float | None = None
    first_audio: float | None = None

    def metrics(self) -> TurnMetrics:
        def since(moment: float | None) -> float | None:
            return None if moment is None else round(moment - self.speech_end, 4)

        return TurnMetrics(since(self.transcript), since(self.first_token), since(self.first_sentence),
                           since(self.first_audio))


@dataclass
class Session:
    conversation: Conversation
    listener: RealtimeListener | None  # None: typed turns only (submit_text)
    tts: TextToSpeech
    playback: Playback
    voices: Mapping[str, str]  # character name -> voice
    default_voice: str
    transcript: TranscriptWriter | None = None
    options: SessionOptions = SessionOptions()
    on_event: Callable[[object], None] = lambda event: None
    turns_finished: int = 0
    _turn: asyncio.Task[None] | None = None
    _watcher: asyncio.Task[None] | None = None
    _last_voice_at: float = 0.0
    _finished: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the voices and start the listener side by side (both work in threads)."""
        voices = {self.default_voice, *self.voices.values()}
        starting = [self.tts.prepare(voice) for voice in voices]
        if self.listener is not None:
            starting.append(self.listener.start())
        await asyncio.gather(*starting)
        if self.listener is not None:
            self._watcher = asyncio.create_task(self._watch_transcripts())

    async def stop(self) -> None:
        await self.interrupt()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.listener is not None:
            await self.listener.stop()

    @property
    def replying(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def feed(self, frame: AudioFrame) -> None:
        """One frame of the user's audio. In half-duplex, a reply's echo is kept from the recognizer."""
        if frame.level > SPEECH_LEVEL:
            self._last_voice_at = time.monotonic()
        quiet_echo = self.replying and not self.options.full_duplex and frame.level < self.options.barge_in_level
        if self.listener is None:
            raise RuntimeError("this session has no listener: it takes typed turns only")
        self.listener.feed(bytes(len(frame.pcm)) if quiet_echo else frame.pcm)

    async def feed_from(self, frames: AsyncIterator[AudioFrame]) -> None:
        async for frame in frames:
            self.feed(frame)

    async def interrupt(self) -> None:
        """Stop the reply in flight, if any: cancel its work, silence playback."""
        if self.replying:
            assert self._turn is not None
            self._turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._turn

    async def wait_for_turns(self, count: int, timeout: float | None = None) -> bool:
        """Wait until `count` turns have finished in total; False on timeout."""
        async with self._finished:
            try:
                await asyncio.wait_for(self._finished.wait_for(lambda: self.turns_finished >= count), timeout)
            except TimeoutError:
                return False
        return True

    async def submit_text(self, text: str) -> None:
        """A typed turn: taken like a final transcript of speech that ended just now."""
        self._last_voice_at = time.monotonic()
        await self._handle(TranscriptEvent(text.strip(), TranscriptKind.FINAL))

    async def _watch_transcripts(self) -> None:
        assert self.listener is not None
        while True:
            await self._handle(await self.listener.events.get())

    async def _handle(self, event: TranscriptEvent) -> None:
        self.on_event(event)
        if event.kind is TranscriptKind.STARTED and self.options.barge_in:
            await self.interrupt()
        elif event.kind is TranscriptKind.FINAL and event.text:
            await self.interrupt()
            self._turn = asyncio.create_task(self._run_turn(event))

    async def _run_turn(self, final: TranscriptEvent) -> None:
        speech_end = min(self._last_voice_at or final.timestamp, final.timestamp)
        clock = _Clock(speech_end=speech_end, transcript=final.timestamp)
        index = self.conversation.turns
        self.on_event(TurnStarted(index, final.text))
        self.playback.begin_turn()
        interrupted, error = False, None
        try:
            error = await self._reply(final.text, clock)
        except asyncio.CancelledError:
            interrupted = True
            await self.playback.interrupt()
        spoken = tuple(self.playback.spoken())
        if interrupted:
            self.conversation.keep_only_spoken(spoken)
        await self._finish(TurnFinished(index, clock.metrics(), interrupted, error, spoken))
        if interrupted:
            raise asyncio.CancelledError

    async def _finish(self, finished: TurnFinished) -> None:
        if self.transcript is not None and self.conversation.last_turn is not None:
            self.transcript.write(self.conversation.last_turn, finished.metrics)
        self.on_event(finished)
        async with self._finished:
            self.turns_finished += 1
            self._finished.notify_all()

    async def _reply(self, user_text: str, clock: _Clock) -> str | None:
        """Stream the reply into speech; returns the LLM's error line when the reply failed or was cut."""
        from voicechat.llm.base import LLMError
        from voicechat.text.streaming import SentenceStreamer

        streamer = SentenceStreamer(self.voices, self.default_voice)
        sentences: asyncio.Queue[Sentence | None] = asyncio.Queue()
        speaker = asyncio.create_task(self._speak(sentences, clock))
        error: str | None = None
        try:
            async for delta in self.conversation.reply(user_text):
                clock.first_token = clock.first_token or time.monotonic()
                self.on_event(delta)
                for sentence in streamer.feed(delta):
                    self._queue_sentence(sentence, sentences, clock)
        except LLMError as failure:
            error = str(failure)
        except BaseException:
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await speaker
            raise
        for sentence in streamer.finish():
            self._queue_sentence(sentence, sentences, clock)
        sentences.put_nowait(None)
        await speaker
        return error

    def _queue_sentence(self, sentence: Sentence, queue: asyncio.Queue[Sentence | None], clock: _Clock) -> None:
        clock.first_sentence = clock.first_sentence or time.monotonic()
        self.on_event(sentence)
        queue.put_nowait(sentence)

    async def _speak(self, sentences: asyncio.Queue[Sentence | None], clock: _Clock) -> None:
        while (sentence := await sentences.get()) is not None:
            self.playback.begin_sentence(sentence)
            async for chunk in self.tts.stream(sentence):
                if clock.first_audio is None:
                    clock.first_audio = time.monotonic()
                    self.on_event(chunk)
                await self.playback.play(chunk)
            self.playback.end_sentence()

