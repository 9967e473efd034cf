"""Long files in pieces: cut at pauses, transcribed side by side on every model replica, joined back.

One file on its own runs on one replica and leaves the other cores idle. Cut into pieces, its pieces go
through `transcribe_many` beside each other (and beside the short files of the same batch) and come back
as one transcript whose times are seconds from the file's start, as one pass would give.
Each piece is decoded without the text before it (Whisper's conditioning on previous text restarts at each
cut); docs/benchmarks.md measures what that costs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

from voicechat.errors import VoicechatError
from voicechat.stt.base import Clip, Outcome, Segment, SpeechToText, TranscribeOptions, Transcription
from voicechat.transcription.cuts import cut_points

PIECE_SECONDS = 60.0
_EMPTY = Transcription("", "", 0.0, ())


class PieceListener(Protocol):
    def pieces_planned(self, count: int) -> None: ...

    def piece_done(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class SplitPolicy:
    """Files longer than `min_seconds` are cut into pieces of about `piece_seconds`, a multiple of `workers`."""

    workers: int
    piece_seconds: float = PIECE_SECONDS
    min_seconds: float = PIECE_SECONDS

    def piece_count(self, seconds: float) -> int:
        if self.workers < 2 or seconds <= self.min_seconds:
            return 1
        count = max(2, math.ceil(seconds / self.piece_seconds))
        return math.ceil(count / self.workers) * self.workers


@dataclass(frozen=True)
class Piece:
    clip: Clip  # the samples of this piece alone
    offset: float  # seconds from the start of the file


@dataclass
class _File:
    clip: Clip
    pieces: tuple[Piece, ...]
    transcripts: list[Transcription] = field(default_factory=list)
    error: VoicechatError | None = None  # the first piece that failed fails the file


def split_clip(clip: Clip, policy: SplitPolicy) -> tuple[Piece, ...]:
    """The clip itself when it is short enough; else its pieces, cut in pauses, in order."""
    count = policy.piece_count(clip.duration)
    if count == 1:
        return (Piece(clip, 0.0),)
    cuts = cut_points(clip.samples, clip.sample_rate, count)
    starts = [0] + [start for _, start in cuts]
    ends = [end for end, _ in cuts] + [len(clip.samples)]
    return tuple(
        Piece(Clip(clip.source, clip.samples[start:end], clip.sample_rate), start / clip.sample_rate)
        for start, end in zip(starts, ends, strict=True)
    )


def join(clip: Clip, pieces: tuple[Piece, ...], transcripts: list[Transcription]) -> Transcription:
    """One transcript for the whole file: each piece's times moved by its offset and kept inside it."""
    if len(pieces) == 1:
        return transcripts[0]
    segments: list[Segment] = []
    for piece, transcript in zip(pieces, transcripts, strict=True):
        end = piece.offset + piece.clip.duration
        segments.extend(_shifted(segment, piece.offset, end) for segment in transcript.segments)
    return Transcription(clip.source, transcripts[0].language, clip.duration, tuple(segments))


def _shifted(segment: Segment, offset: float, limit: float) -> Segment:
    def move(seconds: float) -> float:
        return min(seconds + offset, limit)

    words = None
    if segment.words is not None:
        words = tuple(replace(word, start=move(word.start), end=move(word.end)) for word in segment.words)
    return Segment(move(segment.start), move(segment.end), segment.text, words)


def transcribe_split(
    engine: SpeechToText,
    clips: Iterable[Clip],
    options: TranscribeOptions,
    policy: SplitPolicy,
    listener: PieceListener,
) -> Iterator[Outcome]:
    """`engine.transcribe_many`, with long clips fed as pieces; one Outcome per clip, in the clips' order."""
    files: deque[_File] = deque()

    def feed() -> Iterator[Clip]:
        for clip in clips:
            pieces = split_clip(clip, policy)
            if len(pieces) > 1:
                listener.pieces_planned(len(pieces))
            files.append(_File(clip, pieces))
            yield from (piece.clip for piece in pieces)

    for outcome in engine.transcribe_many(feed(), options):
        current = files[0]
        _add(current, outcome, listener)
        if len(current.transcripts) == len(current.pieces):
            files.popleft()
            yield _finish(current)


def _add(file: _File, outcome: Outcome, listener: PieceListener) -> None:
    if outcome.transcript is None:
        file.error = file.error or outcome.error or VoicechatError(f"{file.clip.source}: no transcript")
        file.transcripts.append(_EMPTY)  # keeps the count; never joined
        return
    file.transcripts.append(outcome.transcript)
    if len(file.pieces) > 1:
        listener.piece_done(outcome.clip.duration)


def _finish(file: _File) -> Outcome:
    if file.error is not None:
        return Outcome(file.clip, error=file.error)
    return Outcome(file.clip, transcript=join(file.clip, file.pieces, file.transcripts))

