"""Voice-loop latency: end of speech -> first audio, turn taking, and barge-in reaction, over scripted turns.

    .venv/bin/python bench/latency.py [--turns 20] [--skip-embedded] [--skip-baseline] [--skip-turn-taking]

(a) pipeline overhead: the real Session with instant stand-in stages (a listener that hands over a final
    transcript, a model that answers at once, a TTS that returns a chunk at once): final transcript ->
    first audio chunk at the sink. This is the Session's own cost.
(b) embedded models: real speech (Piper) fed at real-time pace to RealtimeSTT over tiny.en, SmolLM2 through
    the local llama.cpp server, Piper: end of speech -> first audio chunk at the sink, split by stage, with
    the default profile's turn detection. In the same run, the same questions through a baseline written
    from the libraries' own examples (bench/voice_baseline.py): RealtimeSTT text() -> the full LLM reply ->
    Piper -> play. Peak RSS of this process and of the LLM server are reported too.
(c) barge-in: during a long reply played at real-time pace, the listener reports speech; time until the
    sink was told to drop its audio, and whether anything was written after.
(d) turn taking (bench/turn_quality.py): utterances with a thinking pause inside and complete questions,
    through the listener alone, with smart turn detection and with a fixed silence: premature cut-offs and
    the wait after complete questions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicechat.config.models import Character
from voicechat.events import (
    AudioChunk,
    AudioFrame,
    Heard,
    HeardKind,
    Sentence,
    TurnFinished,
    TurnMetrics,
    TurnStarted,
)
from voicechat.llm.base import ChatMessage
from voicechat.llm.conversation import Conversation

LYDIA = Character(name="Lydia", persona="A friendly librarian who answers in one short sentence.", voice="joe")
QUESTIONS = [
    "What is the capital of France?", "Name a color of the sky.", "How many legs does a cat have?",
    "What do bees make?", "Say something about the moon.", "Can you recommend a good book?",
    "Why is the sea salty?", "What time do owls wake up?", "Tell me a fun fact about dogs.",
    "How far away is the sun?", "What should I cook for dinner tonight?", "Which planet is the largest?",
    "Do you like music?", "How do airplanes stay in the air?", "What is your favorite season?",
    "Give me a word that rhymes with cat.", "Where do penguins live?", "How many days are in a year?",
    "What is the opposite of cold?", "Could you say hello to my friend?",
]


def summary(values: Sequence[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   (n={len(ordered)})"


class StandInListener:
    def __init__(self) -> None:
        self.events: asyncio.Queue[Heard] = asyncio.Queue()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def feed(self, pcm: bytes) -> None:
        return None


class InstantModel:
    name, notices = "instant", ()

    def __init__(self, text: str) -> None:
        self.text = text

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        for word in self.text.split(" "):
            yield word + " "

    async def aclose(self) -> None:
        return None


class InstantTTS:
    name = "instant"

    def __init__(self, chunks: int = 1, seconds: float = 0.1) -> None:
        self.chunks, self.seconds = chunks, seconds

    async def prepare(self, voice: str = "") -> None:
        return None

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        for index in range(self.chunks):
            yield AudioChunk(bytes(2 * int(16000 * self.seconds)), 16000, sentence.index, index, sentence.character)
            await asyncio.sleep(0)


class TimingSink:
    def __init__(self) -> None:
        self.first_write: float | None = None
        self.last_write = 0.0
        self.interrupted_at: float | None = None

    async def write(self, chunk: AudioChunk) -> None:
        now = time.perf_counter()
        self.first_write = self.first_write or now
        self.last_write = now

    async def interrupt(self) -> None:
        self.interrupted_at = time.perf_counter()

    async def close(self) -> None:
        return None

    async def abort(self) -> None:
        return None


def _session(model: object, tts: object, sink: TimingSink, pace: bool) -> object:
    from voicechat.live.playback import Playback
    from voicechat.session import Session, SessionOptions

    return Session(conversation=Conversation(model, [LYDIA], "Ada"),  # type: ignore[arg-type]
                   listener=StandInListener(),  # type: ignore[arg-type]
                   tts=tts,  # type: ignore[arg-type]
                   playback=Playback(sink, pace=pace), voices={"Lydia": "joe"}, default_voice="joe",
                   options=SessionOptions(full_duplex=True))


async def overhead(turns: int) -> list[float]:
    delays = []
    for _ in range(turns):
        sink = TimingSink()
        session = _session(InstantModel("Sure thing. Here it is."), InstantTTS(), sink, pace=False)
        async with session:  # type: ignore[attr-defined]
            final = Heard("hello there", HeardKind.FINAL, timestamp=time.monotonic())
            posted = time.perf_counter()
            session.listener.events.put_nowait(final)  # type: ignore[attr-defined]
            await session.wait_for_turns(1, timeout=10)  # type: ignore[attr-defined]
        assert sink.first_write is not None
        delays.append(sink.first_write - posted)
    return delays


async def barge_in(trials: int) -> tuple[list[float], int]:
    reactions, late_writes = [], 0
    for _ in range(trials):
        sink = TimingSink()
        session = _session(InstantModel("A long story. " * 20), InstantTTS(chunks=40, seconds=0.1), sink, pace=True)
        async with session:  # type: ignore[attr-defined]
            session.listener.events.put_nowait(Heard("tell me", HeardKind.FINAL))  # type: ignore[attr-defined]
            await asyncio.sleep(0.5)  # the reply is playing
            spoke = time.perf_counter()
            session.listener.events.put_nowait(Heard("", HeardKind.STARTED))  # type: ignore[attr-defined]
            await session.wait_for_turns(1, timeout=10)  # type: ignore[attr-defined]
            await asyncio.sleep(0.2)
        assert sink.interrupted_at is not None
        reactions.append(sink.interrupted_at - spoke)
        late_writes += sink.last_write > sink.interrupted_at
    return reactions, late_writes


@dataclass(frozen=True)
class EmbeddedRun:
    metrics: list[TurnMetrics]
    onset_delays: list[float]  # speech onset -> recognizer reports speech (the barge-in signal)
    texts: list[str]
    baseline: list[Any]  # bench.voice_baseline.BaselineTurn, on the same server, after voicechat's turns
    baseline_error: str = ""


async def embedded(inputs: list[Path], baseline: bool) -> EmbeddedRun:
    from voicechat.config.models import LLMSettings, Profile, TTSSettings
    from voicechat.live.listener import RealtimeListener, listener_settings
    from voicechat.live.playback import Playback
    from voicechat.live.scripted import run_script
    from voicechat.llm.registry import create_chat_model
    from voicechat.session import Session, SessionOptions
    from voicechat.stt.models import resolve_model
    from voicechat.tts.piper import PiperTTS

    onsets: list[float] = []  # when each input's speech began reaching the recognizer
    detections: list[float] = []  # when the recognizer reported speech (the barge-in signal)
    chat = await asyncio.to_thread(create_chat_model, LLMSettings(max_tokens=48), {})
    model_dir = resolve_model("bundled")
    finished: list[TurnFinished] = []
    texts: list[str] = []
    session = Session(conversation=Conversation(chat, [LYDIA], "Ada"),  # the profile's history bounds
                      listener=RealtimeListener(listener_settings(_stt_settings(Profile().stt), model_dir)),
                      tts=PiperTTS(TTSSettings()), playback=Playback(TimingSink(), pace=False),
                      voices={"Lydia": "joe"}, default_voice="joe", options=SessionOptions(full_duplex=True),
                      observers=[lambda event: _collect(event, finished, texts, onsets, detections)])
    plain_feed = session.feed

    last_loud = [0.0]

    def feed(frame: AudioFrame) -> None:
        now = time.monotonic()
        if frame.level > -45:
            if now - last_loud[0] > 1.0:  # speech after a second of quiet: a new utterance begins
                onsets.append(now)
            last_loud[0] = now
        plain_feed(frame)

    session.feed = feed  # type: ignore[method-assign]
    async with session:
        await run_script(session, inputs, whole=False)  # a live user's turn: nothing holds it open
    SERVER_PEAK_MB.append(_server_peak_mb(chat))
    base, error = [], ""
    if baseline:
        from bench.voice_baseline import run_baseline

        try:
            base = await asyncio.to_thread(run_baseline, inputs, chat, LYDIA.persona)
        except Exception as failure:  # reported; the turn-taking part still runs
            error = f"{type(failure).__name__}: {failure}"
    await chat.aclose()
    delays = [detected - onset for onset, detected in zip(onsets, detections, strict=False)]
    return EmbeddedRun([e.metrics for e in finished], delays, texts, base, error)


SERVER_PEAK_MB: list[float] = []


def _server_peak_mb(chat: object) -> float:
    """The llama.cpp server's own peak RSS (VmHWM), read before it stops.

    Not RUSAGE_CHILDREN: that also counts every fork of this process (a fork shares its pages, so a
    child that execs at once still reports this process's size).
    """
    process = getattr(getattr(chat, "server", None), "_process", None)
    if process is None:
        return 0.0
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _collect(event: object, finished: list[TurnFinished], texts: list[str], onsets: list[float],
             detections: list[float]) -> None:
    if isinstance(event, TurnFinished):
        finished.append(event)
    elif isinstance(event, TurnStarted):
        texts.append(event.user_text)
    elif isinstance(event, Heard) and event.kind is HeardKind.STARTED and len(detections) < len(onsets):
        detections.append(event.timestamp)  # the first report after each onset


def stage_split(metrics: Sequence[TurnMetrics]) -> list[str]:
    """Median and p90 of each milestone, from the end of speech."""
    lines = []
    for name in ("transcript", "first_token", "first_sentence", "first_audio"):
        values = [getattr(m, name) for m in metrics if getattr(m, name) is not None]
        if values:
            lines.append(f"    end of speech -> {name.replace('_', ' '):15} {summary(values)}")
    return lines


def _stt_settings(stt: Any) -> Any:
    """The profile's [stt], with the text judge left out when BENCH_NO_TEXT_JUDGE is set, and the encoder's
    window from BENCH_LIVE_WINDOW (seconds; 30 is Whisper's own) when set: their A/Bs."""
    if os.environ.get("BENCH_NO_TEXT_JUDGE"):
        stt = stt.model_copy(update={"turn_judge_words": False})
    if os.environ.get("BENCH_LIVE_WINDOW"):
        stt = stt.model_copy(update={"live_window": float(os.environ["BENCH_LIVE_WINDOW"])})
    return stt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-turn-taking", action="store_true")
    args = parser.parse_args()

    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    delays = asyncio.run(overhead(args.turns))
    print(f"(a) pipeline overhead, final transcript -> first audio at the sink: {summary(delays)}")
    reactions, late = asyncio.run(barge_in(10))
    print(f"(c) barge-in, speech reported -> sink told to drop audio:            {summary(reactions)}; "
          f"writes after it: {late}")
    with TemporaryDirectory() as folder:
        if not args.skip_embedded:
            run_embedded(args.turns, Path(folder), baseline=not args.skip_baseline)
        if not args.skip_turn_taking:
            from bench.turn_quality import report

            for line in report(Path(folder)):
                print(line)
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


def run_embedded(turns: int, folder: Path, baseline: bool) -> None:
    from tests.conftest import synthesize_wav

    inputs = [synthesize_wav(QUESTIONS[i % len(QUESTIONS)], folder / f"q{i}.wav") for i in range(turns)]
    run = asyncio.run(embedded(inputs, baseline))
    firsts = [m.first_audio for m in run.metrics if m.first_audio is not None]
    print(f"(b) embedded models, end of speech -> first audio:                  {summary(firsts)}")
    print(f"    turns answered {len(firsts)} of {len(inputs)}; heard: {run.texts[:3]} ...")
    if len(firsts) > 1:
        rest = statistics.median(firsts[1:]) * 1000
        print(f"    the first turn: {firsts[0] * 1000:.0f} ms, the others' median {rest:.0f} ms")
    for line in stage_split(run.metrics):
        print(line)
    guesses = [m.speculation for m in run.metrics if m.speculation]
    print(f"    speculative replies: {guesses.count('hit')} hit, {guesses.count('miss')} missed, "
          f"{len(run.metrics) - len(guesses)} turns without a guess")
    print(f"    speech onset -> recognizer reports speech (barge-in detection): {summary(run.onset_delays)}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    server = SERVER_PEAK_MB[0] if SERVER_PEAK_MB else 0.0
    print(f"    peak RSS: this process {own:.0f} MB, LLM server {server:.0f} MB, together {own + server:.0f} MB")
    if run.baseline_error:
        print(f"(b) baseline failed: {run.baseline_error}")
    elif baseline:
        base = run.baseline
        print(f"(b) baseline (RealtimeSTT text() -> full reply -> Piper), end of speech -> first audio: "
              f"{summary([t.first_audio for t in base])}")
        for name in ("transcript", "reply", "speech"):
            print(f"    end of speech -> {name:10} {summary([getattr(t, name) for t in base])}")


if __name__ == "__main__":
    main()
