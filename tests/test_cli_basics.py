"""The CLI as a user meets it: help, listings, and every bad input of `say` through a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NO_AUDIO_SERVER, devices_of_a_new_process, run_cli

HEAVY = ("torch", "numpy", "faster_whisper", "RealtimeSTT", "boson_multimodal", "piper", "llama_cpp", "openai")


def test_help_lists_every_command_and_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from voicechat.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("talk", "say", "transcribe", "voices", "profiles", "characters", "devices", "doctor"):
        assert command in result.stdout
    assert result.stdout.strip().endswith("HEAVY=")


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(b"voicechat ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("profiles", "list"), b"ollama"),
        (("profiles", "show", "vllm"), b'base_url = "http://127.0.0.1:8000/v1"'),
        (("characters", "list"), b"Captain Reyes"),
        (("characters", "show", "lydia"), b'voice = "lydia"'),
        (("voices", "list"), b"lydia"),
        (("voices", "show", "joe"), b'model = "en_US-joe-medium"'),
    ],
)
def test_listings(args: tuple[str, ...], expected: bytes) -> None:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_profiles_show_reports_environment_overrides() -> None:
    result = run_cli("profiles", "show", env={"VOICECHAT_LLM_MODEL": "my/model"})
    assert result.returncode == 0
    assert b'model = "my/model"' in result.stdout
    assert b"VOICECHAT_LLM_MODEL" in result.stdout


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], code: int, *needles: bytes) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert b"Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_say_unknown_voice_lists_known_ones(tmp_path: Path) -> None:
    result = run_cli("say", "hello", "--voice", "nobody", "-o", str(tmp_path / "x.wav"))
    assert_one_line_error(result, 2, b"unknown voice 'nobody'", b"joe", b"lydia")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["", "   ", "-"])
def test_say_empty_text(tmp_path: Path, text: str) -> None:
    result = run_cli("say", text, "-o", str(tmp_path / "x.wav"), input=b"\n")
    assert_one_line_error(result, 2, b"nothing to say")
    assert list(tmp_path.iterdir()) == []


def test_say_unwritable_output(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    missing = run_cli("say", "hello", "-o", str(tmp_path / "nowhere" / "x.wav"))
    assert_one_line_error(missing, 1, b"does not exist")
    if not os.access(locked, os.W_OK):  # root can write anywhere
        denied = run_cli("say", "hello", "-o", str(locked / "x.wav"))
        assert_one_line_error(denied, 1, b"not writable")
    is_dir = run_cli("say", "hello", "-o", str(tmp_path))
    assert_one_line_error(is_dir, 1, b"is a directory")


def test_say_broken_profile_names_file_and_line(tmp_path: Path, voicechat_home: Path) -> None:
    (voicechat_home / "profiles").mkdir()
    (voicechat_home / "profiles" / "default.toml").write_text("[tts\nvoice = 'joe'\n")
    result = run_cli("say", "hello", "-o", str(tmp_path / "x.wav"))
    assert_one_line_error(result, 2, b"default.toml", b"line 1")
    assert not (tmp_path / "x.wav").exists()


def test_say_unknown_key_and_out_of_range(tmp_path: Path, voicechat_home: Path) -> None:
    profiles = voicechat_home / "profiles"
    profiles.mkdir()
    (profiles / "typo.toml").write_text("[tts]\nvoise = 'joe'\n")
    (voicechat_home / "voices").mkdir()
    (voicechat_home / "voices" / "fast.toml").write_text("[piper]\nlength_scale = 9.0\n")
    typo = run_cli("say", "hello", "-p", "typo", "-o", str(tmp_path / "x.wav"))
    assert_one_line_error(typo, 2, b"unknown key 'tts.voise'")
    fast = run_cli("say", "hello", "-v", "fast", "-o", str(tmp_path / "x.wav"))
    assert_one_line_error(fast, 2, b"fast.toml", b"piper.length_scale = 9.0", b"allowed: 0.25 <= length_scale <= 4.0")
    assert list(tmp_path.iterdir()) == []


def test_say_unknown_engine(tmp_path: Path) -> None:
    result = run_cli("say", "hello", "--engine", "espeak", "-o", str(tmp_path / "x.wav"))
    assert_one_line_error(result, 2, b"unknown TTS engine 'espeak'", b"piper")


def test_say_without_output_device_suggests_a_file() -> None:
    if any(outputs > 0 for _, _, outputs in devices_of_a_new_process(NO_AUDIO_SERVER)):
        pytest.skip("this machine has an output device of its own; the error only shows where there is none")
    result = run_cli("say", "hello", env=NO_AUDIO_SERVER)
    assert_one_line_error(result, 1, b"no audio output device", b"-o out.wav")
