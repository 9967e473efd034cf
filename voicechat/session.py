"""One conversation: audio or typed turns in -> LLM reply -> sentences -> speech out, with barge-in.

The Session owns the stages' lifecycle (`async with Session(...)`) and all cancellation: a user who
starts speaking while a reply plays (barge-in) cancels the LLM stream and the TTS work in flight, the
sink drops what it had queued, and the conversation keeps only the words that were heard. Everything
that happens is reported, in order, to the observers as the `SessionEvent`s of `voicechat.events`;
every turn ends with one `TurnFinished`, whatever failed in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from voicechat.errors import VoicechatError
from voicechat.events import (
    AudioFrame,
    Heard,
    HeardKind,
    Notice,
    ReplyAwaited,
    Sentence,
    SessionEvent,
    TurnFinished,
    TurnMetrics,
    TurnStarted,
)

if TYPE_CHECKING:
    from voicechat.config.models import Character
    from voicechat.conversation_log import ConversationLog
    from voicechat.events import TextDelta
    from voicechat.live.barge_in import BargeInCheck
    from voicechat.live.echo import EchoGuard
    from voicechat.live.listener import RealtimeListener
    from voicechat.live.playback import Playback
    from voicechat.live.speculation import Speculator
    from voicechat.live.voice_onset import VoiceOnset
    from voicechat.llm.base import PromptCache
    from voicechat.llm.conversation import Conversation
    from voicechat.tts.base import TextToSpeech

log = logging.getLogger("voicechat.session")
SPEECH_LEVEL = -45.0  # dBFS: frames louder than this count as the user's voice for end-of-speech timing
Observer = Callable[[SessionEvent], None]
UNANSWERED_FOR = 5.0  # seconds after its reply was cut in which a new utterance still continues a question
T = TypeVar("T")


@dataclass(frozen=True)
class SessionOptions:
    barge_in: bool = True
    full_duplex: bool = False  # headphones (or scripted input): no echo to guard against
    barge_in_level: float = -30.0  # half-duplex: while replying, only audio this loud reaches the recognizer
    reply_timeout: float = 60.0  # the LLM's first token must come within this (llm.timeout)
    await_notice_after: float = 2.0  # seconds without a first token before ReplyAwaited is reported
    speculate: bool = True  # start the reply on the live transcript while the end of turn is confirmed
    greet: bool = False  # `greet()` opens a new conversation with the characters' greetings
    onset_barge_in: bool = False  # a live microphone: a voice's onset over a reply acts at once (live/voice_onset.py)


@dataclass
class _Turn:
    """The turn in flight: its milestones (time.monotonic() seconds) and how it ended."""

    index: int
    speech_end: float
    transcript: float
    first_token: float | None = None
    first_sentence: float | None = None
    first_audio: float | None = None
    error: str | None = None
    cut: bool = False
    interrupted: bool = False
    speculation: str = ""  # "hit" / "miss": the reply was guessed before the turn ended (speculation.py)

    def fail(self, error: str, cut: bool = False) -> None:
        if self.error is None:  # the first failure is the cause; later ones follow from it
            self.error, self.cut = error, cut

    def metrics(self) -> TurnMetrics:
        def since(moment: float | None) -> float | None:
            return None if moment is None else round(moment - self.speech_end, 4)

        return TurnMetrics(since(self.transcript), since(self.first_token), since(self.first_sentence),
                           since(self.first_audio), self.speculation)


@dataclass
class Session:
    conversation: Conversation
    listener: RealtimeListener | None  # None: typed turns only (submit_text)
    tts: TextToSpeech | None  # None: replies are shown, not spoken
    playback: Playback | None
    voices: Mapping[str, str]  # character name -> voice
    default_voice: str
    transcript: ConversationLog | None = None
    options: SessionOptions = SessionOptions()
    observers: list[Observer] = field(default_factory=list)
    turns_finished: int = 0
    _turn: asyncio.Task[None] | None = None
    _watcher: asyncio.Task[None] | None = None
    _last_voice_at: float = 0.0
    _speculator: Speculator | None = None
    echo_guard: EchoGuard | None = None  # on open speakers: a transcript of the reply's own words is no turn
    barge_check: BargeInCheck | None = None  # on open speakers: voice holds the reply, words not its own cut it
    _finished: asyncio.Condition = field(default_factory=asyncio.Condition)
    _reading_ahead: asyncio.Task[None] | None = None
    _onset: VoiceOnset | None = None
    _cutting: asyncio.Future[None] | None = None
    _unanswered: str = ""  # the user's words whose reply their own voice cut before any of it was heard
    _unanswered_at: float = 0.0  # when that reply was cut

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.stop()

    def observe(self, observer: Observer) -> Callable[[], None]:
        """Report every event to `observer` from now on; returns the call that stops it."""
        self.observers.append(observer)
        return lambda: self.observers.remove(observer) if observer in self.observers else None

    def emit(self, event: SessionEvent) -> None:
        for observer in list(self.observers):
            try:
                observer(event)
            except Exception:  # a broken view must not break the conversation
                log.exception("observer %r failed on %s", observer, type(event).__name__)

    async def start(self) -> None:
        """Load the voices and start the listener side by side (both work in threads)."""
        if self.listener is not None and self.options.speculate and self._speculator is None:
            from voicechat.live.speculation import attach

            self._speculator = attach(self)
        starting = []
        if self.tts is not None:
            starting = [self.tts.prepare(voice) for voice in {self.default_voice, *self.voices.values()}]
        if self.options.onset_barge_in and self.options.barge_in and self._onset is None:
            from voicechat.live.voice_onset import VoiceOnset

            self._onset = await asyncio.to_thread(VoiceOnset)
        if self.listener is not None:
            starting.append(self.listener.start())
        await asyncio.gather(*starting)
        if self.listener is not None:
            self._watcher = asyncio.create_task(self._watch_transcripts())
        self._read_ahead()

    async def stop(self) -> None:
        await self.interrupt()
        if self._reading_ahead is not None:
            self._reading_ahead.cancel()
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
        quiet_echo = self._echo_possible() and frame.level < self.options.barge_in_level
        if self.listener is None:
            raise RuntimeError("this session has no listener: it takes typed turns only")
        pcm = bytes(len(frame.pcm)) if quiet_echo else frame.pcm
        self._watch_onset(pcm)
        self.listener.feed(pcm)

    def _echo_possible(self) -> bool:
        """Half duplex, and a reply is playing: before its first audio (the model still thinking) there is no
        echo to keep out, and the user's soft words going on after a pause must reach the recognizer."""
        if self.options.full_duplex or not self.replying:
            return False
        return self.playback is not None and self.playback.audible

    def _watch_onset(self, pcm: bytes) -> None:
        """While a reply plays, a voice's onset barges in now, not when the recognizer reports it."""
        if self._onset is None:
            return
        if not self.replying:
            self._onset.reset()
            return
        check = self.barge_check
        if check is not None and not check.pending and check.sound_over_echo():
            check.hold()  # before the voice detector can tell: the reply falls silent a few frames sooner
        if self._onset.heard(pcm):
            log.debug("a voice began over the reply")
            if self.barge_check is None or self.barge_check.started():
                self._cutting = asyncio.ensure_future(self._cut_reply())
        elif self._onset.speaking and self.barge_check is not None:
            self.barge_check.voiced()

    def sound_over_reply(self) -> None:
        """The microphone's thread paused the reply on a sound nearly as loud as its whole echo
        (BargeInCheck.pause_at_once): hold it like any voice over a reply, or give the volume back when no
        reply plays any more."""
        check = self.barge_check
        if check is None:
            return
        if self.replying:
            check.hold()
        else:
            check.release_early()

    async def feed_from(self, frames: AsyncIterator[AudioFrame]) -> None:
        async for frame in frames:
            self.feed(frame)

    async def interrupt(self) -> None:
        """Stop the reply in flight, if any: cancel its work, silence playback. Its question is dropped, not
        carried into the next turn as when the user's own voice cuts a reply before a word of it is heard."""
        await self._cut_reply()
        self._unanswered = ""

    def voiced_text(self, text: str) -> str:
        """What a spoken turn of `text` asks: after a reply cut before any of it was heard (a thinking pause
        taken for the end of the turn), the words it answered and these together."""
        from voicechat.live.turns import joined_utterance

        return joined_utterance(self._unanswered, text)

    async def _cut_reply(self) -> None:
        if self.barge_check is not None:
            self.barge_check.settle()  # a held reply stays silent until the cut has emptied the sink
        if self.replying:
            assert self._turn is not None
            self._turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._turn
        if self.barge_check is not None:
            self.barge_check.clear(cut=True)

    async def reset(self, characters: Sequence[Character] | None = None) -> None:
        """Stop any reply and start a new conversation (with these characters and their voices, if given)."""
        await self.interrupt()
        self.conversation.reset(characters)
        if characters:
            self.voices = {c.name: c.voice for c in characters}
            self.default_voice = characters[0].voice

    async def wait_for_turns(self, count: int, timeout: float | None = None) -> bool:
        """Wait until `count` turns have finished in total; False on timeout."""
        async with self._finished:
            try:
                await asyncio.wait_for(self._finished.wait_for(lambda: self.turns_finished >= count), timeout)
            except TimeoutError:
                return False
        return True

    def greet(self) -> asyncio.Task[None] | None:
        """Open a new conversation with each character's greeting, shown and spoken like a reply (speaking over
        it interrupts it like one). None when options.greet is off, the conversation has begun, or no
        character has a greeting. Await the task to hear it out before the first turn."""
        characters = self.conversation.characters
        if not self.options.greet or self.conversation.turns or not any(c.greeting.strip() for c in characters):
            return None
        self._last_voice_at = time.monotonic()
        self._turn = asyncio.create_task(self._run_turn(Heard("", HeardKind.FINAL), greeting=True))
        return self._turn

    async def submit_text(self, text: str) -> None:
        """A typed turn: taken like a final transcript of speech that ended just now."""
        self._last_voice_at = time.monotonic()
        await self._handle(Heard(text.strip(), HeardKind.FINAL), voiced=False)

    async def _watch_transcripts(self) -> None:
        assert self.listener is not None
        while True:
            await self._handle(await self.listener.events.get())

    async def _handle(self, event: Heard, voiced: bool = True) -> None:
        """`voiced`: the listener heard it (a typed turn never continues an unanswered spoken one)."""
        log.debug("heard %s %r (replying: %s)", event.kind.value, event.text, self.replying)
        if self._is_echo(event):
            log.info("taken as the reply's echo: %r", event.text)
            if self.barge_check is not None and event.kind is HeardKind.FINAL:
                self.barge_check.heard_echo()
            return
        self.emit(event)
        if event.kind is HeardKind.STARTED and time.monotonic() - self._unanswered_at > UNANSWERED_FOR:
            self._unanswered = ""  # its cut said nothing, and this is a new utterance, not its continuation
        check = self.barge_check if self.options.barge_in and self.replying else None
        if event.kind is HeardKind.STARTED and self.options.barge_in:
            if check is None or check.started():
                await self._cut_reply()
        elif event.kind in (HeardKind.UPDATE, HeardKind.STABLE) and check is not None and check.pending:
            if check.heard(event.text, self._played()):
                await self._cut_reply()
        elif event.kind is HeardKind.FINAL and (event.text or (voiced and self._unanswered)):
            # an empty one after an unanswered question: a noise cut its reply and said nothing, so ask again
            await (self._cut_reply() if voiced else self.interrupt())
            if voiced:
                event, self._unanswered = replace(event, text=self.voiced_text(event.text)), ""
            self._turn = asyncio.create_task(self._run_turn(event, voiced=voiced))

    def _is_echo(self, event: Heard) -> bool:
        """A final transcript made of the reply's own words as it plays: its echo, not a turn (live/echo.py)."""
        if self.echo_guard is None or self.playback is None:
            return False
        return self.echo_guard.hears_echo(event, self.replying, self._played())

    def _played(self) -> list[str]:
        """The sentences of this reply that have begun to play, whole."""
        return [item.sentence.text for item in self.playback.progress if item.played > 0] if self.playback else []

    async def _run_turn(self, final: Heard, greeting: bool = False, voiced: bool = False) -> None:
        speech_end = min(self._last_voice_at or final.timestamp, final.timestamp)
        turn = _Turn(self.conversation.turns, speech_end=speech_end, transcript=final.timestamp)
        if self._speculator is not None:
            turn.speculation = self._speculator.outcome(final.text)
        known_tags = len(self.conversation.unknown_tags)
        self.emit(TurnStarted(turn.index, final.text))
        if self.playback is not None:
            self.playback.begin_turn()
        try:
            await self._reply(final.text, turn, greeting)
        except asyncio.CancelledError:
            turn.interrupted = True
            if self.playback is not None:
                await self.playback.interrupt()
        except Exception as failure:  # any stage: the turn ends with its error, the conversation goes on
            log.warning("turn %d failed", turn.index, exc_info=True)
            turn.fail(_describe(failure))
        if self.barge_check is not None:
            self.barge_check.clear(cut=turn.interrupted)  # the reply ended while it was held
        spoken = tuple(self.playback.spoken()) if self.playback is not None else ()
        if turn.interrupted and self.playback is not None:
            self.conversation.keep_only_spoken(spoken)
        if turn.interrupted and voiced and not (spoken if self.tts is not None else turn.first_token):
            self._unanswered = final.text  # the next spoken turn asks it again, with what it adds
            self._unanswered_at = time.monotonic()
        for name in self.conversation.unknown_tags[known_tags:]:
            self.emit(Notice(f"the model tagged lines for '{name}', who is not in this chat; "
                             f"{self.conversation.lead.name} said them"))
        await self._finish(final.text, turn, spoken)
        if turn.interrupted:
            raise asyncio.CancelledError

    async def _finish(self, user_text: str, turn: _Turn, spoken: tuple[Sentence, ...]) -> None:
        if self.conversation.turns == turn.index:  # failed before the conversation could record it
            self.conversation.record_failed_turn(user_text, turn.error or "the turn failed")
        recorded = self.conversation.last_turn
        if self.transcript is not None and recorded is not None:
            if turn.error is not None:
                recorded = replace(recorded, error=turn.error, cut=recorded.cut or turn.cut)
            try:
                self.transcript.write(recorded, turn.metrics())
            except Exception as failure:  # a full disk must not leave the turn without its end
                log.warning("turn %d: the transcript write failed", turn.index, exc_info=True)
                turn.fail(f"the transcript could not be written ({_describe(failure)})")
        self.emit(TurnFinished(turn.index, turn.metrics(), turn.interrupted, turn.error, spoken, turn.cut))
        async with self._finished:
            self.turns_finished += 1
            self._finished.notify_all()
        self._read_ahead()

    def _read_ahead(self) -> None:
        """Between turns a local model reads the conversation so far, so that the next turn's request reads
        only its own line (llm.base.PromptCache); a remote one is never sent anything extra."""
        from voicechat.llm.base import PromptCache

        model = self.conversation.model
        if isinstance(model, PromptCache):
            if self._reading_ahead is not None:
                self._reading_ahead.cancel()
            self._reading_ahead = asyncio.create_task(self._prime(model))

    async def _prime(self, model: PromptCache) -> None:
        try:
            await model.prime(self.conversation.messages(""))
        except Exception:  # only a head start: the turn itself still works without it
            log.debug("reading the conversation ahead failed", exc_info=True)

    async def _reply(self, user_text: str, turn: _Turn, greeting: bool = False) -> None:
        """Stream the reply into speech. A failed LLM is recorded on the turn (the words that came are still
        spoken); a failed speech engine stops the reply and is raised."""
        from voicechat.llm.base import LLMError, ReplyCut
        from voicechat.text.streaming import SentenceStreamer

        streamer = SentenceStreamer(self.voices, self.default_voice)
        sentences: asyncio.Queue[Sentence | None] = asyncio.Queue()
        speaker = asyncio.create_task(self._speak(sentences, turn)) if self.tts is not None else None
        waiting = asyncio.create_task(self._announce_wait(turn))
        try:
            source = _greeting(self.conversation) if greeting else self.conversation.reply(user_text)
            async with _closing(source) as deltas:
                async for delta in deltas:
                    turn.first_token = turn.first_token or time.monotonic()
                    waiting.cancel()
                    self.emit(delta)
                    for sentence in streamer.feed(delta):
                        self._queue_sentence(sentence, sentences, turn)
                    if speaker is not None and speaker.done():
                        break  # the speech engine failed: its error is raised below
        except ReplyCut as cut:
            turn.fail(str(cut), cut=True)
        except LLMError as failure:
            turn.fail(str(failure))
        except BaseException:
            await _cancel(speaker)
            raise
        finally:
            waiting.cancel()
        for sentence in streamer.finish():
            self._queue_sentence(sentence, sentences, turn)
        sentences.put_nowait(None)
        if speaker is not None:
            try:
                await speaker
            except asyncio.CancelledError:
                await _cancel(speaker)
                raise

    async def _announce_wait(self, turn: _Turn) -> None:
        waited = self.options.await_notice_after
        await asyncio.sleep(waited)
        self.emit(ReplyAwaited(turn.index, waited, self.options.reply_timeout))

    def _queue_sentence(self, sentence: Sentence, queue: asyncio.Queue[Sentence | None], turn: _Turn) -> None:
        turn.first_sentence = turn.first_sentence or time.monotonic()
        self.emit(sentence)
        queue.put_nowait(sentence)

    async def _speak(self, sentences: asyncio.Queue[Sentence | None], turn: _Turn) -> None:
        """Play the reply's sentences as they come, the next one synthesized while the current one plays."""
        from voicechat.speak import SentenceSpoken, synthesized

        assert self.tts is not None and self.playback is not None
        playback = self.playback

        async def queued() -> AsyncIterator[Sentence]:
            while (sentence := await sentences.get()) is not None:
                yield sentence

        try:
            async with _closing(synthesized(self.tts, queued())) as items:
                async for item in items:
                    if isinstance(item, Sentence):
                        playback.begin_sentence(item)
                    elif isinstance(item, SentenceSpoken):
                        playback.end_sentence()
                    else:
                        if turn.first_audio is None:
                            turn.first_audio = time.monotonic()
                            self.emit(item)
                        await playback.play(item)
        except Exception as failure:
            raise SpeechFailed(f"speech ({self.tts.name}) failed: {_describe(failure)}") from failure


class SpeechFailed(VoicechatError):
    """The speech engine or the audio output failed during a reply."""


async def _greeting(conversation: Conversation) -> AsyncIterator[TextDelta]:
    """The characters' greetings, recorded as the conversation's first turn, streamed like a reply."""
    for part in conversation.greet():
        yield part


@contextlib.asynccontextmanager
async def _closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close an async generator on leaving the block (a break or a cancel), not at garbage collection."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _describe(failure: Exception) -> str:
    """One line for a failure that reached the turn: our own errors already are one."""
    if isinstance(failure, VoicechatError):
        return str(failure)
    detail = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
    return f"the reply failed ({type(failure).__name__}{': ' + detail if detail else ''}); details in the log"

