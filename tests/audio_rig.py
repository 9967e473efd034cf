"""Real audio devices for tests: PulseAudio's virtual speakers, microphone and room echo (scripts/audio-rig).

`voicechat talk` under test plays on the default sink `spk` and records from the default source `mic`; the
test speaks into the microphone by playing a WAV into `micfeed`, records what the speakers played from
`spk.monitor`, and sets the echo (speakers -> microphone) in dB. Where the rig cannot start (no PulseAudio,
not root) the tests that need it skip, unless VOICECHAT_REQUIRE_AUDIO_RIG=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RIG = REPO / "scripts" / "audio-rig"
RECORD_RATE = 16000


def _rig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(RIG), *args], capture_output=True, text=True, timeout=60)


def rig_problem() -> str | None:
    """None when the rig is up (starting it if it can), else why not."""
    if _rig("status").returncode == 0:
        return None
    if not shutil.which("pulseaudio") or not shutil.which("pactl") or not shutil.which("parecord"):
        return "PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    if os.geteuid() != 0:
        return "the audio rig starts PulseAudio as root; run scripts/audio-rig up yourself"
    started = _rig("up")
    return None if started.returncode == 0 else f"scripts/audio-rig up failed: {started.stderr.strip()}"


@dataclass
class Recording:
    path: Path

    def samples(self):  # type: ignore[no-untyped-def]
        import numpy as np

        with wave.open(str(self.path)) as handle:
            return np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16).astype(np.float32) / 32768


class AudioRig:
    """The devices of one test session."""

    def echo(self, db: float | None) -> None:
        """Speakers -> microphone at `db` (None: no echo, like headphones)."""
        result = _rig("echo", "off" if db is None else f"{db:g}")
        assert result.returncode == 0, result.stderr

    def speak(self, wav: Path) -> subprocess.Popen[bytes]:
        """Play `wav` into the microphone; returns the running paplay."""
        return subprocess.Popen(["paplay", "-d", "micfeed", str(wav)])

    def speak_and_wait(self, wav: Path) -> None:
        assert self.speak(wav).wait(timeout=60) == 0

    @contextmanager
    def recording(self, target: Path, source: str = "spk.monitor") -> Iterator[Recording]:
        """Record what the speakers play (or another source) while the block runs."""
        process = subprocess.Popen(["parecord", "-d", source, f"--rate={RECORD_RATE}", "--channels=1",
                                    "--format=s16le", "--file-format=wav", str(target)])
        time.sleep(0.3)  # parecord connects before the block plays anything
        try:
            yield Recording(target)
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def audio_rig() -> Iterator[AudioRig]:
    problem = rig_problem()
    if problem is not None:
        if os.environ.get("VOICECHAT_REQUIRE_AUDIO_RIG") == "1":
            pytest.fail(f"the audio rig is required here: {problem}")
        pytest.skip(problem)
    rig = AudioRig()
    rig.echo(None)
    yield rig
    rig.echo(None)
