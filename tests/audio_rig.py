"""Real audio devices for tests: PulseAudio's virtual speakers, microphone and room echo (scripts/audio-rig).

`voicechat talk` under test plays on the default sink `spk` and records from the default source `mic`; the
test speaks into the microphone by playing a WAV into `micfeed`, listens to the speakers on `spk.monitor`
(as they play, with the moments they were loud), and sets the echo (speakers -> microphone) in dB. Where
the rig cannot start (no PulseAudio, not root) the tests that need it skip, unless
VOICECHAT_REQUIRE_AUDIO_RIG=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RIG = REPO / "scripts" / "audio-rig"
RECORD_RATE = 16000


def _rig(*args: str, prefix: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(RIG), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "AUDIO_RIG_PREFIX": prefix})


def rig_problem(prefix: str = "") -> str | None:
    """None when the rig is up (starting it if it can), else why not."""
    if _rig("status", prefix=prefix).returncode == 0:
        return None
    if not shutil.which("pulseaudio") or not shutil.which("pactl") or not shutil.which("parecord"):
        return "PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    if os.geteuid() != 0:
        return "the audio rig starts PulseAudio as root; run scripts/audio-rig up yourself"
    started = _rig("up", prefix=prefix)
    return None if started.returncode == 0 else f"scripts/audio-rig up failed: {started.stderr.strip()}"


class SpeakerMonitor:
    """What the speakers play, read live from `spk.monitor`: the audio so far, and when it was loud."""

    BLOCK = 320  # 20 ms at 16 kHz

    def __init__(self, source: str = "spk.monitor") -> None:
        self.pcm = bytearray()
        self.loud: list[tuple[float, bool]] = []  # (monotonic time the block was read, louder than -45 dBFS)
        self.levels: list[tuple[float, float]] = []  # (the same time, the block's level in dBFS)
        self._process = subprocess.Popen(
            ["parec", "-d", source, f"--rate={RECORD_RATE}", "--channels=1", "--format=s16le",
             "--latency-msec=20"], stdout=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        import numpy as np

        assert self._process.stdout is not None
        while block := self._process.stdout.read(2 * self.BLOCK):
            samples = np.frombuffer(block, dtype=np.int16).astype(np.float32) / 32768
            self.pcm += block
            rms, now = float(np.sqrt(np.mean(samples * samples))), time.monotonic()
            self.loud.append((now, rms > 10 ** (-45 / 20)))
            self.levels.append((now, 20 * float(np.log10(rms + 1e-9))))

    def wait_until_listening(self, timeout: float = 10.0) -> None:
        """Return once the recording has delivered its first block (parec takes a while on a new sink)."""
        deadline = time.monotonic() + timeout
        while not self.loud and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.loud, f"nothing was recorded from the speakers in {timeout:g} s"

    def wait_for_sound(self, timeout: float) -> float | None:
        """The moment the speakers first played something (after this call), or None."""
        start = len(self.loud)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for moment, loud in self.loud[start:]:
                if loud:
                    return moment
            time.sleep(0.02)
        return None

    def silent_from(self, after: float, quiet: float = 0.3) -> float | None:
        """The first moment after `after` from which the speakers stayed silent for `quiet` seconds."""
        run_start: float | None = None
        for moment, loud in self.loud:
            if moment < after:
                continue
            if loud:
                run_start = None
            elif run_start is None:
                run_start = moment
            elif moment - run_start >= quiet:
                return run_start
        return None

    def turned_down_from(self, after: float, drop: float = 8.0, before: float = 1.0) -> float | None:
        """The first moment after `after` when the speakers played `drop` dB under their median level of the
        `before` seconds until then (over 60 ms: a pause between words is shorter than that), or None."""
        import statistics

        playing = [db for moment, db in self.levels if after - before <= moment < after and db > -45]
        if not playing:
            return None
        limit = statistics.median(playing) - drop
        later = [(moment, db) for moment, db in self.levels if moment >= after]
        for index in range(len(later) - 2):
            if all(db < limit for _, db in later[index : index + 3]):
                return later[index][0]
        return None

    def stop(self, target: Path) -> Path:
        """End the recording and keep it as a WAV."""
        self._process.terminate()
        self._process.wait(timeout=10)
        self._reader.join(timeout=5)
        with wave.open(str(target), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(RECORD_RATE)
            handle.writeframes(bytes(self.pcm))
        return target


class AudioRig:
    """The devices of one test session (`prefix`: a private set, see scripts/audio-rig)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.speakers, self.microphone = f"{prefix}spk", f"{prefix}mic"

    def echo(self, db: float | None) -> None:
        """Speakers -> microphone at `db` (None: no echo, like headphones)."""
        result = _rig("echo", "off" if db is None else f"{db:g}", prefix=self.prefix)
        assert result.returncode == 0, result.stderr

    def speak(self, wav: Path) -> subprocess.Popen[bytes]:
        """Play `wav` into the microphone; returns the running paplay."""
        return subprocess.Popen(["paplay", "-d", f"{self.prefix}micfeed", str(wav)])

    def speak_and_wait(self, wav: Path) -> None:
        assert self.speak(wav).wait(timeout=60) == 0

    def monitor(self) -> SpeakerMonitor:
        """Start listening to the speakers."""
        return SpeakerMonitor(f"{self.speakers}.monitor")


def open_rig(prefix: str = "") -> Iterator[AudioRig]:
    """The body of a rig fixture: the rig with no echo, or a skip (a failure under CI) saying why there is none.

    With a `prefix` the rig is a private set of devices, made this process's (and its children's) defaults
    through PULSE_SINK and PULSE_SOURCE, so tests of other modules running beside it do not hear it.
    """
    problem = rig_problem(prefix)
    if problem is not None:
        if os.environ.get("VOICECHAT_REQUIRE_AUDIO_RIG") == "1":
            pytest.fail(f"the audio rig is required here: {problem}")
        pytest.skip(problem)
    rig = AudioRig(prefix)
    saved = {name: os.environ.get(name) for name in ("PULSE_SINK", "PULSE_SOURCE")}
    if prefix:
        os.environ.update(PULSE_SINK=rig.speakers, PULSE_SOURCE=rig.microphone)
    rig.echo(None)
    try:
        yield rig
    finally:
        rig.echo(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
