"""`voicechat voices new`: a cloning voice from a recording: NAME.wav, NAME.txt and NAME.toml in the user's voices.

The audio comes from a file (any format PyAV decodes) or the microphone; voicechat/audio/reference.py trims and
checks it; the reference text is what the user gives, or what Whisper hears in it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicechat import paths
from voicechat.errors import UsageError, VoicechatError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from voicechat.audio.reference import Reference
    from voicechat.config.models import STTSettings
    from voicechat.config.store import VoiceEntry

REFERENCE_RATE = 24_000  # Higgs' audio tokenizer rate: the reference is stored at it
DEFAULT_PIPER_MODEL = "en_US-joe-medium"


@dataclass(frozen=True)
class NewVoice:
    name: str
    folder: Path
    text: str
    reference: Reference
    transcribed: bool  # False: the text was given with --text

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return tuple(self.folder / f"{self.name}.{ext}" for ext in ("wav", "txt", "toml"))  # type: ignore[return-value]


def target_folder(name: str, force: bool) -> Path:
    folder = paths.user_dir("voices")
    if (folder / f"{name}.toml").exists() and not force:
        raise UsageError(f"voice '{name}' already exists in {folder}: pass --force to replace it")
    return folder


def from_file(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    from voicechat.audio.decode import decode_audio

    return decode_audio(path, REFERENCE_RATE), REFERENCE_RATE


def make_voice(name: str, samples: npt.NDArray[np.float32], rate: int, source: str, text: str | None,
               stt: STTSettings, description: str, force: bool) -> NewVoice:
    """Check and write the voice; the TOML goes last, so a voice exists only once its audio and text do."""
    from voicechat.audio.reference import prepare_reference

    folder = target_folder(name, force)
    reference = prepare_reference(samples, rate, source)
    spoken = " ".join((text or "").split()) or transcribe(reference, stt, source)
    voice = NewVoice(name, folder, spoken, reference, transcribed=not text)
    _write(voice, description or f"Cloned from {source}.")
    return voice


def transcribe(reference: Reference, settings: STTSettings, source: str) -> str:
    from voicechat.audio.reference import VAD_RATE, to_rate
    from voicechat.stt.base import Clip, TranscribeOptions
    from voicechat.stt.registry import create_stt

    engine = create_stt(settings)
    clip = Clip(source, to_rate(reference.samples, reference.sample_rate, VAD_RATE))
    language = None if settings.language == "auto" else settings.language
    outcome = next(iter(engine.transcribe_many([clip], TranscribeOptions(language))))
    if outcome.error is not None:
        raise VoicechatError(f"{source}: could not transcribe the reference ({outcome.error}); "
                             "give what it says with --text")
    text = " ".join((outcome.transcript.text if outcome.transcript else "").split())
    if not text:
        raise VoicechatError(f"{source}: Whisper heard no words in it; give what it says with --text")
    return text


def _write(voice: NewVoice, description: str) -> None:
    import soundfile
    import tomli_w

    from voicechat.config.models import Voice
    from voicechat.config.store import validate
    from voicechat.fileio import atomic_write_bytes

    data = {"description": description, "piper": {"model": DEFAULT_PIPER_MODEL}, "higgs": {"clone": True}}
    validate(Voice, data, f"voice '{voice.name}'")
    wav, txt, toml = voice.files
    buffer = io.BytesIO()
    soundfile.write(buffer, voice.reference.samples, voice.reference.sample_rate, subtype="PCM_16", format="WAV")
    try:
        atomic_write_bytes(wav, buffer.getvalue())
        atomic_write_bytes(txt, (voice.text + "\n").encode("utf-8"))
        atomic_write_bytes(toml, tomli_w.dumps(data).encode("utf-8"))
    except OSError as error:
        raise VoicechatError(f"cannot write the voice into {voice.folder}: {error.strerror}; check that folder "
                             "(or set VOICECHAT_HOME)") from None


def report(voice: NewVoice) -> None:
    from voicechat.console import err

    wav, txt, toml = voice.files
    reference = voice.reference
    err().print(f"wrote voice '{voice.name}' in {voice.folder}: {wav.name} ({reference.seconds:.1f} s, level "
                f"{reference.gain_db:+.1f} dB), {txt.name}, {toml.name}", markup=False, soft_wrap=True)
    if voice.transcribed:
        err().print(f'Whisper heard: "{voice.text}" (fix {txt} if a word is wrong)', markup=False, soft_wrap=True)


def piper_note(entry: VoiceEntry, engine: str) -> str | None:
    """Piper cannot clone: a voice with a recording speaks with its Piper model there, and the user is told."""
    if engine != "piper" or entry.reference_audio is None:
        return None
    return (f"piper cannot clone a recording: voice '{entry.name}' speaks with its Piper model "
            f"{entry.voice.piper.model} (use --engine higgs for {entry.reference_audio.name})")
