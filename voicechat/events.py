"""What flows between the pipeline's stages: small frozen dataclasses, one module for all of them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class AudioChunk:
    """Mono 16-bit PCM audio produced by a TTS engine (or read from a source)."""

    pcm: bytes
    sample_rate: int
    sentence_index: int = 0
    chunk_index: int = 0
    character: str = ""
    is_last: bool = False

    @property
    def num_samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


class TranscriptKind(StrEnum):
    UPDATE = "update"
    STABLE = "stable"
    FINAL = "final"


@dataclass(frozen=True)
class TranscriptEvent:
    """What the user said so far (update/stable) or in full (final)."""

    text: str
    kind: TranscriptKind
    timestamp: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class TextDelta:
    """A piece of a streamed LLM reply, already routed to a character."""

    text: str
    character: str


@dataclass(frozen=True)
class Sentence:
    """One sentence to speak, in one character's voice."""

    text: str
    character: str = ""
    voice: str = ""
    index: int = 0


@dataclass(frozen=True)
class TurnMetrics:
    """Seconds from the end of the user's speech to each milestone of the reply (None: not reached)."""

    transcript: float | None = None
    first_token: float | None = None
    first_sentence: float | None = None
    first_audio: float | None = None
