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

    @property
    def num_samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


class HeardKind(StrEnum):
    STARTED = "started"  # the user began speaking (voice activity): the barge-in signal
    UPDATE = "update"
    STABLE = "stable"
    FINAL = "final"


@dataclass(frozen=True)
class AudioFrame:
    """A short block of microphone (or scripted) audio, 16-bit mono PCM, with its loudness."""

    pcm: bytes
    sample_rate: int
    level: float = 0.0  # RMS in dBFS: 0 is full scale, -96 silence

    @property
    def duration(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True)
class Heard:
    """What the user said so far (update/stable) or in full (final)."""

    text: str
    kind: HeardKind
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
    speculation: str = ""  # "hit": the reply was started before the turn ended and kept; "miss": dropped


@dataclass(frozen=True)
class TurnStarted:
    """The user's final transcript went to the LLM."""

    index: int
    user_text: str


@dataclass(frozen=True)
class ReplyAwaited:
    """The turn's LLM has sent nothing for `waited` seconds; it fails after `timeout` seconds in all."""

    index: int
    waited: float
    timeout: float


@dataclass(frozen=True)
class Notice:
    """A one-line fact for the user that is not an error (a tag naming nobody in the chat, a small model)."""

    text: str


@dataclass(frozen=True)
class TurnFinished:
    """A reply ended: played out, interrupted by the user (barge-in), cut midway, or failed.

    This is the last event of every turn, whatever happened: `error` says why a reply failed or was cut
    (`cut` tells which: a cut reply kept what came), and both `interrupted` and `error` may be set.
    """

    index: int
    metrics: TurnMetrics
    interrupted: bool = False
    error: str | None = None
    spoken: tuple[Sentence, ...] = ()
    cut: bool = False

    @property
    def complete(self) -> bool:
        """The reply came whole (it may still have been interrupted while it played)."""
        return self.error is None


# Everything a Session reports, in order; handlers match on it and mypy checks they miss none (assert_never).
SessionEvent = Heard | TurnStarted | TextDelta | Sentence | AudioChunk | ReplyAwaited | Notice | TurnFinished
