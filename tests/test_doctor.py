"""`voicechat doctor` and `voicechat devices` on this machine, through the real CLI."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
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


def test_devices_lists_or_says_there_are_none() -> None:
    from voicechat.audio.devices import list_devices

    result = run_cli("devices")
    assert result.returncode == 0
    found = list_devices()
    if found:
        assert found[0].name.encode()[:20] in result.stdout
    else:
        assert b"no audio devices found" in result.stderr
