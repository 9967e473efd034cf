"""A cloning reference from raw audio: silence trimmed, level normalized, and checked to be 5-20 s of clean speech.

Speech is found with the Silero VAD that faster-whisper bundles (ONNX, no torch). "Clean" means: some speech,
not clipped, and well above the background (the level outside the speech spans, when there is enough of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicechat.errors import VoicechatError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

VAD_RATE = 16_000
MIN_SECONDS = 5.0
MAX_SECONDS = 20.0
TARGET_RMS_DBFS = -20.0
PEAK_CEILING_DBFS = -1.0
MIN_SNR_DB = 15.0
CLIPPED_FRACTION = 0.001  # of samples at full scale
MIN_BACKGROUND_SECONDS = 0.25  # less than this outside speech: no background estimate


class ReferenceAudioError(VoicechatError):
    """Audio that cannot make a good cloning reference; the message says how to record a better one."""


@dataclass(frozen=True, eq=False)
class Reference:
    samples: npt.NDArray[np.float32]  # trimmed and normalized
    sample_rate: int
    speech_seconds: float  # inside the speech spans
    gain_db: float
    snr_db: float | None  # None: too little background to measure (or digital silence around the speech)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def dbfs(rms: float) -> float:
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def to_rate(samples: npt.NDArray[np.float32], rate: int, wanted: int) -> npt.NDArray[np.float32]:
    import numpy as np
    import soxr

    if rate == wanted:
        return samples
    return np.asarray(soxr.resample(samples, rate, wanted), dtype=np.float32)


def speech_spans(samples: npt.NDArray[np.float32], rate: int) -> list[tuple[int, int]]:
    """(start, end) sample indices, at `rate`, of the stretches the VAD calls speech."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    at_vad_rate = to_rate(samples, rate, VAD_RATE)
    options = VadOptions(min_silence_duration_ms=500, speech_pad_ms=200)
    scale = rate / VAD_RATE
    return [(int(span["start"] * scale), min(len(samples), int(span["end"] * scale)))
            for span in get_speech_timestamps(at_vad_rate, options)]


def prepare_reference(samples: npt.NDArray[np.float32], rate: int, source: str) -> Reference:
    """Trim, check and normalize; raises ReferenceAudioError naming `source` and the fix."""
    import numpy as np

    samples = np.asarray(samples, dtype=np.float32)
    spans = speech_spans(samples, rate) if samples.size and np.any(samples) else []
    if not spans:
        raise ReferenceAudioError(f"{source}: no speech found in it; record {MIN_SECONDS:g}-{MAX_SECONDS:g} s "
                                  "of yourself (or the voice) talking")
    start, end = spans[0][0], spans[-1][1]
    trimmed = samples[start:end]
    seconds = len(trimmed) / rate
    if seconds < MIN_SECONDS:
        raise ReferenceAudioError(f"{source}: only {seconds:.1f} s of speech; a voice needs "
                                  f"{MIN_SECONDS:g}-{MAX_SECONDS:g} s: record a longer one")
    if seconds > MAX_SECONDS:
        raise ReferenceAudioError(f"{source}: {seconds:.1f} s of speech is too long for a reference "
                                  f"({MIN_SECONDS:g}-{MAX_SECONDS:g} s): cut it to a few sentences")
    clipped = float(np.mean(np.abs(trimmed) >= 0.999))
    if clipped > CLIPPED_FRACTION:
        raise ReferenceAudioError(f"{source}: clipped ({clipped:.1%} of samples at full scale); record it "
                                  "again further from the microphone or with the input gain lower")
    inside = np.concatenate([samples[a:b] for a, b in spans])
    speech_rms = float(np.sqrt(np.mean(inside.astype(np.float64) ** 2)))
    snr = _snr_db(samples, spans, rate, speech_rms)
    if snr is not None and snr < MIN_SNR_DB:
        raise ReferenceAudioError(f"{source}: too noisy (speech only {snr:.0f} dB above the background, "
                                  f"{MIN_SNR_DB:g} needed): record it again somewhere quieter")
    gain = _gain(speech_rms, float(np.max(np.abs(trimmed))))
    speech_seconds = sum(b - a for a, b in spans) / rate
    return Reference(np.asarray(trimmed * gain, dtype=np.float32), rate, speech_seconds, dbfs(gain), snr)


def _snr_db(samples: npt.NDArray[np.float32], spans: list[tuple[int, int]], rate: int,
            speech_rms: float) -> float | None:
    import numpy as np

    mask = np.ones(len(samples), dtype=bool)
    for a, b in spans:
        mask[a:b] = False
    background = samples[mask]
    if len(background) < MIN_BACKGROUND_SECONDS * rate:
        return None
    noise_rms = float(np.sqrt(np.mean(background.astype(np.float64) ** 2)))
    return None if noise_rms < 1e-5 else dbfs(speech_rms) - dbfs(noise_rms)  # 1e-5: -100 dBFS, digital quiet


def _gain(speech_rms: float, peak: float) -> float:
    """To the target speech level, unless that would push the loudest sample past the ceiling."""
    wanted = 10 ** (TARGET_RMS_DBFS / 20) / speech_rms
    ceiling = 10 ** (PEAK_CEILING_DBFS / 20) / peak
    return min(wanted, ceiling)
