"""The live loop's small parts: frames, levels, playback bookkeeping for barge-in, the view's state."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from voicechat.errors import VoicechatError
from voicechat.events import (
    AudioChunk,
    Heard,
    HeardKind,
    Sentence,
    TextDelta,
    TurnFinished,
    TurnMetrics,
    TurnStarted,
)
from voicechat.live.playback import Playback
from voicechat.live.sources import RealTimePacer, level_dbfs, read_speech_file, split_frames
from voicechat.live.view import ViewState, latency_line
from voicechat.stt.models import resolve_model


class MemorySink:
    def __init__(self) -> None:
        self.pcm = b""
        self.interrupted = 0

    async def write(self, chunk: AudioChunk) -> None:
        self.pcm += chunk.pcm

    async def interrupt(self) -> None:
        self.interrupted += 1

    async def close(self) -> None:
        return None

    async def abort(self) -> None:
        return None


def tone(seconds: float, rate: int = 16000, amplitude: float = 0.5) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * amplitude * 32767).astype(np.int16).tobytes()


def test_level_of_silence_and_of_a_loud_tone() -> None:
    assert level_dbfs(bytes(1024)) == -96.0
    assert -10 < level_dbfs(tone(0.1)) < -6  # a sine at half scale: about -9 dBFS


def test_split_frames_pads_the_last_frame() -> None:
    frames = split_frames(bytes(2 * 1000), samples=512)
    assert [len(f) for f in frames] == [1024, 1024]


def test_pacer_keeps_real_time() -> None:
    async def run() -> float:
        pacer = RealTimePacer()
        start = time.monotonic()
        for _ in range(10):
            await pacer.wait(0.02)
        return time.monotonic() - start

    assert asyncio.run(run()) >= 0.19


def test_read_speech_file_resamples_and_downmixes(tmp_path: Path) -> None:
    import soundfile

    stereo = np.stack([np.zeros(48000), np.full(48000, 0.25)], axis=1)
    soundfile.write(tmp_path / "s.wav", stereo, 48000)
    pcm = read_speech_file(tmp_path / "s.wav")
    samples = np.frombuffer(pcm, dtype=np.int16)
    assert abs(len(samples) - 16000) <= 2
    assert abs(int(np.median(samples)) - int(0.125 * 32767)) < 200  # the two channels averaged


@pytest.mark.parametrize("content", [b"", b"this is not audio at all"])
def test_read_speech_file_rejects_bad_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(VoicechatError, match=r"bad\.wav"):
        read_speech_file(path)
    with pytest.raises(VoicechatError, match="no such file"):
        read_speech_file(tmp_path / "missing.wav")


def test_model_dir_errors_name_the_fix(tmp_path: Path) -> None:
    assert (resolve_model("bundled") / "model.bin").is_file()
    with pytest.raises(VoicechatError, match=r"not a CTranslate2 Whisper model folder \(no model\.bin"):
        resolve_model(str(tmp_path))
    with pytest.raises(VoicechatError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(VoicechatError, match="unknown Whisper model 'enormous'"):
        resolve_model("enormous")


def _chunk(seconds: float, index: int) -> AudioChunk:
    return AudioChunk(pcm=bytes(2 * int(seconds * 16000)), sample_rate=16000, sentence_index=index)


def test_spoken_keeps_whole_sentences_and_the_heard_share_of_a_cut_one() -> None:
    first = Sentence("One two three four.", "Lydia", "lydia", 0)
    second = Sentence("five six seven eight nine ten", "Lydia", "lydia", 1)
    playback = Playback(MemorySink())

    async def run() -> None:
        playback.begin_turn()
        playback.begin_sentence(first)
        await playback.play(_chunk(1.0, 0))
        playback.end_sentence()
        playback.begin_sentence(second)
        await playback.play(_chunk(1.0, 1))
        playback.progress[-1].synthesized = 2.0  # the TTS had made twice what reached the ears

    asyncio.run(run())
    heard = playback.spoken()
    assert heard[0] == first
    assert heard[1].text == "five six seven…"
    assert len(heard) == 2


def test_spoken_is_empty_before_any_audio_played() -> None:
    playback = Playback(MemorySink())
    playback.begin_turn()
    playback.begin_sentence(Sentence("Never heard.", index=0))
    assert playback.spoken() == []


def test_paced_playback_takes_real_time() -> None:
    playback = Playback(MemorySink(), pace=True)

    async def run() -> float:
        playback.begin_turn()
        playback.begin_sentence(Sentence("x"))
        start = time.monotonic()
        await playback.play(_chunk(0.3, 0))
        return time.monotonic() - start

    assert asyncio.run(run()) >= 0.28


def test_view_state_follows_a_turn() -> None:
    state = ViewState(user_name="Ada")
    state.handle(Heard("hello th", HeardKind.UPDATE))
    assert state.partial == "hello th" and state.status == "hearing you"
    state.handle(Heard("Hello there.", HeardKind.FINAL))
    state.handle(TurnStarted(0, "Hello there."))
    assert state.status == "thinking" and state.partial == ""
    state.handle(TextDelta("Hi ", "Lydia"))
    state.handle(TextDelta("Ada!", "Lydia"))
    state.handle(TurnFinished(0, TurnMetrics(0.3, 0.5, 0.6, 0.8)))
    assert state.lines == [("Ada", "Hello there."), ("Lydia", "Hi Ada!")]
    assert state.latency == "end of speech -> transcript 300 ms -> first token 500 ms -> first sentence 600 ms -> " \
        "first audio 800 ms"


def test_latency_line_skips_missing_steps() -> None:
    assert latency_line(TurnMetrics(0.25, None, None, None)) == "end of speech -> transcript 250 ms"
    assert latency_line(TurnMetrics()) == "no reply"


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_microphone_blocks_are_resampled_to_16k_keeping_the_pitch(rate: int) -> None:
    from voicechat.live.sources import StreamResampler

    resample = StreamResampler(rate)
    t = np.arange(rate) / rate  # one second of a 440 Hz tone, in 30 blocks as a device would deliver it
    tone_pcm = (np.sin(2 * np.pi * 440 * t) * 16000).astype(np.int16).tobytes()
    block = 2 * (rate // 30)
    out = b"".join(resample(tone_pcm[i : i + block]) for i in range(0, len(tone_pcm), block))
    samples = np.frombuffer(out, dtype=np.int16).astype(np.float32)
    assert abs(len(samples) - 16000) < 400  # a little may stay in the filter
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * 16000 / len(samples)
    assert abs(peak_hz - 440) < 5
