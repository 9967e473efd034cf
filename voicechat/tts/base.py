"""The contract every TTS engine keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from voicechat.events import AudioChunk, Sentence


@runtime_checkable
class TextToSpeech(Protocol):
    """Speaks sentences. `stream` yields 16-bit mono PCM chunks, each with its sample rate, as they are made.

    Engines load their models once (lazily, or in `prepare`) and may be asked for any voice in voices/;
    `Sentence.voice` picks it, an empty voice means the engine's default.
    """

    name: str

    async def prepare(self, voice: str = "") -> None:
        """Load what the voice needs so that the first sentence does not pay for it."""
        ...

    def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]: ...
