"""The batch: decode each file (one ahead of the model), transcribe, write; a bad file never stops the rest."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from voicechat.audio.decode import decode_audio
from voicechat.errors import UsageError, VoicechatError
from voicechat.fileio import atomic_write_bytes
from voicechat.stt.base import Clip, SpeechToText, TranscribeOptions, Transcription
from voicechat.transcription.formats import Format, render
from voicechat.transcription.inputs import Job
from voicechat.transcription.progress import BatchProgress
from voicechat.transcription.split import SplitPolicy, transcribe_split

DECODE_AHEAD = 4
Report = Callable[[str], None]


@dataclass(frozen=True)
class BatchResult:
    written: int
    failed: int
    audio_seconds: float
    elapsed: float


def run_batch(
    jobs: tuple[Job, ...],
    engine: SpeechToText,
    options: TranscribeOptions,
    fmt: Format,
    report: Report,
    progress: BatchProgress,
    split: SplitPolicy | None = None,
) -> BatchResult:
    """Transcribe every job; `report` gets one line per failed file. The model is loaded by the caller.

    With a `split` policy, long files go to the engine in pieces (transcription/split.py); None: one pass each.
    """
    by_clip: dict[Clip, Job] = {}
    done: set[Job] = set()
    written = 0

    def failed(job: Job, message: str) -> None:
        done.add(job)
        report(message)
        progress.advance(0.0)

    clips = _decoded(jobs, by_clip, failed)
    try:
        if split is None:
            outcomes = engine.transcribe_many(clips, options)
        else:
            outcomes = transcribe_split(engine, clips, options, split, progress)
        for outcome in outcomes:
            job = by_clip.pop(outcome.clip)
            if outcome.transcript is None:
                failed(job, str(outcome.error or f"{job.source}: no transcript"))
                continue
            if _write(job, outcome.transcript, fmt, failed):
                written += 1
                done.add(job)
                progress.advance(outcome.clip.duration)
    except UsageError:
        raise
    except VoicechatError as error:  # the engine cannot go on: every file not done yet fails with it
        report(str(error))
        for job in jobs:
            if job not in done:
                failed(job, f"{job.source}: not transcribed (see above)")
    finally:
        clips.close()
    return BatchResult(written, len(jobs) - written, progress.audio_seconds, _elapsed(progress))


def _decoded(
    jobs: tuple[Job, ...], by_clip: dict[Clip, Job], failed: Callable[[Job, str], None]
) -> Generator[Clip, None, None]:
    """Clips in job order, decoded on a helper thread a few files ahead; bad files go to `failed`."""
    with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
        ahead: deque[tuple[Job, Future[Clip]]] = deque()
        for job in jobs:
            ahead.append((job, pool.submit(_decode, job)))
            if len(ahead) > DECODE_AHEAD:
                yield from _take(*ahead.popleft(), by_clip, failed)
        while ahead:
            yield from _take(*ahead.popleft(), by_clip, failed)


def _decode(job: Job) -> Clip:
    return Clip(str(job.source), decode_audio(job.source))


def _take(
    job: Job, future: Future[Clip], by_clip: dict[Clip, Job], failed: Callable[[Job, str], None]
) -> Iterator[Clip]:
    try:
        clip = future.result()
    except VoicechatError as error:
        failed(job, str(error))
        return
    by_clip[clip] = job
    yield clip


def _write(job: Job, transcript: Transcription, fmt: Format, failed: Callable[[Job, str], None]) -> bool:
    text = render(transcript, fmt, compact=job.target is None)
    try:
        if job.target is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            atomic_write_bytes(job.target, text.encode("utf-8"))
    except OSError as error:
        failed(job, f"{job.source}: cannot write {job.target or 'stdout'} ({error.strerror or error})")
        return False
    return True


def _elapsed(progress: BatchProgress) -> float:
    import time

    return time.perf_counter() - progress.started
