"""PulseAudio's virtual microphone and speakers (scripts/audio-rig) as the history/voices tests use them."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.audio_rig import REPO, rig_problem


@pytest.fixture
def microphone() -> None:
    """The rig is up and the speakers are not heard by the microphone (headphones); skips where it cannot run."""
    problem = rig_problem()
    if problem is not None:
        if os.environ.get("VOICECHAT_REQUIRE_AUDIO_RIG") == "1":
            pytest.fail(f"the audio rig is required here: {problem}")
        pytest.skip(problem)
    subprocess.run(["bash", str(REPO / "scripts" / "audio-rig"), "echo", "off"], check=True, capture_output=True)


def speak(wav: Path) -> None:
    """Play `wav` into the microphone and wait until it is said."""
    subprocess.run(["paplay", "-d", "micfeed", str(wav)], check=True, timeout=60)


def listening(pid: int, timeout: float = 120) -> None:
    """Wait until process `pid` has its recording stream open on PulseAudio."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(["pactl", "list", "source-outputs"], capture_output=True, text=True).stdout
        if f'application.process.id = "{pid}"' in listed:
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} opened no microphone stream within {timeout} s")


class SpeakerRecording:
    """What the speakers play, recorded to a WAV from `spk.monitor` between start() and stop()."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self._process = subprocess.Popen(["parecord", "-d", "spk.monitor", "--rate=16000", "--channels=1",
                                          "--format=s16le", "--file-format=wav", str(target)])
        time.sleep(0.3)  # connected before anything plays

    def stop(self) -> Path:
        self._process.terminate()
        self._process.wait(timeout=10)
        return self.target
