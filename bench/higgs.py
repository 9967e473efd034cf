"""Higgs streaming on the tiny random model (real boson-multimodal engine, real-size audio decoder), CPU.

    .venv/bin/python bench/higgs.py [--repeats 3]

1. window error: streamed (windowed) decode against one decode of the whole utterance, per window size;
2. decode overhead: wall time of the windowed streaming decode against the one-shot decode of the same codes;
3. time to first chunk: HiggsTTS.stream against the one-shot engine.generate() for the same sentence;
4. reference cache: boson's own input preparation (re-encodes the reference every sentence) against ours.
Real weights cannot be downloaded here and no GPU was lent, so the LLM part is tiny; the audio decoder has
the real checkpoint's widths and receptive field, so items 1 and 2 carry over, item 3 only in shape.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import synthesize_wav
from tests.higgs_tiny import TinyHiggs, build, hub_cache
from voicechat.config.store import load_profile
from voicechat.events import Sentence
from voicechat.tts.higgs.engine import HiggsTTS
from voicechat.tts.higgs.frames import WindowedDecoder, WindowPlan
from voicechat.tts.higgs.prompt import chat_sample
from voicechat.tts.higgs.references import ReferenceCache

FRAME = 960


def median_time(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def make_tts(tiny: TinyHiggs, **settings: object) -> HiggsTTS:
    merged = {**tiny.profile_settings(), "tts.higgs.seed": 5, "tts.higgs.temperature": 1.0,
              **{f"tts.higgs.{k}": v for k, v in settings.items()}}
    tts = HiggsTTS(load_profile("default", merged).tts)
    with hub_cache(tiny):
        tts.loaded()
    return tts


def windowed(decode: Callable[[np.ndarray], np.ndarray], codes: np.ndarray, plan: WindowPlan) -> tuple[np.ndarray, int]:
    decoder = WindowedDecoder(decode, FRAME, plan)
    audio = np.concatenate([*decoder.push(codes), decoder.finish()])
    return audio, decoder.decoded_frames


def window_errors(tts: HiggsTTS, frames: int) -> None:
    higgs = tts.loaded()
    codes = np.random.default_rng(0).integers(0, 1024, size=(8, frames))
    whole = higgs.decode(codes)
    peak = float(np.abs(whole).max())
    print(f"\n1. window error, {frames} frames of random codes, chunks of 8 then 25 frames")
    print("| left context | lookahead | max error / peak | frames decoded / one-shot |")
    print("|---|---|---|---|")
    for left, lookahead in [(0, 0), (4, 2), (8, 4), (8, 12), (12, 8), (16, 8), (12, 10), (16, 12), (32, 16)]:
        audio, decoded = windowed(higgs.decode, codes, WindowPlan(8, 25, left, lookahead))
        error = float(np.abs(audio - whole).max()) / peak
        print(f"| {left} | {lookahead} | {error:.1e} | {decoded / frames:.2f} |")


def decode_overhead(tts: HiggsTTS, frames: int, repeats: int) -> None:
    """Interleaved runs (one-shot, windowed, one-shot, ...): load from other processes hits both alike."""
    higgs, options = tts.loaded(), tts.options
    codes = np.random.default_rng(1).integers(0, 1024, size=(8, frames))
    plan = WindowPlan(options.stream_first_frames, options.stream_chunk_frames,
                      options.stream_left_context, options.stream_lookahead)
    higgs.decode(codes)  # warm-up
    one_shot, streamed = [], []
    for _ in range(repeats):
        one_shot.append(median_time(lambda: higgs.decode(codes), 1))
        streamed.append(median_time(lambda: windowed(higgs.decode, codes, plan), 1))
    _, decoded = windowed(higgs.decode, codes, plan)
    print(f"\n2. decode overhead, {frames} frames ({frames / 25:.0f} s of audio), defaults {plan}, "
          f"{repeats} interleaved runs")
    for label, pick in (("best", min), ("median", statistics.median)):
        a, b = pick(one_shot), pick(streamed)
        print(f"{label}: one-shot decode {a:.2f} s, windowed streaming decode {b:.2f} s: {b / a:.2f}x wall")
    print(f"frames decoded: {decoded / frames:.2f}x")


def first_chunk(tts: HiggsTTS, repeats: int) -> None:
    text = "The quick brown fox jumps over the lazy dog, twice."

    async def stream_once() -> tuple[float, float]:
        started = time.perf_counter()
        first = None
        async for _ in tts.stream(Sentence(text)):
            first = first if first is not None else time.perf_counter() - started
        return first or 0.0, time.perf_counter() - started

    tts.generate(text)  # warm-up
    one_shot = median_time(lambda: tts.generate(text), repeats)
    runs = [asyncio.run(stream_once()) for _ in range(repeats)]
    first_audio = statistics.median(r[0] for r in runs)
    total = statistics.median(r[1] for r in runs)
    seconds = (tts.options.max_new_tokens - 9) / 25
    print(f"\n3. time to first audio, {tts.options.max_new_tokens} tokens ({seconds:.1f} s of audio), "
          f"median of {repeats}")
    print(f"one-shot generate(): {one_shot:.2f} s to any audio; streamed: first chunk after {first_audio:.2f} s "
          f"({first_audio / one_shot:.0%} of one-shot), whole stream {total:.2f} s ({total / one_shot:.2f}x)")


def reference_cache(tts: HiggsTTS, folder: Path, repeats: int) -> None:
    from boson_multimodal.serve.serve_engine import HiggsAudioServeEngine

    voices = Path(os.environ["VOICECHAT_HOME"]) / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    line = "This is the reference recording for the cloned voice, about four seconds long."
    synthesize_wav(line, voices / "clone.wav")
    (voices / "clone.txt").write_text(line)
    (voices / "clone.toml").write_text('description = "bench"\n')
    higgs, prompt = tts.loaded(), tts.voice("clone")
    assert prompt.reference_audio is not None
    sample = chat_sample("A sentence in the cloned voice.", prompt, tts.options.scene)
    engine = higgs.engine

    stock = median_time(lambda: HiggsAudioServeEngine._prepare_inputs(engine, sample, True), repeats)
    cold_cache = ReferenceCache(higgs.references.encode, "bench", folder)
    cold = median_time(lambda: cold_cache.codes(prompt.reference_audio), 1)  # type: ignore[arg-type]
    disk = median_time(
        lambda: ReferenceCache(higgs.references.encode, "bench", folder).codes(prompt.reference_audio),  # type: ignore[arg-type]
        repeats,
    )
    engine.reference_codes(prompt.reference_audio)
    cached = median_time(lambda: engine._prepare_inputs(sample, True), repeats)
    with wave.open(str(prompt.reference_audio)) as handle:
        length = handle.getnframes() / handle.getframerate()
    print(f"\n4. reference cache, {length:.1f} s reference, median of {repeats}")
    print(f"boson's input preparation (encodes every sentence): {stock * 1000:.0f} ms; ours with the codes in "
          f"memory: {cached * 1000:.1f} ms ({stock / cached:.0f}x less); first encode {cold * 1000:.0f} ms, "
          f"from disk in a new process {disk * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="higgs-bench-"))
    os.environ["VOICECHAT_HOME"] = str(root / "home")
    try:
        started = time.perf_counter()
        tiny = build(root / "tiny")
        print(f"tiny model built in {time.perf_counter() - started:.1f} s; torch threads {_threads()}")
        window_errors(make_tts(tiny), frames=150)
        for frames in (50, 250):  # a short sentence (2 s) and a long one (10 s)
            decode_overhead(make_tts(tiny), frames=frames, repeats=args.repeats)
        first_chunk(make_tts(tiny, max_new_tokens=159), repeats=args.repeats)
        reference_cache(make_tts(tiny), root / "refcache", repeats=args.repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


if __name__ == "__main__":
    main()
