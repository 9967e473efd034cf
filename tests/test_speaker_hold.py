"""SpeakerSink on a real (virtual) output device: a held reply falls silent and later plays on, whole.

A barge-in on open speakers first holds the reply (live/barge_in.py) with `duck(0.0)`. On the device that
must be silence soon after the call, and what had not been heard must wait, not be lost: a 1.5 s tone held
for 0.8 s is heard for 1.5 s in all, in two parts. The sink plays in a child process, because PortAudio
lists its devices once per process (the rig may have come up after this one first asked).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.audio_rig import RECORD_RATE, AudioRig, SpeakerMonitor, open_rig
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TONE_SECONDS, HOLD_AFTER, HOLD_FOR = 1.5, 0.6, 0.8
PLAYER = f"""
import asyncio, time
import numpy as np
from voicechat.audio.sinks import SpeakerSink
from voicechat.events import AudioChunk

async def main():
    rate = 22050
    t = np.arange(int(rate * {TONE_SECONDS})) / rate
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).tobytes()
    sink = SpeakerSink()
    started = asyncio.Event()

    async def hold():
        await started.wait()
        await asyncio.sleep({HOLD_AFTER})
        print("hold", time.monotonic(), flush=True)
        sink.duck(0.0)
        await asyncio.sleep({HOLD_FOR})
        print("release", time.monotonic(), flush=True)
        sink.duck(1.0)

    holding = asyncio.create_task(hold())
    step = 2 * int(rate * 0.05)
    for start in range(0, len(tone), step):
        await sink.write(AudioChunk(tone[start:start + step], rate))
        started.set()
    await holding
    await sink.close()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def rig() -> Iterator[AudioRig]:
    yield from open_rig("hold_")


def loud_seconds(monitor: SpeakerMonitor) -> float:
    return sum(loud for _, loud in monitor.loud) * SpeakerMonitor.BLOCK / RECORD_RATE


def test_a_held_reply_falls_silent_and_plays_on_without_losing_a_sound(rig: AudioRig, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monitor = rig.monitor()
    try:
        monitor.wait_until_listening()
        played = subprocess.run([sys.executable, "-c", PLAYER], cwd=REPO, capture_output=True, text=True,
                                timeout=60)
        assert played.returncode == 0, played.stderr
        marks = dict(line.split() for line in played.stdout.splitlines())
        held, released = float(marks["hold"]), float(marks["release"])
        silent = monitor.silent_from(held, quiet=0.5)
        assert silent is not None and silent < released, "the held tone did not fall silent"
        resumed = next((moment for moment, loud in monitor.loud if loud and moment > silent), None)
        assert resumed is not None and resumed > released - 0.05, "the tone did not play on after the hold"
        heard = loud_seconds(monitor)
        assert abs(heard - TONE_SECONDS) < 0.2, f"{heard:.2f} s of the {TONE_SECONDS} s tone was heard"
    finally:
        monitor.stop(tmp_path / "speakers.wav")


FLICKER = """
import asyncio, threading, time
import numpy as np
from voicechat.audio.sinks import SpeakerSink
from voicechat.events import AudioChunk

async def main():
    rate = 22050
    t = np.arange(int(rate * 3.0)) / rate
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).tobytes()
    sink = SpeakerSink()

    def flicker():  # as the microphone's thread pauses a reply and the event loop gives it back
        for turn in range(60):
            sink.duck(0.0 if turn % 2 == 0 else 1.0)
            time.sleep(0.02)
        sink.duck(1.0)

    step = 2 * int(rate * 0.05)
    await sink.write(AudioChunk(tone[:step], rate))
    thread = threading.Thread(target=flicker)
    thread.start()
    for start in range(step, len(tone), step):
        await sink.write(AudioChunk(tone[start:start + step], rate))
    thread.join()
    await sink.close()
    print("played", flush=True)
    sink = SpeakerSink()
    await sink.write(AudioChunk(tone[:step], rate))
    with sink._restarting:  # a barge-in's abort-and-start, caught between the two
        sink._stream.abort()
        print("restarting stalled" if sink._stalled() else "restarting playing", flush=True)
    print("stopped stalled" if sink._stalled() else "stopped playing", flush=True)

asyncio.run(main())
"""


def test_a_reply_paused_and_given_back_many_times_in_a_row_still_plays_to_its_end(rig: AudioRig) -> None:
    """Each pause aborts and restarts the output stream; a write that waits for room meanwhile must not take
    the restarting stream for a dead device ("output device ... stopped playing")."""
    played = subprocess.run([sys.executable, "-c", FLICKER], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert played.returncode == 0 and "played" in played.stdout, played.stderr[-2000:]
    assert "restarting playing" in played.stdout  # inactive for a moment while it is started again
    assert "stopped stalled" in played.stdout  # a stream that stopped for good is still told apart
