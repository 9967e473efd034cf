"""voicechat.audio.decode: every common format, any rate, stereo downmix, and each kind of bad file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicechat.audio.decode import SAMPLE_RATE, AudioDecodeError, decode_audio

# (suffix, PyAV container format, codec, codec sample rate)
FORMATS = [
    ("flac", "flac", "flac", None),
    ("mp3", "mp3", "libmp3lame", None),
    ("ogg", "ogg", "libopus", 48_000),
    ("m4a", "ipod", "aac", None),
]


def encode_audio(samples: np.ndarray, rate: int, target: Path, container: str, codec: str,
                 codec_rate: int | None = None) -> Path:
    """Write float samples, shape (n,) or (n, channels), with a real encoder (PyAV / FFmpeg)."""
    import av

    frames = samples if samples.ndim == 2 else samples[:, None]
    layout = "stereo" if frames.shape[1] == 2 else "mono"
    out_rate = codec_rate or rate
    with av.open(str(target), "w", format=container) as handle:
        stream = handle.add_stream(codec, rate=out_rate, layout=layout)
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=out_rate)
        pcm = np.ascontiguousarray((np.clip(frames, -1, 1) * 32767).astype(np.int16).reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout=layout)
        frame.sample_rate = rate
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            handle.mux(stream.encode(piece))
        handle.mux(stream.encode(None))
    return target


def stereo_48k(mono: np.ndarray, rate: int, right_gain: float = 0.0) -> np.ndarray:
    """Speech in the left channel at 48 kHz, the right channel `right_gain` times it."""
    n_out = round(len(mono) * 48_000 / rate)
    resampled = np.interp(np.linspace(0, len(mono) - 1, n_out), np.arange(len(mono)), mono).astype(np.float32)
    return np.stack([resampled, resampled * right_gain], axis=1)


@pytest.fixture
def speech(make_speech: Callable[[str, str], Path]) -> tuple[Path, np.ndarray, int]:
    path = make_speech("The quick brown fox jumps over the lazy dog.", "fox.wav")
    samples, rate = soundfile.read(path, dtype="float32")
    return path, samples, rate


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def test_wav_is_resampled_to_16k_mono(speech: tuple[Path, np.ndarray, int]) -> None:
    path, samples, rate = speech
    decoded = decode_audio(path)
    assert rate == 22_050
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert len(decoded) == pytest.approx(len(samples) * SAMPLE_RATE / rate, rel=0.01)
    assert _rms(decoded) == pytest.approx(_rms(samples), rel=0.05)


@pytest.mark.parametrize(("suffix", "container", "codec", "codec_rate"), FORMATS)
def test_common_formats_decode(speech: tuple[Path, np.ndarray, int], tmp_path: Path, suffix: str,
                               container: str, codec: str, codec_rate: int | None) -> None:
    _, samples, rate = speech
    target = encode_audio(samples, rate, tmp_path / f"fox.{suffix}", container, codec, codec_rate)
    decoded = decode_audio(target)
    duration = len(samples) / rate
    # lossy codecs add a little priming / padding, never seconds
    assert len(decoded) / SAMPLE_RATE == pytest.approx(duration, abs=0.15)
    assert _rms(decoded) == pytest.approx(_rms(samples), rel=0.15)


def test_stereo_48k_is_downmixed(speech: tuple[Path, np.ndarray, int], tmp_path: Path) -> None:
    _, samples, rate = speech
    stereo = stereo_48k(samples, rate, right_gain=0.0)
    path = tmp_path / "stereo48.wav"
    soundfile.write(path, stereo, 48_000)
    decoded = decode_audio(path)
    assert len(decoded) == pytest.approx(len(stereo) / 3, rel=0.01)
    # one silent channel: the mono mix is the mean of the two, half as loud as the speech channel
    assert _rms(decoded) == pytest.approx(_rms(samples) / 2, rel=0.1)


def _assert_one_line(error: pytest.ExceptionInfo[AudioDecodeError], path: Path, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for word in words:
        assert word in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(path)
    _assert_one_line(error, path, "no such file")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(path)
    _assert_one_line(error, path, "empty")


@pytest.mark.parametrize("suffix", ["wav", "mp3", "ogg", "m4a", "flac"])
def test_random_bytes_with_an_audio_suffix(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"noise.{suffix}"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(path)
    _assert_one_line(error, path)


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not a recording\n" * 20)
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(path)
    _assert_one_line(error, path, "not audio")


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(tmp_path)
    _assert_one_line(error, tmp_path, "folder")
