"""Read any common audio file (wav, flac, mp3, ogg, m4a, ...) as 16 kHz mono float32 samples.

PyAV (through faster-whisper's `decode_audio`) does the decoding, resampling and stereo downmix.
Every way a file can fail becomes one `AudioDecodeError` line that names the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from voicechat.errors import VoicechatError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".webm", ".wma",
     ".aif", ".aiff", ".mka", ".caf"}
)


class AudioDecodeError(VoicechatError):
    """A file that is missing, empty or not audio."""


def is_audio_name(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def check_readable(path: Path) -> None:
    """Fail with the fix before any decoder runs: missing, a folder, empty, or unreadable."""
    if not path.exists():
        raise AudioDecodeError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioDecodeError(f"{path}: is a folder with no audio files in it")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: empty file (0 bytes); record or copy it again")


def decode_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """All of `path` as mono float32 in [-1, 1] at `sample_rate`; raises AudioDecodeError."""
    check_readable(path)
    samples = _decode_with_pyav(path, sample_rate)
    if samples.size == 0:
        raise AudioDecodeError(f"{path}: no audio samples in it; is it a complete recording?")
    return samples


def _decode_with_pyav(path: Path, sample_rate: int) -> npt.NDArray[np.float32]:
    import av
    from faster_whisper.audio import decode_audio as pyav_decode

    try:
        return pyav_decode(str(path), sampling_rate=sample_rate)
    except PermissionError:
        raise AudioDecodeError(f"{path}: not readable (permission denied); check its permissions") from None
    except (av.error.FFmpegError, IndexError, ValueError, OSError) as error:
        # IndexError: a container with no audio stream (an image, a video without sound).
        reason = "no audio stream" if isinstance(error, IndexError) else _short(error)
        raise AudioDecodeError(
            f"{path}: not audio that can be decoded ({reason}); give a wav, flac, mp3, ogg or m4a file"
        ) from None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    # FFmpeg messages end with the path ("...: 'x.wav'"); the caller already names it.
    return re.sub(r"^\[Errno -?\d+\] ", "", text.split(": '")[0])
