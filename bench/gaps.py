"""Silence between two sentences of one reply at the speaker: the speaking path vs synthesize-then-play.

A sink that plays in real time (it waits each chunk's duration, as a speaker's write does) records when
each sentence's first audio arrives; the gap is that moment minus the moment the previous sentence's
audio ran out. The baseline is the loop the Session had before: synthesize a sentence, play it, then
synthesize the next. Same Piper voice, same sentences, alternating runs.

    .venv/bin/python bench/gaps.py --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicechat.events import AudioChunk, Sentence

SENTENCES = [
    "The library opens at nine in the morning.",
    "On Sundays it stays closed all day.",
    "You can borrow up to ten books at once.",
    "Children's stories are on the second floor.",
    "Please return the books within three weeks.",
]


class RealTimeSink:
    """Plays at real-time pace; notes when each sentence starts and when audio would run out."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._ends_at: float | None = None
        self._sentence = -1

    async def write(self, chunk: AudioChunk) -> None:
        now = time.perf_counter()
        if chunk.sentence_index != self._sentence:
            if self._ends_at is not None:
                self.gaps.append(max(0.0, now - self._ends_at))
            self._sentence = chunk.sentence_index
        start = max(now, self._ends_at or now)
        self._ends_at = start + chunk.duration
        await asyncio.sleep(max(0.0, self._ends_at - time.perf_counter()))

    async def interrupt(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def abort(self) -> None:
        pass


def sentences() -> list[Sentence]:
    return [Sentence(text, "Lydia", "joe", index) for index, text in enumerate(SENTENCES)]


async def speaking_path(tts: object) -> list[float]:
    from voicechat.speak import speak

    sink = RealTimeSink()
    await speak(tts, sentences(), sink)  # type: ignore[arg-type]
    return sink.gaps


async def synthesize_then_play(tts: object) -> list[float]:
    sink = RealTimeSink()
    for sentence in sentences():
        async for chunk in tts.stream(sentence):  # type: ignore[attr-defined]
            await sink.write(chunk)
    return sink.gaps


async def main(runs: int) -> None:
    from voicechat.config.models import TTSSettings
    from voicechat.tts.piper import PiperTTS

    tts = PiperTTS(TTSSettings())
    await tts.prepare("joe")
    results: dict[str, list[float]] = {"speaking path": [], "synthesize then play": []}
    for _ in range(runs):
        results["speaking path"] += await speaking_path(tts)
        results["synthesize then play"] += await synthesize_then_play(tts)
    for name, gaps in results.items():
        ms = sorted(gap * 1000 for gap in gaps)
        print(f"{name:22} gap between sentences: median {statistics.median(ms):6.1f} ms, "
              f"p90 {ms[int(0.9 * (len(ms) - 1))]:6.1f} ms, max {ms[-1]:6.1f} ms ({len(ms)} gaps)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
