"""`talk` on open speakers: the echo canceller on the PulseAudio device rig (scripts/audio-rig, as root).

    .venv/bin/python bench/echo.py [--levels -6 -12 -18 -24] [--replies 10] [--barge-ins 5]
                                   [--skip-talk] [--only-barge-in] [--only-self]

(a) ERLE: a Piper reply played through SpeakerSink (publishing its reference) with the room's echo at each
    level, the microphone read through MicrophoneSource with the canceller. Echo return loss enhancement =
    energy of what AEC3 was given / energy of what it gave back, sample for sample, over the reply's first
    second (AEC3 still learning the room: talk mutes the microphone then) and over the rest. The baseline
    is the same microphone without the canceller (0 dB by definition), in the same run.
(b) CPU: time in EchoCanceller.process (lookup of the reference + AEC3) per second of microphone audio,
    and the same for AEC3 alone.
(c) self-interruptions: the real `voicechat talk` (defaults: canceller on, full duplex, barge-in) asked one
    question after another with the echo at each level; a reply cut while nobody spoke, or a turn nobody
    asked for, is a self-interruption.
(d) barge-in with echo: during a long reply (echo at -12 dB), "Stop. Tell me about Mars instead." is played
    into the microphone; from the onset of that speech to the moment the speakers fall silent, and to the
    moment they play 8 dB quieter. The onset is where
    the speech is found, by correlation, in a recording of the microphone's feed: paplay's start-up is not
    the product's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.audio_rig import RECORD_RATE, AudioRig, SpeakerMonitor, rig_problem
from tests.conftest import synthesize_wav
from tests.sse_server import Script, SSEServer
from voicechat.audio.sinks import SpeakerSink
from voicechat.events import AudioChunk
from voicechat.live.echo import LEARN_SECONDS, RATE, EchoCanceller, PlayedAudio
from voicechat.live.sources import MicrophoneSource

REPLY = ("Once upon a time there was a small boat on a wide grey sea. The sailor in it had lost his map. "
         "He watched the stars every night to find his way home. One night a storm came and threw the waves high.")
QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris. It is a lovely city on the river Seine, with many old bridges."
INTERRUPTION = "Stop. Tell me about Mars instead."
PREFIX = "bench_"


def _db(samples: np.ndarray) -> float:
    x = samples.astype(np.float64)
    return float(10 * np.log10(np.mean(x * x) + 1e-9))


def _read_wav(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path)) as handle:
        return handle.readframes(handle.getnframes()), handle.getframerate()


class _Recorded(EchoCanceller):
    """The canceller with the whole of process() timed, and what AEC3 was given and gave back kept."""

    def __init__(self, played: PlayedAudio) -> None:
        super().__init__(played)
        self.total = 0.0
        self.near: list[np.ndarray] = []
        self.far: list[np.ndarray] = []
        self.out: list[np.ndarray] = []
        aec = self._aec

        class Keeping:
            def process(_, near: np.ndarray, far: np.ndarray) -> np.ndarray:
                clean = aec.process(near, far)
                self.near.append(near.copy())
                self.far.append(far.copy())
                self.out.append(clean.copy())
                return clean

        self._aec = Keeping()

    def process(self, pcm: bytes, captured: float, xrun: bool = False) -> bytes:
        started = time.perf_counter()
        try:
            return super().process(pcm, captured, xrun)
        finally:
            self.total += time.perf_counter() - started


async def _erle_once(reply: Path) -> dict[str, float]:
    played = PlayedAudio()
    sink, canceller = SpeakerSink(None, played=played), _Recorded(played)
    canceller.learned = LEARN_SECONDS  # AEC3 alone: no muting while it learns the room (talk mutes then)
    microphone = MicrophoneSource(None, echo=canceller)

    async def listen() -> None:
        async for _ in microphone.frames():
            pass

    listening = asyncio.create_task(listen())
    await asyncio.sleep(1.0)
    pcm, rate = _read_wav(reply)
    block = 2 * int(rate * 0.05)
    for start in range(0, len(pcm), block):
        await sink.write(AudioChunk(pcm[start : start + block], rate))
    await sink.close()
    await asyncio.sleep(0.5)
    listening.cancel()
    near, far, out = (np.concatenate(part) for part in (canceller.near, canceller.far, canceller.out))
    playing = np.flatnonzero(np.abs(far) > 300)
    first, end = int(playing[0]), int(playing[-1])  # the reply's span in the reference
    return {
        "erle_first_s": _db(near[first : first + RATE]) - _db(out[first : first + RATE]),
        "erle_after": _db(near[first + RATE : end]) - _db(out[first + RATE : end]),
        "aec_ms_per_s": 1000 * canceller.cpu / (canceller.frames / 100),
        "canceller_ms_per_s": 1000 * canceller.total / (canceller.frames / 100),
    }


def bench_erle(rig: AudioRig, levels: list[float], reply: Path, repeats: int) -> list[dict[str, float]]:
    rows = []
    for level in levels:
        rig.echo(level)
        runs = [asyncio.run(_erle_once(reply)) for _ in range(repeats)]
        row = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        rows.append({"level": level, **row})
        print(f"echo {level:+.0f} dB: ERLE first second {row['erle_first_s']:.1f} dB, after {row['erle_after']:.1f} dB;"
              f" AEC3 {row['aec_ms_per_s']:.1f} ms per s of audio, whole canceller {row['canceller_ms_per_s']:.1f}",
              flush=True)
    return rows


def _talk(server: SSEServer, folder: Path) -> tuple[subprocess.Popen[bytes], Path, list[str]]:
    import threading

    transcript = folder / "talk.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "voicechat", "talk", "--base-url", server.base_url, "--transcript", str(transcript),
         "--no-greeting"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"VOICECHAT_LOG_LEVEL": "INFO", **os.environ, "OPENROUTER_API_KEY": "bench",
             "VOICECHAT_HOME": str(folder)})
    lines: list[str] = []

    def read(stream: object) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            lines.append(raw.decode(errors="replace").rstrip())

    for stream in (process.stdout, process.stderr):
        threading.Thread(target=read, args=(stream,), daemon=True).start()
    deadline = time.monotonic() + 180
    while not any(line.startswith("listening:") for line in lines) and time.monotonic() < deadline:
        time.sleep(0.2)
    return process, transcript, lines


def _holds(folder: Path) -> list[float]:
    """How long each reply that a voice held (live/barge_in.py) waited before it played on, from talk.log."""
    log = folder / "data" / "logs" / "talk.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    return [float(line.rsplit("after ", 1)[1].split()[0]) for line in text.splitlines()
            if "the held reply plays on after" in line]


def _print_talk_log(folder: Path, marks: tuple[str, ...]) -> None:
    """The lines of talk.log that hold one of `marks` (with VOICECHAT_LOG_LEVEL=DEBUG: what talk heard)."""
    log = folder / "data" / "logs" / "talk.log"
    for line in log.read_text(errors="replace").splitlines() if log.is_file() else []:
        if any(mark in line for mark in marks):
            print(f"  talk.log: {line}", flush=True)


def _turns(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def bench_self_interruptions(rig: AudioRig, levels: list[float], replies: int, question: Path) -> list[dict]:  # type: ignore[type-arg]
    rows = []
    for level in levels:
        rig.echo(level)
        with SSEServer() as server, tempfile.TemporaryDirectory() as folder:
            server.queue(*(Script.reply(ANSWER) for _ in range(20 * replies)))
            process, transcript, _ = _talk(server, Path(folder))
            for asked in range(1, replies + 1):
                rig.speak_and_wait(question)
                deadline = time.monotonic() + 60
                while len(_turns(transcript)) < asked and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(1.5)
            time.sleep(3.0)
            process.send_signal(2)
            process.wait(timeout=30)
            turns = _turns(transcript)
            if os.environ.get("BENCH_ECHO_VERBOSE"):
                for turn in turns:
                    print(f"  {turn['user']!r} cut={turn['cut']} {turn['replies']}", flush=True)
            holds = _holds(Path(folder))
            if os.environ.get("BENCH_ECHO_VERBOSE"):
                _print_talk_log(Path(folder), ("barge_in", "sound over"))
        cut = sum(bool(turn["cut"]) for turn in turns)
        extra = max(0, len(turns) - replies)
        rows.append({"level": level, "turns": len(turns), "cut": cut, "extra": extra, "holds": holds})
        print(f"echo {level:+.0f} dB: {replies} questions -> {len(turns)} turns, {cut} replies cut, "
              f"{extra} turns nobody asked for; {len(holds)} replies held by a false voice and played on"
              + (f" (held {', '.join(f'{seconds:.2f}' for seconds in holds)} s)" if holds else ""), flush=True)
    return rows


def _speech_onset(path: Path) -> float:
    pcm, rate = _read_wav(path)
    samples = np.abs(np.frombuffer(pcm, dtype=np.int16).astype(np.float32)) / 32768
    return float(np.argmax(samples > 0.02)) / rate


def _arrival(microphone: SpeakerMonitor, voice: np.ndarray, after: float) -> float | None:
    """When `voice` (16 kHz samples) began to reach the microphone after `after`, on the monitors' clock:
    where it correlates best with what the microphone's feed recorded (the reply's echo is in there too)."""
    blocks = [index for index, (moment, _) in enumerate(microphone.levels) if moment >= after]
    if not blocks:
        return None
    first = blocks[0]
    heard = np.frombuffer(bytes(microphone.pcm), dtype=np.int16).astype(np.float32)[first * microphone.BLOCK:]
    if heard.size < voice.size:
        return None
    size = 1 << int(np.ceil(np.log2(heard.size + voice.size)))  # correlation through the FFT: seconds, not minutes
    fit = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(voice, size)), size)
    fit = fit[: heard.size - voice.size + 1]
    block = first + int(np.argmax(np.abs(fit))) // microphone.BLOCK
    return microphone.levels[min(block, len(microphone.levels) - 1)][0]


def bench_barge_in(rig: AudioRig, count: int, question: Path, interruption: Path) -> list[float]:
    rig.echo(-12)
    reactions: list[float] = []
    turned_down: list[float] = []  # 8 dB down: the first sign of a hold (live/barge_in.py)
    onset = _speech_onset(interruption)
    pcm, rate = _read_wav(interruption)
    voice = soxr.resample(np.frombuffer(pcm, dtype=np.int16).astype(np.float32), rate, RECORD_RATE)
    with SSEServer() as server, tempfile.TemporaryDirectory() as folder:
        server.queue(*(Script.reply(REPLY) for _ in range(20 * count)))
        process, transcript, _ = _talk(server, Path(folder))
        monitor = rig.monitor()
        microphone = SpeakerMonitor(f"{rig.prefix}micfeed.monitor")  # what reaches the microphone, same clock
        rig.speak_and_wait(question)
        for _ in range(count):
            if monitor.wait_for_sound(timeout=60) is None:
                break
            time.sleep(2.0)
            started = time.monotonic()
            rig.speak_and_wait(interruption)
            time.sleep(0.5)
            arrived = _arrival(microphone, voice, started)
            spoken = (arrived if arrived is not None else started) + onset  # paplay takes a while to start
            silent = monitor.silent_from(spoken)
            down = monitor.turned_down_from(spoken)
            if silent is not None:
                reactions.append(silent - spoken)
            if down is not None:
                turned_down.append(down - spoken)
            if os.environ.get("BENCH_ECHO_VERBOSE"):
                late = {name: None if at is None else round(1000 * (at - spoken))
                        for name, at in (("silent", silent), ("turned down", down))}
                wall = time.time() - (time.monotonic() - spoken)
                print(f"  voice at {time.strftime('%H:%M:%S', time.localtime(wall))}.{int(wall % 1 * 1000):03d}, "
                      f"{1000 * (spoken - started - onset):.0f} ms after paplay began; ms after it: {late}",
                      flush=True)
        monitor.stop(Path(folder) / "speakers.wav")
        microphone.stop(Path(folder) / "microphone.wav")
        process.send_signal(2)
        process.wait(timeout=30)
        cut = sum(bool(turn["cut"]) for turn in _turns(transcript))
        if os.environ.get("BENCH_ECHO_VERBOSE"):
            for turn in _turns(transcript):
                print(f"  {turn['user']!r} cut={turn['cut']}", flush=True)
            _print_talk_log(Path(folder), ("barge_in", "heard ", "began over", "trace", "echo", "recogni", "failed"))
    print(f"barge-in with echo at -12 dB: {len(reactions)} of {count} replies fell silent, {cut} turns cut; "
          f"speech onset -> silence median {1000 * statistics.median(reactions):.0f} ms, "
          f"max {1000 * max(reactions):.0f} ms" if reactions else "barge-in: no reply fell silent", flush=True)
    if turned_down:
        print(f"  speech onset -> reply turned down (8 dB or more) median {1000 * statistics.median(turned_down):.0f} "
              f"ms, max {1000 * max(turned_down):.0f} ms ({len(turned_down)} of {count})", flush=True)
    return reactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=float, nargs="+", default=[-6, -12, -18, -24])
    parser.add_argument("--repeats", type=int, default=3, help="ERLE runs per level (median)")
    parser.add_argument("--replies", type=int, default=10)
    parser.add_argument("--barge-ins", type=int, default=5)
    parser.add_argument("--skip-talk", action="store_true", help="only (a) and (b): no talk process")
    parser.add_argument("--only-barge-in", action="store_true", help="only (d)")
    parser.add_argument("--only-self", action="store_true", help="only (c)")
    args = parser.parse_args()
    # A private set of rig devices, so that tests running beside the benchmark do not change its echo.
    problem = rig_problem(PREFIX)
    if problem is not None:
        sys.exit(f"bench/echo.py needs the audio rig: {problem}")
    rig = AudioRig(PREFIX)
    os.environ.update(PULSE_SINK=rig.speakers, PULSE_SOURCE=rig.microphone)  # this process and its children
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        reply = synthesize_wav(REPLY, Path(folder) / "reply.wav")
        question = synthesize_wav(QUESTION, Path(folder) / "question.wav")
        interruption = synthesize_wav(INTERRUPTION, Path(folder) / "interruption.wav")
        if not args.only_barge_in and not args.only_self:
            bench_erle(rig, args.levels, reply, args.repeats)
        if not args.skip_talk and not args.only_barge_in:
            bench_self_interruptions(rig, args.levels, args.replies, question)
        if not args.skip_talk and not args.only_self:
            bench_barge_in(rig, args.barge_ins, question, interruption)
    rig.echo(None)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)


if __name__ == "__main__":
    main()
