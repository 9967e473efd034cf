"""Voice-loop latency: end of speech -> first audio, and barge-in reaction, over scripted turns.

    .venv/bin/python bench/latency.py [--turns 20] [--skip-embedded]

(a) pipeline overhead: the real Session with instant stand-in stages (a listener that hands over a final
    transcript, a model that answers at once, a TTS that returns a chunk at once): final transcript ->
    first audio chunk at the sink. This is the Session's own cost.
(b) embedded models: real speech (Piper) fed at real-time pace to RealtimeSTT over tiny.en, SmolLM2 through
    the local llama.cpp server, Piper: end of speech -> first audio chunk at the sink. Peak RSS of this
    process and of the LLM server are reported too.
(c) barge-in: during a long reply played at real-time pace, the listener reports speech; time until the
    sink was told to drop its audio, and whether anything was written after.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicechat.config.models import Character
from voicechat.events import AudioChunk, AudioFrame, Sentence, TranscriptEvent, TranscriptKind, TurnFinished
from voicechat.llm.base import ChatMessage
from voicechat.llm.conversation import Conversation

LYDIA = Character(name="Lydia", persona="A friendly librarian who answers in one short sentence.", voice="joe")
QUESTIONS = [
    "What is the capital of France?", "Name a color of the sky.", "How many legs does a cat have?",
    "What do bees make?", "Say something about the moon.",
]


def summary(values: Sequence[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   (n={len(ordered)})"


class StandInListener:
    def __init__(self) -> None:
        self.events: asyncio.Queue[TranscriptEvent] = asyncio.Queue()

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
            final = TranscriptEvent("hello there", TranscriptKind.FINAL, timestamp=time.monotonic())
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
            session.listener.events.put_nowait(TranscriptEvent("tell me", TranscriptKind.FINAL))  # type: ignore[attr-defined]
            await asyncio.sleep(0.5)  # the reply is playing
            spoke = time.perf_counter()
            session.listener.events.put_nowait(TranscriptEvent("", TranscriptKind.STARTED))  # type: ignore[attr-defined]
            await session.wait_for_turns(1, timeout=10)  # type: ignore[attr-defined]
            await asyncio.sleep(0.2)
        assert sink.interrupted_at is not None
        reactions.append(sink.interrupted_at - spoke)
        late_writes += sink.last_write > sink.interrupted_at
    return reactions, late_writes


async def embedded(turns: int, folder: Path) -> tuple[list[float], list[float], list[float]]:
    from tests.conftest import synthesize_wav
    from voicechat.config.models import LLMSettings, TTSSettings
    from voicechat.live.listener import ListenerSettings, RealtimeListener, resolve_model_dir
    from voicechat.live.playback import Playback
    from voicechat.live.scripted import run_script
    from voicechat.llm.registry import create_chat_model
    from voicechat.session import Session, SessionOptions
    from voicechat.tts.piper import PiperTTS

    inputs = [synthesize_wav(QUESTIONS[i % len(QUESTIONS)], folder / f"q{i}.wav") for i in range(turns)]
    onsets: list[float] = []  # when each input's speech began reaching the recognizer
    detections: list[float] = []  # when the recognizer reported speech (the barge-in signal)
    chat = await asyncio.to_thread(create_chat_model, LLMSettings(max_tokens=48), {})
    model_dir = resolve_model_dir("bundled")
    finished: list[object] = []
    session = Session(conversation=Conversation(chat, [LYDIA], "Ada", history_turns=2),
                      listener=RealtimeListener(ListenerSettings(model_dir, model_dir)),
                      tts=PiperTTS(TTSSettings()), playback=Playback(TimingSink(), pace=False),
                      voices={"Lydia": "joe"}, default_voice="joe", options=SessionOptions(full_duplex=True),
                      on_event=lambda event: _collect(event, finished, onsets, detections))
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
        await run_script(session, inputs)
    SERVER_PEAK_MB.append(_server_peak_mb(chat))
    await chat.aclose()
    firsts = [e.metrics.first_audio for e in finished if e.metrics.first_audio is not None]  # type: ignore[attr-defined]
    transcripts = [e.metrics.transcript for e in finished if e.metrics.transcript is not None]  # type: ignore[attr-defined]
    delays = [detected - onset for onset, detected in zip(onsets, detections, strict=False)]
    return firsts, transcripts, delays


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


def _collect(event: object, finished: list[object], onsets: list[float], detections: list[float]) -> None:
    if isinstance(event, TurnFinished):
        finished.append(event)
    elif isinstance(event, TranscriptEvent) and event.kind is TranscriptKind.STARTED and len(detections) < len(onsets):
        detections.append(event.timestamp)  # the first report after each onset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()

    delays = asyncio.run(overhead(args.turns))
    print(f"(a) pipeline overhead, final transcript -> first audio at the sink: {summary(delays)}")
    reactions, late = asyncio.run(barge_in(10))
    print(f"(c) barge-in, speech reported -> sink told to drop audio:            {summary(reactions)}; "
          f"writes after it: {late}")
    if args.skip_embedded:
        return
    with TemporaryDirectory() as folder:
        firsts, transcripts, detection = asyncio.run(embedded(args.turns, Path(folder)))
    print(f"(b) embedded models, end of speech -> first audio:                  {summary(firsts)}")
    print(f"    of which end of speech -> final transcript:                    {summary(transcripts)}")
    print(f"    speech onset -> recognizer reports speech (barge-in detection): {summary(detection)}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    server = SERVER_PEAK_MB[0] if SERVER_PEAK_MB else 0.0
    print(f"    peak RSS: this process {own:.0f} MB, LLM server {server:.0f} MB, together {own + server:.0f} MB")


if __name__ == "__main__":
    main()
