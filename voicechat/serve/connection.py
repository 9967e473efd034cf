"""One WebSocket client: its own Session (history, queues, listener), fed by its messages, reported back.

The receive loop takes the client's frames; one sender task writes the Outbox to the socket; the Session's
events become protocol events through `on_event`. When the client goes, its reply is cancelled, its
listener stopped and every task it started is awaited: nothing outlives the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voicechat.errors import VoicechatError
from voicechat.events import AudioFrame, TurnFinished, TurnStarted
from voicechat.serve.protocol import (
    ConfigMessage,
    InterruptMessage,
    ProtocolError,
    ResetMessage,
    TextMessage,
    check_audio_frame,
    error_event,
    parse_message,
    session_event,
)
from voicechat.serve.sink import Outbox, WebSocketSink

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from voicechat.config.models import Character
    from voicechat.serve.engines import EngineCache, Engines
    from voicechat.session import Session

log = logging.getLogger("voicechat.serve")
MAX_BACKLOG = 16000 * 2 * 10  # bytes of audio held while the listener starts or catches up: 10 s
CATCH_UP = 2.0  # held audio goes to the recognizer at this multiple of real time, never in one burst


@dataclass(frozen=True)
class ConnectionDefaults:
    profile: str
    characters: tuple[str, ...]
    pace: bool = True  # send reply audio at real-time pace, so barge-in history keeps only what was heard


@dataclass
class Connection:
    websocket: WebSocket
    engines: EngineCache
    defaults: ConnectionDefaults
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    outbox: Outbox = field(default_factory=Outbox)
    session: Session | None = None
    profile: str = ""
    names: list[str] = field(default_factory=list)  # the character cards in use, by file name
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)  # every task this connection started
    _listening: asyncio.Task[None] | None = None  # making the recognizer
    _feeder: asyncio.Task[None] | None = None  # handing it the audio
    _audio: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    _backlog: int = 0  # bytes in _audio
    _overflowing: bool = False
    _stt_failed: bool = False

    async def serve(self) -> None:
        """Run until the client disconnects; the socket is already accepted."""
        self._spawn(self._send_loop())
        try:
            await self._open(self.defaults.profile, list(self.defaults.characters))
            await self._receive_loop()
        except VoicechatError as error:
            self.outbox.put(error_event(str(error), fatal=True))
            await self._drain()
        finally:
            await self.close()

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._track(task)
        return task

    def _track(self, task: asyncio.Task[Any]) -> None:
        self.tasks = [*(known for known in self.tasks if not known.done()), task]

    async def _open(self, profile: str, names: list[str]) -> None:
        engines = await self.engines.get(profile)
        characters = _load_characters(names)
        self.session = _build_session(engines, characters, WebSocketSink(self.outbox), self._on_event,
                                      self.defaults.pace)
        await self.session.start()
        self.profile, self.names = profile, list(dict.fromkeys(names))
        self.outbox.put(self._ready_event(engines))

    def _ready_event(self, engines: Engines) -> dict[str, Any]:
        assert self.session is not None
        conversation = self.session.conversation
        return {"type": "ready", "connection": self.id, "profile": self.profile,
                "characters": [c.name for c in conversation.characters], "user_name": conversation.user_name,
                "llm": engines.chat.name, "tts": engines.tts.name, "input_sample_rate": 16000}

    async def _receive_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    self._take_audio(message["bytes"])
                elif message.get("text") is not None:
                    await self._take_message(message["text"])
            except (ProtocolError, VoicechatError) as error:
                self.outbox.put(error_event(str(error)))
            except Exception as error:  # a bug must cost one message, never the server
                log.exception("connection %s: message failed", self.id)
                self.outbox.put(error_event(f"internal error ({type(error).__name__}): the message was dropped"))

    async def _take_message(self, raw: str) -> None:
        message = parse_message(raw)
        session = self.session
        assert session is not None
        if isinstance(message, TextMessage):
            await session.submit_text(message.text)
        elif isinstance(message, InterruptMessage):
            await session.interrupt()
        elif isinstance(message, ResetMessage):
            await session.interrupt()
            session.conversation.reset(_load_characters(self.names))  # cards reloaded: edits take effect
            self.outbox.put({"type": "reset", "conversation": session.conversation.conversation_id})
        elif isinstance(message, ConfigMessage):
            await self._configure(message)

    async def _configure(self, message: ConfigMessage) -> None:
        session = self.session
        assert session is not None
        names = list(dict.fromkeys(message.characters or self.names))
        if message.profile and message.profile != self.profile:
            _load_characters(names)  # a bad name fails before the old session goes
            await self.engines.get(message.profile)
            await self._stop_session()
            await self._open(message.profile, names)
            return
        if message.characters:
            characters = _load_characters(names)
            for character in characters:
                await session.tts.prepare(character.voice)
            await session.interrupt()
            session.conversation.reset(characters)
            session.voices = {c.name: c.voice for c in characters}
            session.default_voice = characters[0].voice
            self.names = names
        self.outbox.put({"type": "config", "profile": self.profile,
                         "characters": [c.name for c in session.conversation.characters]})

    def _take_audio(self, frame: bytes) -> None:
        check_audio_frame(frame)
        session = self.session
        if session is None or self._stt_failed or not frame:
            return
        if self._backlog + len(frame) > MAX_BACKLOG:
            if not self._overflowing:  # one error per flood, not one per frame
                self._overflowing = True
                raise ProtocolError("audio is arriving faster than real time: send 16 kHz frames at the pace "
                                    "they are recorded (frames are dropped until it catches up)")
            return
        self._overflowing = False
        self._audio.put_nowait(frame)
        self._backlog += len(frame)
        if self._listening is None:
            self._listening = self._spawn(self._start_listener(session))

    async def _start_listener(self, session: Session) -> None:
        """The first audio frame makes this connection's recognizer (about a second); audio waits meanwhile."""
        try:
            engines = await self.engines.get(self.profile)
            session.listener = engines.new_listener()
            await session.start()  # voices are prepared already: this starts the listener and its watcher
        except Exception as error:  # a recognizer that cannot start must not take typed turns with it
            self._stt_failed = True
            session.listener = None
            self.outbox.put(error_event(f"speech recognition is unavailable: {error}; typed turns still work"))
            return
        self._feeder = self._spawn(self._feed(session))
        self.outbox.put({"type": "listening"})

    async def _feed(self, session: Session) -> None:
        """Audio to the recognizer as it comes; what was held meanwhile follows at CATCH_UP x real time, since
        the recognizer's voice detection misses the start of speech handed over in one burst."""
        while True:
            frame = await self._audio.get()
            self._backlog -= len(frame)
            session.feed(_frame(frame))
            if not self._audio.empty():
                await asyncio.sleep(len(frame) / 2 / 16000 / CATCH_UP)

    def _on_event(self, event: object) -> None:
        session = self.session
        if isinstance(event, TurnStarted) and session is not None:
            current = asyncio.current_task()
            if current is not None:
                self._track(current)  # the Session's turn task: awaited at close like ours
            _sink(session).begin_turn(event.index)
        if isinstance(event, TurnFinished) and session is not None:
            _sink(session).finish_turn(event.interrupted)  # audio_complete comes before turn_metrics
        wire = session_event(event)
        if wire is not None:
            self.outbox.put(wire)

    async def _send_loop(self) -> None:
        while True:
            item = await self.outbox.get()
            if isinstance(item, bytes):
                await self.websocket.send_bytes(item)
            else:
                await self.websocket.send_json(item)

    async def _drain(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.outbox):
                    await asyncio.sleep(0.01)

    async def _stop_session(self) -> None:
        if self._listening is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._listening  # a recognizer half made would be left running: let it finish, then stop
        if self._feeder is not None:
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeder
        self._listening, self._feeder, self._audio, self._backlog = None, None, asyncio.Queue(), 0
        self._stt_failed = False
        if self.session is not None:
            session, self.session = self.session, None
            await session.stop()

    async def close(self) -> None:
        """Cancel the reply, stop the listener, end every task this connection started."""
        await self._stop_session()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = [task for task in self.tasks if not task.done()]


def _frame(pcm: bytes) -> AudioFrame:
    from voicechat.live.sources import make_frame

    return make_frame(pcm)


def _sink(session: Session) -> WebSocketSink:
    sink = session.playback.sink
    assert isinstance(sink, WebSocketSink)
    return sink


def _load_characters(names: list[str]) -> list[Character]:
    from voicechat.config.store import load_character

    return [load_character(name) for name in dict.fromkeys(names)]


def _build_session(engines: Engines, characters: list[Character], sink: WebSocketSink,
                   on_event: Callable[[object], None], pace: bool) -> Session:
    from voicechat.live.playback import Playback
    from voicechat.llm.conversation import Conversation
    from voicechat.session import Session

    settings = engines.settings
    conversation = Conversation(engines.chat, characters, settings.user_name, settings.llm.history_turns,
                                settings.llm.history_tokens)
    voices = {c.name: c.voice for c in characters}
    return Session(conversation=conversation, listener=None, tts=engines.tts, playback=Playback(sink, pace=pace),
                   voices=voices, default_voice=characters[0].voice, on_event=on_event)
