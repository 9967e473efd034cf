"""faster-whisper, loaded once per run, transcribing several clips at a time.

A tiny Whisper model's cost per short clip is one 30 s encoder pass that does not parallelise well inside
CTranslate2 on a few cores, so `transcribe_many` runs one clip per core: `num_workers` model replicas with
`cpu_threads` split between them (measured in bench/transcribe.py: faster, and less CPU, than a sequential
loop with the default threads). One clip alone gets every core. Each clip goes through faster-whisper's own
`WhisperModel.transcribe`, so the text is what plain faster-whisper gives.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from voicechat.errors import UsageError, VoicechatError
from voicechat.stt.base import Clip, Outcome, Segment, TranscribeOptions, Transcription, Word, clean_text
from voicechat.stt.models import ModelError, resolve_model

if TYPE_CHECKING:
    from voicechat.config.models import STTSettings

MAX_WORKERS = 4


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def plan_workers(expected_clips: int, cores: int) -> tuple[int, int]:
    """(model replicas, CPU threads each): one clip per core when there are several clips."""
    workers = max(1, min(expected_clips, cores, MAX_WORKERS))
    return workers, max(1, cores // workers)


class FasterWhisperSTT:
    name = "faster-whisper"

    def __init__(self, settings: STTSettings) -> None:
        self.settings = settings
        self.workers = 1
        self._model: Any = None

    def load(self, expected_clips: int = 1) -> None:
        if self._model is not None:
            return
        folder = resolve_model(self.settings.model)
        self.workers, threads = plan_workers(expected_clips, usable_cores())
        device = _device(self.settings.device)
        from faster_whisper import WhisperModel

        try:
            self._model = WhisperModel(
                str(folder),
                device=device,
                compute_type=_compute_type(self.settings.compute_type, device),
                cpu_threads=threads,
                num_workers=self.workers,
            )
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelError(f"cannot load the Whisper model in {folder} ({_first_line(error)})") from None

    def check_language(self, language: str | None) -> str | None:
        """The language to pass on: None detects it; an English-only model takes only 'en'."""
        self.load()
        supported = list(self._model.supported_languages)
        if language is None or language in supported:
            return language
        if supported == ["en"]:
            raise UsageError(f"model '{self.settings.model}' knows English only: drop --language or use "
                             "a multilingual model such as small")
        raise UsageError(f"unknown language code '{language}': use a code such as en, de, fr, or 'auto'")

    def transcribe_many(self, clips: Iterable[Clip], options: TranscribeOptions) -> Iterator[Outcome]:
        language = self.check_language(options.language)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="whisper") as pool:
            pending: deque[tuple[Clip, Future[Transcription]]] = deque()
            for clip in clips:
                pending.append((clip, pool.submit(self._transcribe, clip, language, options.word_timestamps)))
                if len(pending) >= self.workers * 2:
                    yield _collect(*pending.popleft())
            while pending:
                yield _collect(*pending.popleft())

    def _transcribe(self, clip: Clip, language: str | None, word_timestamps: bool) -> Transcription:
        segments, info = self._model.transcribe(
            clip.samples, language=language, beam_size=self.settings.beam_size, word_timestamps=word_timestamps
        )
        kept = tuple(_segment(segment, word_timestamps) for segment in segments)  # runs the model, here
        return Transcription(clip.source, str(info.language), clip.duration, kept)


def _collect(clip: Clip, future: Future[Transcription]) -> Outcome:
    try:
        return Outcome(clip, transcript=future.result())
    except VoicechatError as error:
        return Outcome(clip, error=error)
    except (RuntimeError, ValueError, MemoryError) as error:
        return Outcome(clip, error=VoicechatError(f"{clip.source}: transcription failed ({_first_line(error)})"))


def _segment(segment: Any, with_words: bool) -> Segment:
    words = None
    if with_words:
        words = tuple(
            Word(float(w.start), float(w.end), w.word.strip(), float(w.probability)) for w in segment.words or ()
        )
    return Segment(float(segment.start), float(segment.end), clean_text(segment.text), words)


def _device(setting: str) -> str:
    if setting != "auto":
        return setting
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def _compute_type(setting: str, device: str) -> str:
    if setting != "default":
        return setting
    return "float16" if device == "cuda" else "int8"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
