"""`voicechat say` and the Piper engine with real synthesis, checked by transcribing the audio back."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import run_cli, transcribe_file, word_error_rate
from voicechat.audio.sinks import WavFileSink
from voicechat.config.models import TTSSettings
from voicechat.events import AudioChunk, Sentence
from voicechat.speak import speak
from voicechat.tts.base import TextToSpeech
from voicechat.tts.piper import PiperTTS

pytestmark = pytest.mark.slow

SPOKEN = "The quick brown fox jumps over the lazy dog. Then it runs back home before dinner."


def test_say_to_wav_transcribes_back(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    result = run_cli("say", SPOKEN, "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert b"wrote" in result.stderr
    audio, rate = soundfile.read(target, dtype="int16")
    assert rate == 22050
    assert audio.ndim == 1 and len(audio) > rate * 3  # two sentences take seconds, not a blip
    assert word_error_rate(SPOKEN, transcribe_file(target)) <= 0.25
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary file left


def test_say_reads_stdin_and_streams_wav_to_stdout(tmp_path: Path) -> None:
    result = run_cli("say", "-", "-o", "-", input="Hello from standard input.")
    assert result.returncode == 0, result.stderr
    audio, rate = soundfile.read(io.BytesIO(result.stdout), dtype="int16")
    assert rate == 22050 and len(audio) > rate // 2
    path = tmp_path / "piped.wav"
    path.write_bytes(result.stdout)
    assert word_error_rate("Hello from standard input.", transcribe_file(path)) <= 0.34


def test_stdout_redirected_to_a_file_gets_an_exact_header(tmp_path: Path) -> None:
    import subprocess
    import sys

    target = tmp_path / "redirected.wav"
    with target.open("wb") as handle:
        subprocess.run([sys.executable, "-m", "voicechat", "say", "One sentence only.", "-o", "-"],
                       stdout=handle, check=True, timeout=120)
    with wave.open(str(target)) as reader:  # the wave module trusts the header's sizes
        frames = reader.getnframes()
    assert frames * 2 + 44 == target.stat().st_size


class RecordingTTS:
    """Wraps an engine and logs when each sentence's synthesis starts."""

    def __init__(self, inner: TextToSpeech, log: list[tuple[str, int]]) -> None:
        self.inner, self.log, self.name = inner, log, inner.name

    async def prepare(self, voice: str = "") -> None:
        await self.inner.prepare(voice)

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        self.log.append(("synthesis starts", sentence.index))
        async for chunk in self.inner.stream(sentence):
            yield chunk


class RecordingSink(WavFileSink):
    def __init__(self, target: Path, log: list[tuple[str, int]]) -> None:
        super().__init__(target)
        self.log = log

    async def write(self, chunk: AudioChunk) -> None:
        self.log.append(("sink receives", chunk.sentence_index))
        await super().write(chunk)


def test_first_audio_reaches_the_sink_before_the_last_sentence_is_synthesized(tmp_path: Path) -> None:
    texts = [f"This is sentence number {n}, spoken in turn." for n in range(1, 7)]
    sentences = [Sentence(text, voice="joe", index=i) for i, text in enumerate(texts)]
    log: list[tuple[str, int]] = []
    tts = RecordingTTS(PiperTTS(TTSSettings()), log)
    result = asyncio.run(speak(tts, sentences, RecordingSink(tmp_path / "s.wav", log)))
    first_audio = log.index(("sink receives", 0))
    last_start = log.index(("synthesis starts", len(texts) - 1))
    assert first_audio < last_start, log
    assert result.sentences == len(texts)
    assert result.first_audio_after is not None and result.first_audio_after < result.elapsed


def test_piper_stream_yields_pcm_tagged_with_the_sentence() -> None:
    async def collect() -> list[AudioChunk]:
        tts = PiperTTS(TTSSettings())
        sentence = Sentence("Testing one two three.", character="Lydia", voice="lydia", index=4)
        return [chunk async for chunk in tts.stream(sentence)]

    chunks = asyncio.run(collect())
    assert chunks and all(c.sample_rate == 22050 and c.sentence_index == 4 for c in chunks)
    assert all(c.character == "Lydia" for c in chunks)
    samples = np.frombuffer(b"".join(c.pcm for c in chunks), dtype=np.int16)
    assert np.abs(samples).max() > 3000  # speech, not silence


def test_voice_settings_change_the_audio(voicechat_home: Path) -> None:
    """A user voice with length_scale 0.6 says the same words in clearly fewer samples than joe (1.0)."""
    (voicechat_home / "voices").mkdir()
    (voicechat_home / "voices" / "quick.toml").write_text("[piper]\nlength_scale = 0.6\n")

    async def length(voice: str) -> int:
        tts = PiperTTS(TTSSettings())
        text = "A fairly long sentence gives the speaking rate room to show itself clearly."
        return sum([c.num_samples async for c in tts.stream(Sentence(text, voice=voice))])

    assert asyncio.run(length("quick")) < asyncio.run(length("joe")) * 0.8


class FailingTTS:
    name = "failing"

    async def prepare(self, voice: str = "") -> None:
        return None

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        yield AudioChunk(pcm=b"\x00\x01" * 100, sample_rate=16000)
        raise RuntimeError("engine broke")


def test_a_failing_engine_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "never.wav"
    with pytest.raises(RuntimeError, match="engine broke"):
        asyncio.run(speak(FailingTTS(), [Sentence("x")], WavFileSink(target)))
    assert list(tmp_path.iterdir()) == []


def test_say_speaks_whole_sentences() -> None:
    from voicechat.speak import sentences_for

    text = "The weather today is mild and clear, with a light breeze. Dr. Smith paid 3.5 dollars, e.g. for tea."
    assert [(s.text, s.index, s.voice) for s in sentences_for(text, "joe")] == [
        ("The weather today is mild and clear, with a light breeze.", 0, "joe"),
        ("Dr. Smith paid 3.5 dollars, e.g. for tea.", 1, "joe"),  # abbreviations and decimals stay whole
    ]


def test_speak_takes_sentences_as_they_arrive(tmp_path: Path) -> None:
    """A streamed reply: sentences come one by one, and the first is heard before the last exists."""
    log: list[tuple[str, int]] = []

    async def arriving() -> AsyncIterator[Sentence]:
        for index, text in enumerate(["First things first.", "Then the second.", "And a third one."]):
            log.append(("sentence arrives", index))
            yield Sentence(text, voice="joe", index=index)
            await asyncio.sleep(0.3)

    sink = RecordingSink(tmp_path / "streamed.wav", log)
    result = asyncio.run(speak(PiperTTS(TTSSettings()), arriving(), sink))
    assert result.sentences == 3
    assert log.index(("sink receives", 0)) < log.index(("sentence arrives", 2))
    assert word_error_rate("First things first. Then the second. And a third one.",
                           transcribe_file(tmp_path / "streamed.wav")) <= 0.34
