"""`voicechat say`: one-shot text to speech, to the speakers, a WAV file, or a WAV stream on stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from voicechat.errors import UsageError

if TYPE_CHECKING:
    from voicechat.audio.sinks import AudioSink
    from voicechat.config.models import TTSSettings


def say(
    text: str = typer.Argument(..., help="What to say. '-' reads the text from stdin."),
    voice: str | None = typer.Option(None, "--voice", "-v", help="Voice name from `voicechat voices list`."),
    engine: str | None = typer.Option(None, "--engine", "-e", help="TTS engine (default: the profile's)."),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Write a WAV file instead of playing; '-' writes WAV to stdout."
    ),
    profile: str = typer.Option(
        "default", "--profile", "-p", envvar="VOICECHAT_PROFILE", help="Profile from `voicechat profiles list`."
    ),
    output_device: str | None = typer.Option(
        None, "--output-device", help="Output device index or name part (see `voicechat devices`)."
    ),
) -> None:
    """Speak TEXT with the profile's voice: sentence by sentence, the first one playing while the rest are made."""
    import asyncio

    from voicechat.console import err

    spoken = _read_text(text)
    sink_factory, target_name = _choose_sink(output, output_device)
    settings = _tts_settings(profile, engine, voice)

    from voicechat.config.store import load_voice
    from voicechat.speak import sentences_for, speak
    from voicechat.tts.registry import create_tts
    from voicechat.voices_new import piper_note

    note = piper_note(load_voice(settings.voice), settings.engine)  # unknown voice: fail before any model loads
    if note:
        err().print(f"note: {note}", markup=False, soft_wrap=True)
    tts = create_tts(settings)
    result = asyncio.run(speak(tts, sentences_for(spoken, settings.voice), sink_factory()))
    if target_name:
        err().print(f"wrote {target_name} ({result.audio_seconds:.1f} s of audio)")


def _read_text(text: str) -> str:
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise UsageError("nothing to say: give some text, or pipe it in with `voicechat say -`")
    return text.strip()


def _tts_settings(profile: str, engine: str | None, voice: str | None) -> TTSSettings:
    from voicechat.config.store import load_profile
    from voicechat.tts.registry import TTS_ENGINES

    if engine is not None:
        TTS_ENGINES.check(engine)
    overrides = {key: value for key, value in (("tts.engine", engine), ("tts.voice", voice)) if value}
    return load_profile(profile, overrides).tts


def _choose_sink(output: str | None, output_device: str | None) -> tuple[Callable[[], AudioSink], str]:
    """A factory for the sink (made after the checks, so a bad voice leaves no file) and what to report."""
    from voicechat.audio import sinks
    from voicechat.fileio import check_writable_target

    if output == "-":
        if output_device:
            raise UsageError("--output-device plays on speakers; drop it when writing to stdout with -o -")
        return (lambda: sinks.WavStreamSink(sys.stdout.buffer)), ""
    if output:
        target = Path(output)
        check_writable_target(target)
        return (lambda: sinks.WavFileSink(target)), str(target)
    sinks.SpeakerSink(output_device)  # fails now, with the fix, when there is nothing to play on
    return (lambda: sinks.SpeakerSink(output_device)), ""
