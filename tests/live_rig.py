"""Private virtual audio devices on the rig's PulseAudio (scripts/audio-rig), one set per test.

Each test gets its own speakers, and a microphone fed by its own sink, and points the program under test at
them with PULSE_SINK / PULSE_SOURCE (PortAudio reaches PulseAudio through ALSA's default device). So two
tests that play audio at the same time, or a room echo another test turned on, never reach each other.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.audio_rig import rig_problem

_names = itertools.count()


def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, check=True).stdout.strip()


@dataclass
class Devices:
    speakers: str  # a sink: record `<speakers>.monitor` to hear what was played
    feed: str  # a sink: what plays into it, the microphone hears
    microphone: str  # a source
    modules: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The environment that makes a program play on these speakers and record from this microphone."""
        return {"PULSE_SINK": self.speakers, "PULSE_SOURCE": self.microphone}

    def speak(self, wav: Path) -> None:
        """Play `wav` into the microphone and wait until it is said."""
        subprocess.run(["paplay", "-d", self.feed, str(wav)], check=True, timeout=60)


@pytest.fixture
def microphone() -> Iterator[Devices]:
    problem = rig_problem()
    if problem is not None:
        if os.environ.get("VOICECHAT_REQUIRE_AUDIO_RIG") == "1":
            pytest.fail(f"the audio rig is required here: {problem}")
        pytest.skip(problem)
    tag = f"t{os.getpid()}x{next(_names)}"
    devices = Devices(f"{tag}spk", f"{tag}feed", f"{tag}mic")
    try:
        devices.modules.append(_pactl("load-module", "module-null-sink", f"sink_name={devices.speakers}"))
        devices.modules.append(_pactl("load-module", "module-null-sink", f"sink_name={devices.feed}"))
        devices.modules.append(_pactl("load-module", "module-remap-source", f"master={devices.feed}.monitor",
                                      f"source_name={devices.microphone}"))
        yield devices
    finally:
        for module in reversed(devices.modules):
            subprocess.run(["pactl", "unload-module", module], capture_output=True)


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
    """What `devices`' speakers play, recorded to a WAV between the start and stop()."""

    def __init__(self, devices: Devices, target: Path) -> None:
        self.target = target
        self._process = subprocess.Popen(["parecord", "-d", f"{devices.speakers}.monitor", "--rate=16000",
                                          "--channels=1", "--format=s16le", "--file-format=wav", str(target)])
        time.sleep(0.3)  # connected before anything plays

    def stop(self) -> Path:
        self._process.terminate()
        self._process.wait(timeout=10)
        return self.target
