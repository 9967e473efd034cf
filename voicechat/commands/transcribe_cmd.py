"""`voicechat transcribe`: audio files to txt / srt / vtt / json, for people and for scripts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from voicechat.errors import UsageError, VoicechatError

if TYPE_CHECKING:
    from voicechat.config.models import STTSettings
    from voicechat.stt.base import SpeechToText
    from voicechat.transcription.formats import Format
    from voicechat.transcription.inputs import Job, Plan
    from voicechat.transcription.split import SplitPolicy

PIECE_SECONDS = 60.0  # voicechat.transcription.split.PIECE_SECONDS, without importing it for --help


def transcribe(
    paths: list[Path] = typer.Argument(..., help="Audio files, or folders whose audio files are all taken."),
    fmt: str = typer.Option("txt", "--format", "-f", help="Output format: txt, srt, vtt or json."),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Folder for the outputs (X.wav gives DIR/X.FORMAT); '-' writes to stdout. "
        "Default: beside each input."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="'bundled' (tiny.en), a CTranslate2 model folder, or a size name such as "
        "small.en (downloaded once). For --engine openai: the server's model name."
    ),
    language: str | None = typer.Option(None, "--language", "-l", help="Spoken language code, or 'auto'."),
    word_timestamps: bool = typer.Option(False, "--word-timestamps", help="Add word timings (json)."),
    engine: str | None = typer.Option(None, "--engine", "-e", help="STT engine: faster-whisper or openai."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible API URL (--engine openai)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that already exist."),
    no_split: bool = typer.Option(
        False, "--no-split", help="Transcribe each file in one pass. By default a long file is cut at pauses "
        "into pieces that run on every core (faster-whisper engine)."
    ),
    piece_seconds: float = typer.Option(
        PIECE_SECONDS, "--piece-seconds", min=5.0, help="About how long the pieces of a long file are; files "
        "up to this long stay whole."
    ),
    profile: str = typer.Option(
        "default", "--profile", "-p", envvar="VOICECHAT_PROFILE", help="Profile from `voicechat profiles list`."
    ),
) -> None:
    """Transcribe audio files (wav, flac, mp3, ogg, m4a, ...). Exit 0: all done; 1: some failed; 2: bad usage."""
    from voicechat.console import err, fail
    from voicechat.stt.base import TranscribeOptions
    from voicechat.stt.registry import create_stt
    from voicechat.transcription.progress import BatchProgress
    from voicechat.transcription.runner import run_batch

    chosen = _format(fmt)
    settings = _settings(profile, engine, model, language, base_url)
    plan = _plan(paths, chosen, output, overwrite)
    for line in plan.failures:
        fail(line)
    for line in plan.skipped:
        err().print(f"skipped: {line}", markup=False, soft_wrap=True)
    options = TranscribeOptions(None if settings.language == "auto" else settings.language, word_timestamps)
    failed = len(plan.failures)
    if plan.jobs:
        from voicechat.transcription.memory import retain_freed_memory

        retain_freed_memory()
        stt = create_stt(settings)
        split = None if no_split else _split_policy(stt, piece_seconds)
        stt.load(_expected_clips(plan.jobs, split))
        with BatchProgress(len(plan.jobs), enabled=err().is_terminal) as progress:
            failed += run_batch(plan.jobs, stt, options, chosen, fail, progress, split).failed
    if failed:
        total = len(plan.jobs) + len(plan.failures)
        rest = "; the others were transcribed" if failed < total else ""
        err().print(f"{failed} of {total} inputs failed{rest}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


def _split_policy(stt: SpeechToText, piece_seconds: float) -> SplitPolicy | None:
    """Pieces pay where the engine runs one local replica per core: faster-whisper on two cores or more."""
    from voicechat.stt.faster_whisper import FasterWhisperSTT, plan_workers, usable_cores
    from voicechat.transcription.split import SplitPolicy

    if not isinstance(stt, FasterWhisperSTT):
        return None
    workers, _ = plan_workers(usable_cores(), usable_cores())
    return SplitPolicy(workers, piece_seconds, piece_seconds) if workers > 1 else None


def _expected_clips(jobs: tuple[Job, ...], split: SplitPolicy | None) -> int:
    """How many clips the engine will see, pieces counted: it loads one replica per clip, up to the cores."""
    if split is None or len(jobs) >= split.workers:
        return len(jobs)
    from voicechat.transcription.probe import duration_seconds

    return sum(split.piece_count(duration_seconds(job.source) or 0.0) for job in jobs)


def _format(fmt: str) -> Format:
    from voicechat.transcription.formats import FORMATS

    for known in FORMATS:
        if fmt.lower() == known:
            return known
    raise UsageError(f"unknown --format '{fmt}': choose one of {', '.join(FORMATS)}")


def _settings(
    profile: str, engine: str | None, model: str | None, language: str | None, base_url: str | None
) -> STTSettings:
    from voicechat.config.store import load_profile
    from voicechat.stt.registry import STT_ENGINES

    if engine is not None:
        STT_ENGINES.check(engine)
    flags = {"stt.engine": engine, "stt.model": model, "stt.language": language, "stt.base_url": base_url}
    settings = load_profile(profile, {key: value for key, value in flags.items() if value}).stt
    STT_ENGINES.check(settings.engine)
    if base_url and settings.engine != "openai":
        raise UsageError("--base-url is for the openai engine: add --engine openai")
    return settings


def _plan(paths: list[Path], fmt: Format, output: str | None, overwrite: bool) -> Plan:
    from voicechat.transcription.inputs import plan

    to_stdout = output == "-"
    out_dir = _out_dir(output) if output and not to_stdout else None
    made = plan(paths, fmt, out_dir, to_stdout, overwrite)
    if to_stdout and fmt in ("srt", "vtt") and len(made.jobs) > 1:
        raise UsageError(f"-o - writes one {fmt} file: give one input, or use -o DIR for several")
    return made


def _out_dir(output: str) -> Path:
    import os

    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: is a file; give a folder (created if missing) or '-' for stdout")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise VoicechatError(f"cannot create output folder {folder} ({error.strerror}); choose another -o") from None
    if not os.access(folder, os.W_OK):
        raise VoicechatError(f"output folder {folder} is not writable; choose another -o or fix its permissions")
    return folder
