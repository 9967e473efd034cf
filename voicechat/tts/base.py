"""The contract every TTS engine keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from voicechat.events import AudioChunk, Sentence

if TYPE_CHECKING:
    from voicechat.config.store import VoiceEntry

VoiceLookup = Callable[[str], "VoiceEntry"]  # a voice name -> its TOML entry and files


@dataclass(frozen=True)
class EngineTraits:
    """What an engine can do, declared beside its code: the server sizes its sharing from it."""

    concurrency: Literal["per-core", "one", "unbounded"]  # sentences at once, for all users together
    remote: bool  # runs on another machine (a speech API)
    streaming: bool  # yields audio before the sentence is fully made


def voice_lookup(voices: VoiceLookup | None) -> VoiceLookup:
    """The lookup an engine was given, or the voices folders' own."""
    if voices is not None:
        return voices
    from voicechat.config.store import load_voice

    return load_voice


@runtime_checkable
class TextToSpeech(Protocol):
    """Speaks sentences. `stream` yields 16-bit mono PCM chunks, each with its sample rate, as they are made.

    Engines load their models once (lazily, or in `prepare`) and may be asked for any voice in voices/;
    `Sentence.voice` picks it, an empty voice means the engine's default. Each engine class declares its
    `traits` (EngineTraits) beside its code; `tts.registry.engine_traits` reads them.
    """

    name: str

    async def prepare(self, voice: str = "") -> None:
        """Load what the voice needs so that the first sentence does not pay for it."""
        ...

    def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]: ...
