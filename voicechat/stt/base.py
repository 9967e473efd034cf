"""The results every STT engine returns, and the contract for batch transcription."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from voicechat.errors import VoicechatError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float | None = None  # None: the engine does not say


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] | None = None


@dataclass(frozen=True)
class Transcription:
    """What was said in one audio file; times are seconds from its start."""

    source: str
    language: str
    duration: float
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments if segment.text)


@dataclass(frozen=True, eq=False)
class Clip:
    """One decoded file: 16 kHz mono float32 samples and the name results are reported under."""

    source: str
    samples: npt.NDArray[np.float32]
    sample_rate: int = 16_000

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = "en"  # None: detect it (multilingual models only)
    word_timestamps: bool = False


@dataclass(frozen=True)
class Outcome:
    """One clip's result: a transcript, or the error that stopped it (the batch goes on)."""

    clip: Clip
    transcript: Transcription | None = None
    error: VoicechatError | None = None


@runtime_checkable
class SpeechToText(Protocol):
    """Transcribes a stream of clips. Engines load their model once, in `load`, and keep it for the run.

    `transcribe_many` yields one Outcome per clip, in the order the clips came; it may read ahead and
    batch several clips. An error with one clip is returned in its Outcome; an error that stops the
    engine itself (the server is down) is raised.
    """

    name: str

    def load(self, expected_clips: int = 1) -> None: ...

    def transcribe_many(self, clips: Iterable[Clip], options: TranscribeOptions) -> Iterator[Outcome]: ...


def clean_text(text: Any) -> str:
    return " ".join(str(text).split())
