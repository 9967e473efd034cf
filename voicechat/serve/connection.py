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
from voicechat.events import TurnFinished, TurnStarted
from voicechat.serve.hearing import Hearing
from voicechat.serve.protocol import (
    ConfigMessage,
    InterruptMessage,
    ProtocolError,
    ResetMessage,
    TextMessage,
    error_event,
    parse_message,
    session_event,
)
from voicechat.serve.sink import Outbox, WebSocketSink

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from voicechat.config.models import Character
    from voicechat.live.listener import RealtimeListener
    from voicechat.serve.engines import EngineCache, Engines
    from voicechat.session import Session

log = logging.getLogger("voicechat.serve")


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
    hearing: Hearing | None = None  # the session's microphone audio, once it has sent some

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
        if isinstance(message, ConfigMessage):
            await self._configure(message)
            return
        session = self.session
        if session is None:
            raise ProtocolError("no conversation is open (a profile switch failed): send a config message with "
                                "a working profile")
        if isinstance(message, TextMessage):
            await session.submit_text(message.text)
        elif isinstance(message, InterruptMessage):
            await session.interrupt()
        elif isinstance(message, ResetMessage):
            await session.interrupt()
            session.conversation.reset(_load_characters(self.names))  # cards reloaded: edits take effect
            self.outbox.put({"type": "reset", "conversation": session.conversation.conversation_id})

    async def _configure(self, message: ConfigMessage) -> None:
        session = self.session
        names = list(dict.fromkeys(message.characters or self.names))
        if session is None or (message.profile and message.profile != self.profile):
            profile = message.profile or self.profile
            _load_characters(names)  # a bad name fails before the old session goes
            await self.engines.get(profile)
            await self._stop_session()
            await self._open(profile, names)
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
        if self.session is None:
            return
        if self.hearing is None:
            self.hearing = Hearing(self.session, self.outbox, self._new_listener, self._spawn)
        self.hearing.take(frame)

    async def _new_listener(self) -> RealtimeListener:
        engines = await self.engines.get(self.profile)
        return engines.new_listener()

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
        if self.hearing is not None:
            hearing, self.hearing = self.hearing, None
            await hearing.stop()
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
