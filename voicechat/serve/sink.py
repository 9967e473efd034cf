"""Reply audio to a WebSocket client: binary PCM frames framed by `audio_start` / `audio_complete` events.

Everything a connection sends goes through one `Outbox`, so events and audio leave in the order the
Session made them; barge-in drops the audio still queued (the client drops what it had buffered when it
sees `audio_complete` with `interrupted`).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

from voicechat.events import AudioChunk
from voicechat.serve.protocol import INPUT_ENCODING

Outgoing = dict[str, Any] | bytes


class Outbox:
    """A FIFO of JSON events (dicts) and audio (bytes) that can drop its queued audio.

    It holds at most `limit` bytes (JSON counted as encoded) for a client that does not read: past that it
    drops its audio, takes no more, and sets `overflowed` (the connection then ends)."""

    def __init__(self, limit: int | None = None) -> None:
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self.limit = limit
        self.queued = 0  # bytes
        self.overflowed = asyncio.Event()

    def put(self, item: Outgoing) -> None:
        if self.overflowed.is_set():
            return
        size = _size(item)
        if self.limit is not None and self.queued + size > self.limit:
            self.drop_audio()
            self.overflowed.set()
            return
        self._items.append(item)
        self.queued += size
        self._ready.set()

    async def get(self) -> Outgoing:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        self.queued -= _size(item)
        return item

    def drop_audio(self) -> int:
        kept = [item for item in self._items if not isinstance(item, bytes)]
        dropped = len(self._items) - len(kept)
        self._items = deque(kept)
        self.queued = sum(map(_size, kept))
        return dropped

    def __len__(self) -> int:
        return len(self._items)


def _size(item: Outgoing) -> int:
    return len(item) if isinstance(item, bytes) else len(json.dumps(item))


class WebSocketSink:
    """An AudioSink (voicechat.audio.sinks) that queues a turn's audio for the client."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.turn = 0
        self.sample_rate: int | None = None  # of the turn's audio; None until its first chunk

    def begin_turn(self, turn: int) -> None:
        self.turn, self.sample_rate = turn, None

    async def write(self, chunk: AudioChunk) -> None:
        if chunk.sample_rate != self.sample_rate:
            self.sample_rate = chunk.sample_rate
            self.outbox.put({"type": "audio_start", "turn": self.turn, "sample_rate": chunk.sample_rate,
                             "channels": 1, "encoding": INPUT_ENCODING})
        self.outbox.put(chunk.pcm)

    def finish_turn(self, interrupted: bool) -> None:
        """After a turn: `audio_complete` when any audio was sent."""
        if self.sample_rate is not None:
            self.outbox.put({"type": "audio_complete", "turn": self.turn, "interrupted": interrupted})
        self.sample_rate = None

    async def interrupt(self) -> None:
        self.outbox.drop_audio()

    async def close(self) -> None:
        """Nothing to flush: the connection's sender owns the socket."""

    async def abort(self) -> None:
        self.outbox.drop_audio()
