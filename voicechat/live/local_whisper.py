"""One faster-whisper model in this process for all of RealtimeSTT's transcriptions, live and final.

RealtimeSTT's default runs the model in a worker process: a second interpreter with its own copy of torch
and of the model (hundreds of MB), whose early transcription of a pause (the likely final transcript) never
leaves that process. Handed to RealtimeSTT as its `transcription_executor` and
`realtime_transcription_executor`, it serves both in this process: final transcriptions on one copy, live
text on a second copy whose threads run at a lower priority, and live text gives way (is skipped) while a
final one waits or runs, since its text is stale by then.

Whisper's encoder reads a fixed 30 s window, however short the audio: padding that costs most of a short
question's transcription on a CPU. Both copies here read a shorter window (20 s by default, and 5 s more
than the audio where that is longer), which CTranslate2 takes as it is: 1.8x faster on spoken questions
with the same words (docs/benchmarks.md). Windows the audio nearly fills make Whisper repeat itself ("What
time is it? What time is it?") or drop a repeated sentence.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicechat.live.sources import STT_RATE

LIVE_NICENESS = 10  # live text runs at a tenth of the share of the final transcription's threads
FULL_WINDOW_SECONDS = 30.0  # Whisper's own window: what faster-whisper pads every transcription to
DEFAULT_WINDOW_SECONDS = 20.0  # the profile's stt.live_window
FRAMES_PER_SECOND = 100  # Whisper's log-mel frames: one per 10 ms
WINDOW_MARGIN_SECONDS = 5.0  # quiet the encoder sees after the audio at least (1 s lost repeated sentences)


@dataclass(frozen=True)
class Language:
    language: str | None = None
    language_probability: float = 0.0


@dataclass(frozen=True)
class Result:
    """What RealtimeSTT reads of a transcription: its text and `info.language(_probability)`."""

    text: str
    info: Language = field(default_factory=Language)
    metadata: dict[str, Any] = field(default_factory=dict)


class LiveTextSkipped(RuntimeError):
    """A final transcription has the model: RealtimeSTT logs this and skips one live update."""


class LocalWhisper:
    def __init__(self, model_dir: Path, device: str, compute_type: str, cpu_threads: int,
                 beam_size: int = 1, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> None:
        model_class = windowed_whisper_class()
        self._model: Any = model_class(str(model_dir), device=device, compute_type=compute_type,
                                       cpu_threads=cpu_threads)
        # live text on a copy of its own, so a final transcription never waits for a live one in flight
        self._live_model: Any = _in_nice_thread(lambda: model_class(
            str(model_dir), device=device, compute_type=compute_type, cpu_threads=1))
        self.beam_size = beam_size
        self.window_seconds = window_seconds
        self._model_lock = threading.Lock()
        self._live_lock = threading.Lock()
        self._finals_lock = threading.Lock()
        self._finals_wanting = 0  # final transcriptions waiting for or holding the model
        self._closed = False
        warm_up = bytes_to_audio(bytes(32000))  # a model's first call pays for setting up: not the first turn's
        self.final(warm_up)
        self.live(warm_up)

    @property
    def finals_pending(self) -> bool:
        return self._finals_wanting > 0

    def final(self, audio: Any, language: str | None = None, use_prompt: bool = True, **_: Any) -> Result:
        """A final (or early final) transcription: waits for the model, and live text makes way for it."""
        with self._finals_lock:
            self._finals_wanting += 1
        try:
            with self._model_lock:
                return self._transcribe(self._model, audio, language, self.beam_size)
        finally:
            with self._finals_lock:
                self._finals_wanting -= 1

    def live(self, audio: Any, language: str | None = None, use_prompt: bool = True, **_: Any) -> Result:
        """Live text while the user speaks: skipped rather than delaying a final transcription."""
        if self.finals_pending or not self._live_lock.acquire(blocking=False):
            raise LiveTextSkipped("a final transcription is waiting or the live copy is busy")
        try:
            return self._transcribe(self._live_model, audio, language, 1)
        finally:
            self._live_lock.release()

    def close(self, timeout: float = 10.0) -> None:
        """No more calls; waits (up to `timeout`) for the one in flight, so the process never exits while
        CTranslate2's threads still run."""
        self._closed = True
        for lock in (self._model_lock, self._live_lock):
            if lock.acquire(timeout=timeout):
                lock.release()

    def _transcribe(self, model: Any, audio: Any, language: str | None, beam_size: int) -> Result:
        if self._closed:
            raise LiveTextSkipped("the recognizer is shutting down")
        model.window_frames = encoder_window_frames(len(audio), self.window_seconds)  # under the model's lock
        segments, info = model.transcribe(audio, language=language or None, beam_size=beam_size,
                                          condition_on_previous_text=False, without_timestamps=True)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not any(char.isalnum() for char in text):
            text = ""  # a lone "." is what a short window sometimes makes of silence: nothing was said
        return Result(text, Language(getattr(info, "language", None), getattr(info, "language_probability", 0.0)))


def encoder_window_frames(samples: int, floor_seconds: float) -> int:
    """How many log-mel frames the encoder reads for `samples` of 16 kHz audio: at least the floor, the
    audio and a margin of quiet where it is longer, never more than Whisper's own window."""
    seconds = min(FULL_WINDOW_SECONDS, max(floor_seconds, samples / STT_RATE + WINDOW_MARGIN_SECONDS))
    return round(seconds * FRAMES_PER_SECOND)


def windowed_whisper_class() -> type:
    """faster-whisper's model, its encoder reading `window_frames` of the 30 s it is handed (faster-whisper
    pads each piece of audio to 30 s before it encodes it; the rest of its decoding is unchanged)."""
    import numpy as np
    from faster_whisper import WhisperModel

    class WindowedWhisper(WhisperModel):
        window_frames = round(FULL_WINDOW_SECONDS * FRAMES_PER_SECOND)

        def encode(self, features: Any) -> Any:
            if features.shape[-1] > self.window_frames:
                features = np.ascontiguousarray(features[..., : self.window_frames])
            return super().encode(features)

    return WindowedWhisper


def _in_nice_thread(make: Callable[[], Any]) -> Any:
    """`make()` in a thread of lower priority: the threads CTranslate2 starts for a model inherit it, so the
    model's work yields the cores to the final transcription (and to the LLM and the speech) when they want
    them, instead of sharing them equally."""
    made: list[Any] = []

    def run() -> None:
        with contextlib.suppress(OSError, AttributeError):  # not Linux: the same priority, still correct
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LIVE_NICENESS)
        made.append(make())

    thread = threading.Thread(target=run, name="voicechat-live-model")
    thread.start()
    thread.join()
    if not made:
        raise RuntimeError("the live transcription model did not load")
    return made[0]


def bytes_to_audio(pcm: bytes) -> Any:
    """16-bit PCM as the float32 samples in [-1, 1] that faster-whisper takes."""
    import numpy as np

    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
