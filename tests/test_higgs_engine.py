"""HiggsTTS on the real boson-multimodal engine, with a tiny random-weight model built in this session."""

from __future__ import annotations

import asyncio
import shutil
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from tests.conftest import run_cli

pytest.importorskip("boson_multimodal", reason="Higgs is optional: bash scripts/install-higgs.sh .venv/bin/python")

from tests.higgs_tiny import TinyHiggs, build, hub_cache
from voicechat.config.store import load_profile
from voicechat.events import AudioChunk, Sentence
from voicechat.tts.higgs.engine import HiggsTTS
from voicechat.tts.higgs.frames import WindowedDecoder, WindowPlan, to_pcm16
from voicechat.tts.higgs.references import ReferenceCache

pytestmark = pytest.mark.slow

SAMPLES_PER_FRAME = 960  # 24 kHz / 25 frames a second
CODEBOOKS = 8
TEXT = "Hello there, this is a tiny model."


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyHiggs:
    return build(tmp_path_factory.mktemp("tiny_higgs"))


def make_tts(tiny: TinyHiggs, **settings: object) -> HiggsTTS:
    merged = {
        **tiny.profile_settings(),
        "tts.engine": "higgs",
        "tts.higgs.seed": 7,
        "tts.higgs.temperature": 1.0,
        "tts.higgs.max_new_tokens": 60,
        **{f"tts.higgs.{key}": value for key, value in settings.items()},
    }
    tts = HiggsTTS(load_profile("default", merged).tts)
    with hub_cache(tiny):  # the first load in this process fetches the tiny HuBERT from the private cache
        tts.loaded()
    return tts


def collect(tts: HiggsTTS, sentence: Sentence) -> list[AudioChunk]:
    async def run() -> list[AudioChunk]:
        return [chunk async for chunk in tts.stream(sentence)]

    return asyncio.run(run())


def samples(chunks: list[AudioChunk]) -> np.ndarray:
    return np.frombuffer(b"".join(c.pcm for c in chunks), dtype="<i2").astype(np.int32)


def as_int16(audio: np.ndarray) -> np.ndarray:
    return np.frombuffer(to_pcm16(audio), dtype="<i2").astype(np.int32)


def test_higgs_generate_returns_24khz_audio(tiny: TinyHiggs) -> None:
    result = make_tts(tiny, max_new_tokens=40).generate(TEXT)
    assert result.sample_rate == 24000
    assert result.audio.ndim == 1
    columns = result.codes.shape[1]
    assert result.codes.shape[0] == CODEBOOKS
    assert columns == 40  # the tiny model never ends speech by itself
    # columns -> frames: minus the delay pattern's K-1 columns, the BOS frame and the EOS frame
    assert len(result.audio) == (columns - CODEBOOKS - 1) * SAMPLES_PER_FRAME
    assert np.abs(result.audio).max() > 0.0


def test_higgs_streamed_chunks_concatenate_to_one_shot(tiny: TinyHiggs) -> None:
    tts = make_tts(tiny, max_new_tokens=80)
    one_shot = tts.generate(TEXT)
    chunks = collect(tts, Sentence(TEXT, character="Lydia", index=3))

    streamed, expected = samples(chunks), as_int16(one_shot.audio)
    assert len(streamed) == len(expected)
    # The default windows (12 frames of left context, 10 of lookahead) were measured exact to float rounding
    # (2e-6 of peak) against the one-shot decode, so the only difference left is int16 rounding of nearly
    # equal floats: at most one step, two allowed. Without context the error is hundreds of steps (below).
    assert np.abs(streamed - expected).max() <= 2
    assert len(chunks) >= 3
    assert chunks[0].num_samples == 8 * SAMPLES_PER_FRAME  # stream_first_frames
    assert chunks[1].num_samples == 25 * SAMPLES_PER_FRAME  # stream_chunk_frames
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert {(c.sample_rate, c.sentence_index, c.character) for c in chunks} == {(24000, 3, "Lydia")}


def test_higgs_window_context_is_what_makes_streaming_exact(tiny: TinyHiggs) -> None:
    higgs = make_tts(tiny).loaded()
    codes = np.random.default_rng(0).integers(0, 1024, size=(CODEBOOKS, 60))
    whole = as_int16(higgs.decode(codes))

    def windowed(left: int, lookahead: int) -> np.ndarray:
        decoder = WindowedDecoder(higgs.decode, SAMPLES_PER_FRAME, WindowPlan(8, 25, left, lookahead))
        return as_int16(np.concatenate([*decoder.push(codes), decoder.finish()]))

    assert np.abs(windowed(12, 10) - whole).max() <= 2
    assert np.abs(windowed(0, 0) - whole).max() > 100


def _clone_voice(home: Path, make_speech: Callable[[str, str], Path]) -> None:
    voices = home / "voices"
    voices.mkdir(exist_ok=True)
    line = "This is my own voice, please clone it."
    shutil.copy(make_speech(line, "clone.wav"), voices / "clone.wav")
    (voices / "clone.txt").write_text(line)
    (voices / "clone.toml").write_text('description = "a test voice"\n')


def test_higgs_reference_is_encoded_once_then_cached(
    tiny: TinyHiggs, voicechat_home: Path, make_speech: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clone_voice(voicechat_home, make_speech)
    tts = make_tts(tiny, max_new_tokens=30)
    higgs = tts.loaded()
    tokenizer = higgs.engine.audio_tokenizer
    real_encode, calls = tokenizer.encode, []

    def counting_encode(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(tokenizer, "encode", counting_encode)
    assert tts.voice("clone").reference_audio == voicechat_home / "voices" / "clone.wav"
    asyncio.run(tts.prepare("clone"))  # the first sentence does not pay for the encode
    assert len(calls) == 1

    first = collect(tts, Sentence("The first sentence.", voice="clone"))
    second = collect(tts, Sentence("The second sentence.", voice="clone", index=1))
    tts.generate("A one-shot sentence.", voice="clone")
    assert len(calls) == 1  # encoded for the first sentence only
    assert samples(first).size and samples(second).size

    # a new process starts warm: the codes come back from disk, identical, with no encode
    fresh = ReferenceCache(higgs.references.encode, higgs.references.namespace, higgs.references.folder)
    codes = fresh.codes(voicechat_home / "voices" / "clone.wav")
    assert len(calls) == 1
    assert fresh.stats.disk_hits == 1
    assert np.array_equal(codes, higgs.references.codes(voicechat_home / "voices" / "clone.wav"))
    assert codes.shape[0] == CODEBOOKS and codes.shape[1] > 10


def test_higgs_cancelling_mid_stream_stops_generation(tiny: TinyHiggs) -> None:
    tts = make_tts(tiny, max_new_tokens=600, stream_first_frames=2)
    runner = tts.loaded().runner
    steps_at_cancel = -1

    async def first_chunk_then_leave() -> AudioChunk:
        nonlocal steps_at_cancel
        stream = tts.stream(Sentence("A sentence that would take six hundred steps."))
        chunk = await anext(stream)
        assert runner.last_run is not None
        steps_at_cancel = runner.last_run.steps
        await stream.aclose()
        return chunk

    first = asyncio.run(first_chunk_then_leave())
    run = runner.last_run
    assert first.num_samples == 2 * SAMPLES_PER_FRAME
    assert run is not None and run.generation_thread is not None
    run.generation_thread.join(timeout=30)
    assert not run.generation_thread.is_alive()
    # generation ended within a step or two of the cancel (the step in flight), far short of its 600
    assert steps_at_cancel <= run.steps <= steps_at_cancel + 2
    assert run.steps < 600
    stopped_at = run.steps
    time.sleep(0.2)
    assert run.steps == stopped_at

    # the engine is free again: the next sentence runs to its end
    chunks = collect(make_tts(tiny, max_new_tokens=30), Sentence("Next."))
    assert len(samples(chunks)) == (30 - CODEBOOKS - 1) * SAMPLES_PER_FRAME


def test_higgs_say_cli_writes_a_wav(tiny: TinyHiggs, voicechat_home: Path, tmp_path: Path) -> None:
    higgs = {key.removeprefix("tts.higgs."): value for key, value in tiny.profile_settings().items()}
    profile = {"tts": {"engine": "higgs", "higgs": {**higgs, "max_new_tokens": 40, "seed": 1}}}
    (voicechat_home / "profiles").mkdir()
    (voicechat_home / "profiles" / "tiny.toml").write_text(tomli_w.dumps(profile))
    target = tmp_path / "higgs.wav"

    result = run_cli("say", "--engine", "higgs", "--profile", "tiny", "Hello from Higgs.", "-o", str(target),
                     env=tiny.hub_environment())

    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    with wave.open(str(target)) as handle:
        assert handle.getframerate() == 24000
        assert handle.getnchannels() == 1 and handle.getsampwidth() == 2
        assert handle.getnframes() == (40 - CODEBOOKS - 1) * SAMPLES_PER_FRAME


def test_higgs_doctor_finds_local_weights(tiny: TinyHiggs, voicechat_home: Path) -> None:
    from voicechat.doctor import run_checks

    higgs = {"model": str(tiny.model_dir), "audio_tokenizer": str(tiny.audio_tokenizer_dir)}
    (voicechat_home / "profiles").mkdir()
    (voicechat_home / "profiles" / "default.toml").write_text(tomli_w.dumps({"tts": {"higgs": higgs}}))
    with hub_cache(tiny):
        checks = {check.name: check for check in run_checks()}
    assert checks["Higgs Audio"].ok
    assert checks["Higgs model"].ok and checks["Higgs model"].detail == str(tiny.model_dir)
    assert checks["Higgs audio tokenizer"].ok
    assert checks["HuBERT (audio tokenizer)"].ok  # found in the hub cache, as on a user's machine


def test_higgs_process_exits_cleanly_mid_stream(tiny: TinyHiggs, tmp_path: Path) -> None:
    """Leaving a stream and exiting at once: no thread may still be inside torch when the interpreter ends."""
    import subprocess
    import sys

    script = tmp_path / "leave.py"
    script.write_text(f"""
import asyncio
from pathlib import Path
from tests.higgs_tiny import TinyHiggs
from voicechat.config.store import load_profile
from voicechat.events import Sentence
from voicechat.tts.higgs.engine import HiggsTTS

tiny = TinyHiggs(Path({str(tiny.model_dir)!r}), Path({str(tiny.audio_tokenizer_dir)!r}), Path({str(tiny.hub_cache)!r}))
settings = {{**tiny.profile_settings(), "tts.higgs.max_new_tokens": 600, "tts.higgs.stream_first_frames": 1}}
tts = HiggsTTS(load_profile("default", settings).tts)

async def main():
    stream = tts.stream(Sentence("Leave after the first chunk."))
    await anext(stream)
    print("left", flush=True)

asyncio.run(main())
""")
    env = {**tiny.hub_environment(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=300,
                            env={**__import__("os").environ, **env})
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.strip() == b"left"
    assert b"terminate called" not in result.stderr
    assert b"Traceback" not in result.stderr


def test_higgs_concurrent_sentences_take_turns_on_the_engine(tiny: TinyHiggs) -> None:
    """Two consumers at once (serve shares one engine): each sentence comes out whole, one after the other."""
    tts = make_tts(tiny, max_new_tokens=30)

    async def both() -> list[list[AudioChunk]]:
        async def one(index: int) -> list[AudioChunk]:
            return [chunk async for chunk in tts.stream(Sentence(f"Sentence {index}.", index=index))]

        return list(await asyncio.gather(one(0), one(1)))

    for index, chunks in enumerate(asyncio.run(both())):
        assert {c.sentence_index for c in chunks} == {index}
        assert len(samples(chunks)) == (30 - CODEBOOKS - 1) * SAMPLES_PER_FRAME
