"""Turn taking: does the listener wait through a thinking pause, and answer soon after a finished question?

20 utterances with a pause inside ("I was wondering if" ... "you could tell me a story") and 20 complete
questions, spoken by Piper and fed at real-time pace to the listener alone (no LLM), once with the default
profile's smart turn detection and once with a fixed silence (turn_detection = "silence", 0.45 s), in the
same run. A premature cut-off is a final transcript before the utterance's last word was spoken; the wait is
end of speech -> final transcript after a complete question.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voicechat.events import Heard, HeardKind
from voicechat.live.sources import RealTimePacer, make_frame, read_speech_file, silence, split_frames

PAUSED = [
    ("I was wondering if", "you could tell me a story about a dragon.", 0.7),
    ("Can you tell me", "what the weather is like today?", 0.6),
    ("I would like to know", "how tall the tallest tree is.", 0.8),
    ("So my question is", "why do cats purr?", 0.7),
    ("What I really want", "is a cup of tea.", 0.6),
    ("Could you please", "remind me to call my mother?", 0.9),
    ("Tell me about the", "history of the bicycle.", 0.7),
    ("I think that the", "best fruit is a mango.", 0.8),
    ("My friend and I", "are going to the beach tomorrow.", 0.6),
    ("Do you know if", "it will rain this weekend?", 0.7),
    ("The thing is", "I forgot my keys at home.", 0.8),
    ("When you get a chance", "could you sing me a song?", 0.7),
    ("I was going to ask", "what your name is.", 0.6),
    ("If it is not too much trouble", "tell me a joke.", 0.9),
    ("Let me think about", "what I want for lunch.", 0.7),
    ("Before we start", "how long will this take?", 0.6),
    ("I need help with", "my homework about the moon.", 0.8),
    ("Yesterday I went to", "the market and bought apples.", 0.7),
    ("Is it true that", "octopuses have three hearts?", 0.6),
    ("Um, I guess", "I would like a short poem.", 0.8),
]
TAIL = 2.0  # seconds of quiet fed after each utterance at least: the longest wait, and then some
GIVE_UP = 12.0  # seconds after the end of speech with no final transcript: the utterance was not heard


@dataclass(frozen=True)
class Utterance:
    speech_end: float
    finals: tuple[float, ...]  # when each final transcript for this utterance came
    texts: tuple[str, ...] = ()  # what each said


def paused_pcm(first: str, second: str, pause: float, folder: Path, name: str) -> bytes:
    from tests.conftest import synthesize_wav

    head = read_speech_file(synthesize_wav(first, folder / f"{name}-a.wav"))
    tail = read_speech_file(synthesize_wav(second, folder / f"{name}-b.wav"))
    return head + silence(pause) + tail


async def listen(settings: object, clips: Sequence[bytes]) -> list[Utterance]:
    from voicechat.live.listener import RealtimeListener

    listener = RealtimeListener(settings)  # type: ignore[arg-type]
    await listener.start()
    finals: list[Heard] = []
    collecting = asyncio.create_task(_collect(listener, finals))
    heard = []
    try:
        pacer = RealTimePacer()
        for clip in clips:
            speech_end = await _speak(listener, pacer, silence(0.3) + clip)
            quiet_until = speech_end + TAIL
            while time.monotonic() < quiet_until or (not finals and time.monotonic() < speech_end + GIVE_UP):
                await _speak(listener, pacer, silence(0.032))
            heard.append(Utterance(speech_end, tuple(e.timestamp for e in finals), tuple(e.text for e in finals)))
            finals.clear()
    finally:
        collecting.cancel()
        await listener.stop()
    return heard


async def _speak(listener: object, pacer: RealTimePacer, pcm: bytes) -> float:
    """Feed at real-time pace; returns when the last loud frame went in (the end of speech)."""
    speech_end = time.monotonic()
    for block in split_frames(pcm):
        frame = make_frame(block)
        listener.feed(block)  # type: ignore[attr-defined]
        if frame.level > -45:
            speech_end = time.monotonic()
        await pacer.wait(frame.duration)
    return speech_end


async def _collect(listener: object, finals: list[Heard]) -> None:
    while True:
        event = await listener.events.get()  # type: ignore[attr-defined]
        if event.kind is HeardKind.FINAL and event.text:
            finals.append(event)


def premature(heard: Sequence[Utterance]) -> int:
    return sum(1 for h in heard if is_cut(h))


def is_cut(heard: Utterance) -> bool:
    return bool(heard.finals) and (heard.finals[0] < heard.speech_end or len(heard.finals) > 1)


def waits(heard: Sequence[Utterance]) -> list[float]:
    return [h.finals[0] - h.speech_end for h in heard if h.finals]


def report(folder: Path, questions: Sequence[str] | None = None) -> list[str]:
    from bench.latency import QUESTIONS
    from tests.conftest import synthesize_wav
    from voicechat.config.models import Profile
    from voicechat.live.listener import listener_settings
    from voicechat.stt.models import resolve_model

    paused = [paused_pcm(a, b, pause, folder, f"p{i}") for i, (a, b, pause) in enumerate(PAUSED)]
    complete = [read_speech_file(synthesize_wav(q, folder / f"c{i}.wav")) for i, q in enumerate(questions or QUESTIONS)]
    model_dir = resolve_model("bundled")
    lines = [f"(d) turn taking, {len(paused)} utterances with a pause inside, {len(complete)} complete questions:"]
    variants = {"smart": {}, "smart, no text judge": {"turn_judge_words": False}, "silence": {}}
    window = {"live_window": float(os.environ["BENCH_LIVE_WINDOW"])} if os.environ.get("BENCH_LIVE_WINDOW") else {}
    for name, extra in variants.items():
        mode = name.split(",")[0]
        stt = Profile().stt.model_copy(update={"turn_detection": mode, **extra, **window})
        heard = asyncio.run(listen(listener_settings(stt, model_dir), [*paused, *complete]))
        cut = premature(heard[: len(paused)])
        after = waits(heard[len(paused):])
        unheard = sum(1 for h in heard if not h.finals)
        lines.append(f"    {name:21} premature cut-offs {cut} of {len(paused)}; end of speech -> final "
                     f"transcript after a complete question: mean {statistics.mean(after) * 1000:.0f} ms, median "
                     f"{statistics.median(after) * 1000:.0f} ms (n={len(after)}); utterances never heard: {unheard}")
        if name == "smart":
            lines += [f"        cut: {' | '.join(h.texts)}" for h in heard[: len(paused)] if is_cut(h)]
    return lines
