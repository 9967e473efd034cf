"""`voicechat doctor` and `voicechat devices` on this machine, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NO_AUDIO_SERVER, devices_of_a_new_process, run_cli
from voicechat.doctor import run_checks


def test_doctor_passes_the_embedded_defaults_and_reports_the_missing_key() -> None:
    result = run_cli("doctor")
    text = result.stdout.decode()
    assert result.returncode == 0, text + result.stderr.decode()
    for name in ("Piper voice", "Whisper tiny.en", "faster-whisper", "PortAudio", "default profile"):
        assert f"ok   {name}" in text
    assert "warn API key (OPENROUTER_API_KEY): not set" in text
    assert "export OPENROUTER_API_KEY=" in text


def test_doctor_sees_the_key_without_printing_it() -> None:
    secret = "sk-or-test-0123456789abcdef"
    result = run_cli("doctor", env={"OPENROUTER_API_KEY": secret})
    assert b"ok   API key (OPENROUTER_API_KEY): set" in result.stdout
    assert secret.encode() not in result.stdout + result.stderr


def test_doctor_fails_on_a_broken_profile(voicechat_home: Path) -> None:
    (voicechat_home / "profiles").mkdir()
    (voicechat_home / "profiles" / "default.toml").write_text("[llm]\ntop_p = 9\n")
    result = run_cli("doctor")
    assert result.returncode == 1
    assert b"FAIL default profile" in result.stdout
    assert b"llm.top_p = 9" in result.stdout


def test_every_check_names_a_fix_when_it_fails() -> None:
    for check in run_checks():
        assert check.ok or check.fix, check


def test_devices_lists_what_a_new_process_sees() -> None:
    result = run_cli("devices")
    assert result.returncode == 0, result.stderr.decode()
    found = devices_of_a_new_process()
    listed = result.stdout.decode().splitlines()[1:]
    assert len(listed) == len(found)
    for line, (name, inputs, outputs) in zip(listed, found, strict=True):
        assert name[:20] in line and f" {inputs} " in line and f" {outputs} " in line


def test_no_devices_is_said_plainly() -> None:
    if devices_of_a_new_process(NO_AUDIO_SERVER):
        pytest.skip("this machine has sound cards of its own")
    result = run_cli("devices", env=NO_AUDIO_SERVER)
    assert result.returncode == 0 and result.stdout == b""
    assert b"no audio devices found" in result.stderr
