"""The models a server shares between its connections: loaded once per process, per profile.

- the chat model: one client (or one embedded llama server) per profile; its async client serves every
  connection's turns at once.
- the TTS engine: one per profile, shared through `SharedTTS`, which bounds how many sentences it makes at
  once. Piper loads each model once per process, guards espeak with its own lock and runs onnxruntime
  sessions concurrently: up to one sentence per CPU core. (On 2 cores that measured the same as one at a
  time, 8.3-10.4 turns/s either way with 4 or 8 clients, as onnxruntime spreads one synthesis over both
  cores; docs/benchmarks.md.) Higgs holds one model on one GPU: one sentence at a time.
  A remote engine (openai-speech) is not bounded.
- speech recognition: a RealtimeListener per connection (its VAD and turn state are per speaker), made
  when the connection sends its first audio frame, so typed-only clients cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicechat.events import AudioChunk, Sentence

if TYPE_CHECKING:
    from voicechat.config.models import Profile
    from voicechat.live.listener import RealtimeListener
    from voicechat.llm.base import ChatModel
    from voicechat.tts.base import TextToSpeech

log = logging.getLogger("voicechat.serve")
def tts_slots(engine: str) -> int | None:
    """How many sentences an engine makes at once for all connections together (None: no bound), from the
    concurrency the engine declares."""
    from voicechat.tts.registry import engine_traits

    concurrency = engine_traits(engine).concurrency
    if concurrency == "unbounded":
        return None
    return max(1, os.cpu_count() or 1) if concurrency == "per-core" else 1


class SharedTTS:
    """One TTS engine shared by every connection, making at most `slots` sentences at once."""

    def __init__(self, engine: TextToSpeech, slots: int | None) -> None:
        self.engine = engine
        self.name = engine.name
        self.slots = slots
        self._turns: asyncio.Semaphore | None = None if slots is None else asyncio.Semaphore(slots)
        self._prepared: set[str] = set()
        self._preparing = asyncio.Lock()

    async def prepare(self, voice: str = "") -> None:
        async with self._preparing:
            if voice not in self._prepared:
                await self.engine.prepare(voice)
                self._prepared.add(voice)

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        """The engine's chunks as they are made. The engine is held only while it synthesizes, never while
        the caller plays what it got (paced playback would otherwise keep every other client waiting)."""
        from voicechat.aio import read_ahead

        async with contextlib.aclosing(read_ahead(self._synthesize(sentence))) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _synthesize(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        async with self._turns or contextlib.nullcontext():
            async for chunk in self.engine.stream(sentence):
                yield chunk


@dataclass
class Engines:
    """What one profile's connections share."""

    settings: Profile
    chat: ChatModel
    tts: SharedTTS
    _stt_dir: Path | None = None

    @classmethod
    def load(cls, name: str, settings: Profile) -> Engines:
        """Blocking (an embedded LLM server starts here): call it from a thread once the server runs."""
        from voicechat.llm.registry import create_chat_model
        from voicechat.tts.registry import create_tts

        chat = create_chat_model(settings.llm)
        for notice in chat.notices:
            log.warning("note: %s", notice)
        engine = create_tts(settings.tts)
        return cls(settings, chat, SharedTTS(engine, tts_slots(settings.tts.engine)))

    def new_listener(self) -> RealtimeListener:
        from voicechat.session_setup import new_listener
        from voicechat.stt.models import resolve_model

        if self._stt_dir is None:
            self._stt_dir = resolve_model(self.settings.stt.model)
        return new_listener(self.settings.stt, self._stt_dir)

    async def aclose(self) -> None:
        await self.chat.aclose()


@dataclass
class EngineCache:
    """Engines by profile name: only the profiles offered at start, each loaded when a connection needs it
    and unloaded when the last one using it goes (the first profile, loaded at start, stays)."""

    offered: tuple[str, ...] = ("default",)
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by profile: its flag overrides
    loaded: dict[str, Engines] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)  # connections holding each profile
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def preload(self, name: str) -> Engines:
        """Load a profile's engines before the server starts (blocking), so that errors show at once."""
        from voicechat.config.store import load_profile

        if name not in self.loaded:
            self.loaded[name] = Engines.load(name, load_profile(name, self.overrides.get(name, {})))
        return self.loaded[name]

    async def get(self, name: str) -> Engines:
        async with self._lock:
            if name not in self.offered:
                raise KeyError(name)  # a caller's bug: connections check the name against `offered` first
            if name not in self.loaded:
                await asyncio.to_thread(self.preload, name)
            return self.loaded[name]

    async def acquire(self, name: str) -> Engines:
        """A profile's engines for one more connection; give them back with `release`."""
        engines = await self.get(name)
        self.users[name] = self.users.get(name, 0) + 1
        return engines

    async def release(self, name: str) -> None:
        async with self._lock:
            self.users[name] = max(0, self.users.get(name, 0) - 1)
            if self.users[name] or name == self.offered[0] or name not in self.loaded:
                return
            engines = self.loaded.pop(name)
            log.info("profile %s unloaded: no connection uses it", name)
        with contextlib.suppress(Exception):
            await engines.aclose()

    async def aclose(self) -> None:
        engines, self.loaded = list(self.loaded.values()), {}
        for item in engines:
            with contextlib.suppress(Exception):
                await item.aclose()
