"""`voicechat voices new`: a cloning voice from a real recording (Piper speech), checked, trimmed and transcribed."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import run_cli, word_error_rate
from tests.live_rig import Devices, microphone  # noqa: F401 (a fixture)

READING = ("The old lighthouse keeper climbed the narrow stairs every evening to light the lamp. "
           "He never missed a single night in forty years, even in the worst storms.")


def padded(source: Path, target: Path, before: float, after: float, noise_dbfs: float | None = None) -> Path:
    """The recording with silence (or steady noise) around it, as a real take has."""
    samples, rate = soundfile.read(source, dtype="float32")
    audio = np.concatenate([np.zeros(int(before * rate), np.float32), samples, np.zeros(int(after * rate), np.float32)])
    if noise_dbfs is not None:
        noise = np.random.default_rng(7).standard_normal(len(audio)).astype(np.float32)
        audio = audio + noise * 10 ** (noise_dbfs / 20)
    soundfile.write(target, audio, rate)
    return target


def rms_dbfs(samples: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))))


@pytest.fixture
def reading(make_speech: Callable[[str, str], Path], tmp_path: Path) -> Path:
    speech = make_speech(READING, "reading.wav")
    assert 6.0 <= soundfile.info(speech).duration <= 10.0
    return padded(speech, tmp_path / "take.wav", before=1.5, after=2.0)


@pytest.mark.slow
def test_a_voice_from_a_recording_is_trimmed_normalized_and_transcribed(reading: Path, voicechat_home: Path) -> None:
    result = run_cli("voices", "new", "keeper", "--from", str(reading))
    assert result.returncode == 0, result.stderr.decode()
    folder = voicechat_home / "voices"
    text = (folder / "keeper.txt").read_text().strip()
    assert word_error_rate(READING, text) <= 0.15, text
    assert f'Whisper heard: "{text}"' in result.stderr.decode()
    audio, rate = soundfile.read(folder / "keeper.wav", dtype="float32")
    assert rate == 24000 and audio.ndim == 1
    speech_seconds = soundfile.info(reading).duration - 3.5
    assert speech_seconds - 0.1 <= len(audio) / rate <= speech_seconds + 0.5  # the 3.5 s of silence is gone
    assert float(np.max(np.abs(audio))) <= 10 ** (-1 / 20) + 1e-3
    assert rms_dbfs(audio) == pytest.approx(-20.0, abs=1.0) or float(np.max(np.abs(audio))) > 0.85
    shown = run_cli("voices", "show", "keeper")
    assert shown.returncode == 0, shown.stderr.decode()
    assert f"reference: {folder / 'keeper.wav'}" in shown.stdout.decode()
    assert f"reference: {folder / 'keeper.txt'}" in shown.stdout.decode()
    assert 'model = "en_US-joe-medium"' in shown.stdout.decode()
    again = run_cli("voices", "new", "keeper", "--from", str(reading), "--text", "x")
    assert again.returncode == 2 and "pass --force" in again.stderr.decode()


@pytest.mark.slow
def test_given_text_is_kept_and_cloning_engines_get_the_reference(reading: Path, voicechat_home: Path) -> None:
    from voicechat.config.store import load_voice
    from voicechat.tts.higgs.prompt import voice_prompt

    result = run_cli("voices", "new", "keeper", "--from", str(reading), "--text", "  The keeper's words.  ",
                     "--description", "An old man, slow and kind.")
    assert result.returncode == 0, result.stderr.decode()
    assert "Whisper heard" not in result.stderr.decode()
    prompt = voice_prompt(load_voice("keeper"))
    assert prompt.reference_audio == voicechat_home / "voices" / "keeper.wav"
    assert prompt.reference_text == "The keeper's words."
    assert prompt.description == "An old man, slow and kind."


@pytest.mark.slow
def test_say_with_piper_falls_back_to_the_voice_s_piper_model_with_a_note(reading: Path, tmp_path: Path) -> None:
    assert run_cli("voices", "new", "keeper", "--from", str(reading), "--text", "words").returncode == 0
    target = tmp_path / "said.wav"
    result = run_cli("say", "Good evening.", "--voice", "keeper", "--engine", "piper", "-o", str(target))
    assert result.returncode == 0, result.stderr.decode()
    assert "piper cannot clone a recording: voice 'keeper' speaks with its Piper model en_US-joe-medium" in (
        result.stderr.decode())
    assert soundfile.info(target).duration > 0.3


@pytest.mark.slow
def test_a_one_second_clip_is_refused(make_speech: Callable[[str, str], Path], voicechat_home: Path) -> None:
    clip = make_speech("Hello there.", "short.wav")
    assert soundfile.info(clip).duration < 1.6
    result = run_cli("voices", "new", "short", "--from", str(clip))
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "s of speech; a voice needs 5-20 s: record a longer one" in lines[0], lines
    assert not (voicechat_home / "voices").exists() or not list((voicechat_home / "voices").iterdir())


def test_a_silent_file_is_refused(tmp_path: Path, voicechat_home: Path) -> None:
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000 * 8, np.float32), 16000)
    result = run_cli("voices", "new", "quiet", "--from", str(silent))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (f"error: {silent}: no speech found in it; record 5-20 s of yourself "
                                              "(or the voice) talking")
    assert not (voicechat_home / "voices" / "quiet.toml").exists()


@pytest.mark.slow
def test_noise_under_the_speech_is_refused_but_a_quiet_room_is_not(make_speech: Callable[[str, str], Path],
                                                                     tmp_path: Path) -> None:
    from voicechat.audio.reference import ReferenceAudioError, prepare_reference

    speech = make_speech(READING, "reading.wav")
    for noise, accepted in ((-70.0, True), (-28.0, False)):
        take = padded(speech, tmp_path / f"noise{noise}.wav", 1.0, 1.0, noise_dbfs=noise)
        samples, rate = soundfile.read(take, dtype="float32")
        if accepted:
            reference = prepare_reference(samples, rate, str(take))
            assert reference.snr_db is not None and reference.snr_db > 30
        else:
            with pytest.raises(ReferenceAudioError, match="too noisy"):
                prepare_reference(samples, rate, str(take))


def test_bad_usage_fails_before_any_work(tmp_path: Path) -> None:
    neither = run_cli("voices", "new", "x")
    assert neither.returncode == 2 and "--from FILE (a recording) or --record SECONDS" in neither.stderr.decode()
    both = run_cli("voices", "new", "x", "--from", "a.wav", "--record", "6")
    assert both.returncode == 2
    bad_name = run_cli("voices", "new", "../evil", "--from", "a.wav")
    assert bad_name.returncode == 2 and "voice name '../evil'" in bad_name.stderr.decode()
    missing = run_cli("voices", "new", "x", "--from", str(tmp_path / "nope.wav"))
    assert missing.returncode == 1 and "no such file" in missing.stderr.decode()


NO_PULSE = {"PULSE_SERVER": "unix:/nonexistent"}  # PortAudio then sees no PulseAudio (the audio rig's) devices


def test_recording_without_a_microphone_fails_in_one_line() -> None:
    if "in " in run_cli("devices", env=NO_PULSE).stdout.decode().split("\n", 1)[0]:
        pytest.skip("this machine has a sound card besides PulseAudio")
    result = run_cli("voices", "new", "me", "--record", "6", env=NO_PULSE)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == ("error: no microphone found to record from: give a recording with "
                                              "--from FILE instead")


@pytest.mark.slow
def test_a_voice_recorded_from_the_microphone(microphone: Devices,  # noqa: F811 (the fixture)
                                             make_speech: Callable[[str, str], Path], voicechat_home: Path) -> None:
    """The real --record path: PulseAudio's virtual microphone hears the reading while the countdown ends."""
    speech = make_speech(READING, "reading.wav")
    command = [sys.executable, "-m", "voicechat", "voices", "new", "me", "--record", "11"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, **microphone.env}) as process:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(3)]
        assert [line.strip().rsplit(" ", 1)[-1] for line in lines] == ["3…", "2…", "1…"], lines
        time.sleep(1.5)  # the countdown's last second, then some room noise before the speech
        microphone.speak(speech)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 0, rest
    assert "recorded 11.0 s" in rest
    text = (voicechat_home / "voices" / "me.txt").read_text()
    assert word_error_rate(READING, text) <= 0.2, text
    audio, rate = soundfile.read(voicechat_home / "voices" / "me.wav", dtype="float32")
    assert 5.0 <= len(audio) / rate <= soundfile.info(speech).duration + 0.5
