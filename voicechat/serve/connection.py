"""One WebSocket client: its own Session (history, queues, listener), fed by its messages, reported back.

The receive loop takes the client's frames; one sender task writes the Outbox to the socket; the Session's
events become protocol events through `on_event`. When the client goes, its reply is cancelled, its
listener stopped and every task it started is awaited: nothing outlives the connection.

What a remote client is told stays generic where the detail would show the server's files, profile or
character names, or an upstream's answer: the detail goes to the server's log (secrets scrubbed).
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
from voicechat.events import SessionEvent, TurnFinished, TurnStarted
from voicechat.history.resume import continue_session
from voicechat.serve.hearing import Hearing
from voicechat.serve.limits import LIMIT_LOG, LimitReached, ServeLimits, Slots, TurnBucket
from voicechat.serve.protocol import (
    ConfigMessage,
    InterruptMessage,
    ProtocolError,
    ResetMessage,
    TextMessage,
    error_event,
    parse_message,
    scrub_secrets,
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
FAILED_HERE = "that did not work on this server (its log says why)"


@dataclass(frozen=True)
class ConnectionDefaults:
    profile: str
    characters: tuple[str, ...]
    pace: bool = True  # send reply audio at real-time pace, so barge-in history keeps only what was heard
    profiles: tuple[str, ...] = ()  # what clients may switch to (`profile` always); none named: only `profile`
    limits: ServeLimits = field(default_factory=ServeLimits)

    @property
    def offered(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.profile, *self.profiles)))


@dataclass
class Connection:
    websocket: WebSocket
    engines: EngineCache
    defaults: ConnectionDefaults
    recognizers: Slots = field(default_factory=lambda: Slots(ServeLimits().recognizers))  # shared by the server
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    outbox: Outbox = field(default_factory=Outbox)
    session: Session | None = None
    profile: str = ""
    names: list[str] = field(default_factory=list)  # the character cards in use, by file name
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)  # every task this connection started
    hearing: Hearing | None = None  # the session's microphone audio, once it has sent some
    close_reason: str = ""  # a line for the WebSocket close frame when the server ends the connection
    _held: str | None = None  # the profile whose engines this connection holds
    _recognizing: bool = False  # holds one of the server's recognizer slots
    _turns: TurnBucket | None = None

    def __post_init__(self) -> None:
        limits = self.defaults.limits
        self.outbox.limit = limits.queued_bytes
        self._turns = TurnBucket(limits.turn_rate, limits.turn_burst)

    async def serve(self) -> None:
        """Run until the client disconnects or stops reading; the socket is already accepted."""
        self._spawn(self._send_loop())
        receiving = self._spawn(self._serve_messages())
        overflow = self._spawn(self.outbox.overflowed.wait())
        try:
            await asyncio.wait({receiving, overflow}, return_when=asyncio.FIRST_COMPLETED)
            if overflow.done():
                self._overflowed()
        finally:
            receiving.cancel()  # first: a profile switch in flight must not open a session after close
            await asyncio.gather(receiving, return_exceptions=True)
            await self.close()

    async def _serve_messages(self) -> None:
        try:
            await self._open(self.defaults.profile, list(self.defaults.characters))
            await self._receive_loop()
        except VoicechatError as error:
            self.outbox.put(error_event(self._remote_line(error), fatal=True))
            await self._drain()

    def _overflowed(self) -> None:
        limit = self.defaults.limits.queued_bytes
        LIMIT_LOG.warn("queued-bytes", "connection %s ended: it read nothing while %d bytes waited for it "
                       "(--max-queued-bytes)", self.id, limit)
        self.close_reason = f"the client read too slowly: over {limit} bytes waited for it"

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._track(task)
        return task

    def _track(self, task: asyncio.Task[Any]) -> None:
        self.tasks = [*(known for known in self.tasks if not known.done()), task]

    def _remote_line(self, error: Exception) -> str:
        """What the client may read of an error: our own lines as they are, anything else generic."""
        if isinstance(error, ProtocolError | LimitReached):
            return str(error)
        log.warning("connection %s: %s", self.id, scrub_secrets(str(error)))
        return FAILED_HERE

    async def _open(self, profile: str, names: list[str]) -> None:
        """A new session with `profile` (its engines loaded first: a failure leaves the old session)."""
        engines = await self.engines.acquire(profile)
        try:
            characters = _load_characters(names)
        except BaseException:
            await self.engines.release(profile)
            raise
        await self._stop_session()
        self._held = profile
        self.session = _build_session(engines, characters, WebSocketSink(self.outbox), self._on_event,
                                      self.defaults.pace)
        await self.session.start()
        self.profile, self.names = profile, list(dict.fromkeys(names))
        self.outbox.put(self._ready_event(engines))

    def _ready_event(self, engines: Engines) -> dict[str, Any]:
        assert self.session is not None
        conversation = self.session.conversation
        return {"type": "ready", "connection": self.id, "profile": self.profile,
                "profiles": list(self.defaults.offered),
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
                self.outbox.put(error_event(self._remote_line(error)))
            except Exception as error:  # a bug must cost one message, never the server (nor flood its log)
                LIMIT_LOG.warn("message-failed", "connection %s: a message failed (%s)", self.id,
                               type(error).__name__, exc_info=True)
                self.outbox.put(error_event(f"internal error ({type(error).__name__}): the message was dropped"))
            await asyncio.sleep(0)  # frames already buffered are taken without a pause: let others run between

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
            self._check_turn_rate()
            await session.submit_text(message.text)
        elif isinstance(message, InterruptMessage):
            await session.interrupt()
        elif isinstance(message, ResetMessage):
            await session.interrupt()
            session.conversation.reset(_load_characters(self.names))  # cards reloaded: edits take effect
            self.outbox.put({"type": "reset", "conversation": session.conversation.conversation_id})

    def _check_turn_rate(self) -> None:
        assert self._turns is not None
        if self._turns.take():
            return
        limits = self.defaults.limits
        LIMIT_LOG.warn("turn-rate", "connection %s: a typed turn dropped, over %g a second (--max-turn-rate)",
                       self.id, limits.turn_rate)
        raise LimitReached(f"too many typed turns: at most {limits.turn_burst} at once, then {limits.turn_rate:g} "
                           "a second; this one was dropped, send it again in a moment")

    async def _configure(self, message: ConfigMessage) -> None:
        session = self.session
        names = list(dict.fromkeys(message.characters or self.names))
        _check_characters(names)
        if message.profile and message.profile not in self.defaults.offered:
            raise ProtocolError("this server does not offer that profile: use one of those its `ready` event "
                                "lists")
        if session is None or (message.profile and message.profile != self.profile):
            await self._open(message.profile or self.profile, names)
            if message.continue_ is not None and self.session is not None:
                self.outbox.put(await continue_session(self.session, message.continue_))
            return
        if message.characters:
            characters = _load_characters(names)
            for character in characters:
                if session.tts is not None:
                    await session.tts.prepare(character.voice)
            await session.interrupt()
            session.conversation.reset(characters)
            session.voices = {c.name: c.voice for c in characters}
            session.default_voice = characters[0].voice
            self.names = names
        self.outbox.put({"type": "config", "profile": self.profile,
                         "characters": [c.name for c in session.conversation.characters]})
        if message.continue_ is not None:
            self.outbox.put(await continue_session(session, message.continue_))

    def _take_audio(self, frame: bytes) -> None:
        if self.session is None:
            return
        if self.hearing is None:
            self.hearing = Hearing(self.session, self.outbox, self._new_listener, self._spawn)
        self.hearing.take(frame)

    async def _new_listener(self) -> RealtimeListener:
        if not self.recognizers.take():
            limit = self.recognizers.limit
            LIMIT_LOG.warn("recognizers", "connection %s: no recognizer, all %d in use (--max-recognizers)",
                           self.id, limit)
            raise LimitReached(f"speech recognition is busy: this server runs at most {limit} recognizers at "
                               "once; typed turns still work, reconnect to try the microphone again")
        self._recognizing = True
        engines = await self.engines.get(self.profile)
        return engines.new_listener()

    def _on_event(self, event: SessionEvent) -> None:
        session = self.session
        if isinstance(event, TurnStarted) and session is not None:
            current = asyncio.current_task()
            if current is not None:
                self._track(current)  # the Session's turn task: awaited at close like ours
            _sink(session).begin_turn(event.index)
        if isinstance(event, TurnFinished) and session is not None:
            _sink(session).finish_turn(event.interrupted)  # audio_complete comes before turn_metrics
        if isinstance(event, TurnFinished) and event.error is not None:
            log.warning("connection %s turn %d: %s", self.id, event.index, scrub_secrets(event.error))
        wire = session_event(event)
        if wire is not None:
            self.outbox.put(wire)

    async def _send_loop(self) -> None:
        from starlette.websockets import WebSocketDisconnect

        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # gone: the receive loop sees it too
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
        if self._recognizing:
            self._recognizing = False
            self.recognizers.give()
        if self.session is not None:
            session, self.session = self.session, None
            await session.stop()
        if self._held is not None:
            held, self._held = self._held, None
            await self.engines.release(held)

    async def close(self) -> None:
        """Cancel the reply, stop the listener, end every task this connection started."""
        await self._stop_session()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(task for task in self.tasks if task is not current), return_exceptions=True)
        self.tasks = [task for task in self.tasks if not task.done()]


def _sink(session: Session) -> WebSocketSink:
    assert session.playback is not None
    sink = session.playback.sink
    assert isinstance(sink, WebSocketSink)
    return sink


def _load_characters(names: list[str]) -> list[Character]:
    from voicechat.config.store import load_character

    _check_characters(names)
    characters = []
    for name in dict.fromkeys(names):
        try:
            characters.append(load_character(name))
        except VoicechatError as error:
            log.warning("character %r cannot be used: %s", name, error)
            raise ProtocolError(f"character card '{name}' cannot be used on this server (its log says why): "
                                "pick another") from None
    return characters


def _check_characters(names: list[str]) -> None:
    """Unknown names fail with a line that names the client's own choice, never the cards the server has."""
    from voicechat.config.store import list_files

    known = {config_file.name for config_file in list_files("characters")}
    for name in names:
        if name not in known:
            raise ProtocolError(f"no character card '{name}' on this server: ask its operator which cards it has")


def _build_session(engines: Engines, characters: list[Character], sink: WebSocketSink,
                   on_event: Callable[[SessionEvent], None], pace: bool) -> Session:
    from voicechat.session_setup import build_session

    session = build_session(engines.settings, characters, engines.chat, tts=engines.tts, sink=sink, pace=pace)
    session.observe(on_event)
    return session
