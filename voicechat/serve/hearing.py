"""A connection's microphone audio -> its Session's recognizer, made lazily on the first frame.

A recognizer costs about a second and 100 MB (3 s and 460 MB for a process's first), so typed-only
clients never get one. Audio that arrives while it starts is held (up to 10 s) and then handed over at
CATCH_UP x real time: the recognizer's voice detection misses the start of speech handed over in one burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voicechat.serve.limits import LimitReached
from voicechat.serve.protocol import INPUT_RATE, ProtocolError, check_audio_frame, error_event, scrub_secrets
from voicechat.serve.sink import Outbox

if TYPE_CHECKING:
    from voicechat.live.listener import RealtimeListener
    from voicechat.session import Session

log = logging.getLogger("voicechat.serve")
MAX_BACKLOG = INPUT_RATE * 2 * 10  # bytes of audio held while the recognizer starts or catches up: 10 s
CATCH_UP = 2.0


@dataclass
class Hearing:
    session: Session
    outbox: Outbox
    make_listener: Callable[[], Awaitable[RealtimeListener]]
    spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]
    _starting: asyncio.Task[None] | None = None
    _feeder: asyncio.Task[None] | None = None
    _audio: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    _backlog: int = 0  # bytes in _audio
    _overflowing: bool = False
    _failed: bool = False

    def take(self, frame: bytes) -> None:
        """One binary frame from the client; ProtocolError for a bad one or a flood."""
        check_audio_frame(frame)
        if self._failed or not frame:
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
        if self._starting is None:
            self._starting = self.spawn(self._start())

    async def _start(self) -> None:
        session = self.session
        try:
            session.listener = await self.make_listener()
            await session.start()  # voices are prepared already: this starts the listener and its watcher
        except Exception as error:  # a recognizer that cannot start must not take typed turns with it
            self._failed = True
            session.listener = None
            self.outbox.put(error_event(_unavailable(error)))
            return
        self._feeder = self.spawn(self._feed())
        self.outbox.put({"type": "listening"})

    async def _feed(self) -> None:
        from voicechat.live.sources import make_frame

        while True:
            frame = await self._audio.get()
            self._backlog -= len(frame)
            self.session.feed(make_frame(frame))
            if not self._audio.empty():
                await asyncio.sleep(len(frame) / 2 / INPUT_RATE / CATCH_UP)

    async def stop(self) -> None:
        """Stop feeding. A recognizer still being made is waited for (cancelled, it would be left running);
        the Session's stop() then shuts it down."""
        if self._starting is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._starting
        if self._feeder is not None:
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeder


def _unavailable(error: Exception) -> str:
    """The client's line: a limit as it is; a failure generic (its detail names the server's model files)."""
    if isinstance(error, LimitReached):
        return str(error)
    log.warning("speech recognition could not start: %s", scrub_secrets(str(error)))
    return "speech recognition is unavailable on this server (its log says why); typed turns still work"
