"""The parts of splitting that need no Whisper: how many pieces, where the cuts go (real Piper speech and the
Silero VAD inside faster-whisper), how transcripts join back, progress and probing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import synthesize_wav
from voicechat.audio.decode import decode_audio
from voicechat.stt.base import Clip, Segment, Transcription, Word
from voicechat.transcription.cuts import LEAD_SECONDS, TAIL_SECONDS, cut_points, quietest
from voicechat.transcription.probe import duration_seconds
from voicechat.transcription.progress import BatchProgress
from voicechat.transcription.split import Piece, SplitPolicy, join, split_clip

RATE = 16_000
SENTENCES = (
    "The weather today is sunny with a light breeze from the west.",
    "Our meeting starts early in the morning on Tuesday.",
    "Remember to water the plants before you leave for the weekend.",
    "He painted the old fence a bright shade of green last summer.",
)


@pytest.mark.parametrize(
    ("workers", "seconds", "count"),
    [(2, 30.0, 1), (2, 60.0, 1), (2, 61.0, 2), (2, 240.0, 4), (2, 241.0, 6), (4, 240.0, 4), (3, 500.0, 9),
     (1, 600.0, 1)],
)
def test_piece_count(workers: int, seconds: float, count: int) -> None:
    assert SplitPolicy(workers).piece_count(seconds) == count


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Four sentences with 0.4, 1.2 and 0.7 s of silence between them (16 kHz), and those pauses' spans."""
    folder = tmp_path_factory.mktemp("cuts")
    parts: list[np.ndarray] = []
    pauses: list[tuple[float, float]] = []
    for index, (text, gap) in enumerate(zip(SENTENCES, (0.4, 1.2, 0.7, 0.0), strict=True)):
        samples = decode_audio(synthesize_wav(text, folder / f"{index}.wav"))
        loud = np.flatnonzero(np.abs(samples) > 0.01)
        parts.append(samples[loud[0] : loud[-1] + 1])  # Piper's own edge silence off: only `gap` between
        if gap:
            at = sum(len(part) for part in parts) / RATE
            pauses.append((at, at + gap))
            parts.append(np.zeros(int(gap * RATE), dtype=np.float32))
    return np.concatenate(parts), pauses


def test_cuts_fall_in_pauses_with_silence_kept_on_each_side(speech: tuple[np.ndarray, list]) -> None:
    samples, pauses = speech
    cuts = cut_points(samples, RATE, 4)
    assert len(cuts) == 3
    for end, start in cuts:
        inside = [pause for pause in pauses if pause[0] - 0.05 <= end / RATE <= start / RATE <= pause[1] + 0.05]
        assert len(inside) == 1, (end / RATE, start / RATE, pauses)
        low, high = inside[0]
        assert end / RATE >= low + min(TAIL_SECONDS, (high - low) / 2) - 0.1  # speech ending softly stays in
        assert start / RATE <= high - min(LEAD_SECONDS, (high - low) / 2) + 0.1
    assert [start for _, start in cuts] == sorted(start for _, start in cuts)


def test_the_longest_pause_near_the_target_wins(speech: tuple[np.ndarray, list]) -> None:
    samples, pauses = speech
    ((end, start),) = cut_points(samples, RATE, 2)  # the middle: the 1.2 s pause beats the 0.4 s one
    assert pauses[1][0] <= end / RATE < start / RATE <= pauses[1][1] + 0.05


def test_pieces_cover_the_speech_and_join_back_in_file_time(speech: tuple[np.ndarray, list]) -> None:
    samples, _ = speech
    clip = Clip("talk.wav", samples)
    pieces = split_clip(clip, SplitPolicy(2, piece_seconds=4.0, min_seconds=4.0))
    assert len(pieces) >= 2 and pieces[0].offset == 0.0
    ends = [piece.offset + piece.clip.duration for piece in pieces]
    dropped = [(end, nxt.offset) for end, nxt in zip(ends, pieces[1:], strict=False)]
    for low, high in dropped:
        assert high >= low and float(np.abs(samples[int(low * RATE) : int(high * RATE)]).max(initial=0)) < 0.01
    assert ends[-1] == pytest.approx(clip.duration)


def test_a_short_clip_is_its_own_only_piece() -> None:
    clip = Clip("short.wav", np.zeros(RATE * 5, dtype=np.float32))
    (piece,) = split_clip(clip, SplitPolicy(2))
    assert piece.clip is clip and piece.offset == 0.0


def test_quietest_moment_when_nobody_pauses() -> None:
    time = np.arange(RATE * 4) / RATE
    loudness = np.where(np.abs(time - 2.7) < 0.02, 0.001, 1.0)
    samples = (np.sin(2 * np.pi * 220 * time) * loudness).astype(np.float32)
    assert abs(quietest(samples, RATE, RATE * 2) / RATE - 2.7) < 0.03


def test_join_moves_times_and_keeps_them_inside_each_piece() -> None:
    whole = Clip("long.wav", np.zeros(RATE * 20, dtype=np.float32))
    first = Piece(Clip("long.wav", whole.samples[: RATE * 9]), 0.0)
    second = Piece(Clip("long.wav", whole.samples[RATE * 10 :]), 10.0)
    words = (Word(0.0, 0.4, "Right", 0.9), Word(0.5, 10.5, "after.", 0.8))
    parts = [
        Transcription("long.wav", "en", 9.0, (Segment(1.0, 8.5, "The train leaves,"),)),
        Transcription("long.wav", "en", 10.0, (Segment(0.0, 10.5, "Right after.", words),)),
    ]
    joined = join(whole, (first, second), parts)
    assert joined.duration == 20.0 and joined.text == "The train leaves, Right after."
    assert [(s.start, s.end) for s in joined.segments] == [(1.0, 8.5), (10.0, 20.0)]
    assert [(w.start, w.end, w.probability) for w in joined.segments[1].words or ()] == [
        (10.0, 10.4, 0.9), (10.5, 20.0, 0.8)]


def test_progress_counts_audio_once_whether_in_pieces_or_whole() -> None:
    progress = BatchProgress(2, enabled=False)
    progress.pieces_planned(3)
    for seconds in (20.0, 20.0, 25.0):
        progress.piece_done(seconds)
    progress.advance(66.0)  # the file: its 1 s dropped in pauses is counted when it is done
    progress.advance(4.0)  # a short file, whole
    assert progress.audio_seconds == pytest.approx(70.0)
    assert (progress.pieces_done, progress.pieces_total) == (3, 3)


def test_probe_reads_the_duration_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    soundfile.write(path, np.zeros(RATE * 3, dtype=np.float32), RATE)
    assert duration_seconds(path) == pytest.approx(3.0, abs=0.01)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all" * 100)
    assert duration_seconds(junk) is None
    assert duration_seconds(tmp_path / "missing.wav") is None
