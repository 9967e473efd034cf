"""`voicechat transcribe` end to end: real Piper speech, the bundled tiny.en model, the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pysubs2
import pytest
import soundfile

from tests.conftest import run_cli, synthesize_wav, word_error_rate
from tests.test_decode import encode_audio, stereo_48k

pytestmark = pytest.mark.slow

TEXTS = {
    "fox": "The quick brown fox jumps over the lazy dog.",
    "stella": "Please call Stella and ask her to bring these things from the store.",
    "snake": "We also need a small plastic snake and a big toy frog for the kids.",
}
MAX_WER = 0.25


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    for name, text in TEXTS.items():
        synthesize_wav(text, folder / f"{name}.wav")
    return folder


def _copy(speech_dir: Path, target: Path, *names: str) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(speech_dir / f"{name}.wav", target / f"{name}.wav")) for name in names]


def _stderr(result: object) -> str:
    return result.stderr.decode()  # type: ignore[attr-defined, no-any-return]


def test_json_with_word_timestamps_for_a_folder(speech_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("transcribe", str(speech_dir), "-o", str(out), "-f", "json", "--word-timestamps")
    assert result.returncode == 0, _stderr(result)
    assert result.stderr == b"" and result.stdout == b""  # quiet when stderr is not a terminal
    assert sorted(p.name for p in out.iterdir()) == ["fox.json", "snake.json", "stella.json"]
    for name, text in TEXTS.items():
        data = json.loads((out / f"{name}.json").read_text())
        assert data["file"] == str(speech_dir / f"{name}.wav") and data["language"] == "en"
        assert data["duration"] == pytest.approx(soundfile.info(speech_dir / f"{name}.wav").duration, abs=0.01)
        assert word_error_rate(text, data["text"]) <= MAX_WER, data["text"]
        words = [word for segment in data["segments"] for word in segment["words"]]
        assert len(words) >= len(text.split()) - 2
        starts = [word["start"] for word in words]
        assert starts == sorted(starts) and words[-1]["end"] <= data["duration"] + 0.1
        assert all(0.0 <= word["probability"] <= 1.0 for word in words)


def test_srt_beside_the_inputs_and_vtt_on_stdout(speech_dir: Path, tmp_path: Path) -> None:
    fox, stella = _copy(speech_dir, tmp_path, "fox", "stella")
    result = run_cli("transcribe", str(fox), str(stella), "--format", "srt")
    assert result.returncode == 0, _stderr(result)
    for source, text in ((fox, TEXTS["fox"]), (stella, TEXTS["stella"])):
        subs = pysubs2.load(str(source.with_suffix(".srt")))
        assert len(subs) >= 1 and subs[0].start >= 0 and subs[-1].end <= 6_000
        assert word_error_rate(text, " ".join(event.plaintext for event in subs)) <= MAX_WER
    vtt = run_cli("transcribe", str(fox), "-f", "vtt", "-o", "-")
    assert vtt.returncode == 0, _stderr(vtt)
    assert vtt.stdout.startswith(b"WEBVTT")
    subs = pysubs2.SSAFile.from_string(vtt.stdout.decode())
    assert word_error_rate(TEXTS["fox"], " ".join(event.plaintext for event in subs)) <= MAX_WER
    assert not (tmp_path / "fox.vtt").exists()


def test_stdout_txt_and_json_lines_keep_input_order(speech_dir: Path) -> None:
    names = ["stella", "fox", "snake"]
    paths = [str(speech_dir / f"{name}.wav") for name in names]
    text = run_cli("transcribe", *paths, "-o", "-")
    assert text.returncode == 0, _stderr(text)
    lines = text.stdout.decode().splitlines()
    assert len(lines) == 3
    for name, line in zip(names, lines, strict=True):
        assert word_error_rate(TEXTS[name], line) <= MAX_WER, line
    jsonl = run_cli("transcribe", *paths[:2], "-o", "-", "-f", "json")
    assert jsonl.returncode == 0, _stderr(jsonl)
    records = [json.loads(line) for line in jsonl.stdout.decode().splitlines()]
    assert [record["file"] for record in records] == paths[:2]


def test_stereo_48k_and_compressed_formats(speech_dir: Path, tmp_path: Path) -> None:
    samples, rate = soundfile.read(speech_dir / "snake.wav", dtype="float32")
    folder = tmp_path / "in"
    folder.mkdir()
    soundfile.write(folder / "stereo48.wav", stereo_48k(samples, rate, right_gain=0.6), 48_000)
    encode_audio(stereo_48k(samples, rate, right_gain=1.0), 48_000, folder / "stereo48_flac.flac", "flac", "flac")
    encode_audio(samples, rate, folder / "lame.mp3", "mp3", "libmp3lame")
    encode_audio(samples, rate, folder / "opus.ogg", "ogg", "libopus", 48_000)
    encode_audio(samples, rate, folder / "aac.m4a", "ipod", "aac")
    low = np.interp(np.arange(0, len(samples), rate / 8_000), np.arange(len(samples)), samples)
    soundfile.write(folder / "phone8k.wav", low.astype(np.float32), 8_000)
    out = tmp_path / "out"
    result = run_cli("transcribe", str(folder), "-o", str(out))
    assert result.returncode == 0, _stderr(result)
    expected = ["aac.txt", "lame.txt", "opus.txt", "phone8k.txt", "stereo48.txt", "stereo48_flac.txt"]
    assert sorted(p.name for p in out.iterdir()) == expected
    for path in out.iterdir():
        assert word_error_rate(TEXTS["snake"], path.read_text()) <= MAX_WER, (path.name, path.read_text())


def _bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    bad = {
        "missing": folder / "missing.wav",
        "zero": folder / "zero.wav",
        "random": folder / "random.mp3",
        "text": folder / "notes.wav",
        "no_audio_dir": folder / "just-text",
    }
    bad["zero"].touch()
    bad["random"].write_bytes(np.random.default_rng(3).integers(0, 256, 30_000, dtype=np.uint8).tobytes())
    bad["text"].write_text("minutes of the meeting\n" * 50)
    bad["no_audio_dir"].mkdir()
    (bad["no_audio_dir"] / "readme.txt").write_text("no audio here")
    return bad


def test_good_and_bad_inputs_exit_1_with_good_outputs(speech_dir: Path, tmp_path: Path) -> None:
    good = _copy(speech_dir, tmp_path / "good", "fox", "stella")
    bad = _bad_inputs(tmp_path / "bad")
    out = tmp_path / "out"
    args = [str(good[0]), *(str(p) for p in bad.values()), str(good[1])]
    result = run_cli("transcribe", *args, "-o", str(out), "-f", "json")
    assert result.returncode == 1
    errors = [line for line in _stderr(result).splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad), _stderr(result)
    for path in bad.values():
        assert sum(str(path) in line for line in errors) == 1, (path, errors)
    assert "5 of 7 inputs failed" in _stderr(result)
    # the good files were transcribed, nothing else (no half-written or temporary files) is left
    assert sorted(p.name for p in out.iterdir()) == ["fox.json", "stella.json"]
    assert word_error_rate(TEXTS["stella"], json.loads((out / "stella.json").read_text())["text"]) <= MAX_WER


def test_existing_outputs_are_kept(speech_dir: Path, tmp_path: Path) -> None:
    (fox,) = _copy(speech_dir, tmp_path, "fox")
    fox.with_suffix(".txt").write_text("old transcript\n")
    kept = run_cli("transcribe", str(fox))
    assert kept.returncode == 0 and "--overwrite" in _stderr(kept)
    assert fox.with_suffix(".txt").read_text() == "old transcript\n"
    replaced = run_cli("transcribe", str(fox), "--overwrite")
    assert replaced.returncode == 0, _stderr(replaced)
    assert word_error_rate(TEXTS["fox"], fox.with_suffix(".txt").read_text()) <= MAX_WER


def test_output_folder_that_cannot_be_made(speech_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_cli("transcribe", str(speech_dir / "fox.wav"), "-o", str(blocker / "sub"))
    assert result.returncode == 1
    lines = _stderr(result).strip().splitlines()
    assert len(lines) == 1 and str(blocker / "sub") in lines[0], lines


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders")
def test_unwritable_folder_beside_an_input(speech_dir: Path, tmp_path: Path) -> None:
    (locked,) = _copy(speech_dir, tmp_path / "locked", "fox")
    (good,) = _copy(speech_dir, tmp_path / "open", "stella")
    locked.parent.chmod(0o555)
    try:
        result = run_cli("transcribe", str(locked), str(good))
    finally:
        locked.parent.chmod(0o755)
    assert result.returncode == 1 and str(locked) in _stderr(result) and "not writable" in _stderr(result)
    assert good.with_suffix(".txt").exists() and not locked.with_suffix(".txt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "docx"], "unknown --format"),
        (["--engine", "telepathy"], "unknown STT engine"),
        (["--model", "enormous"], "unknown Whisper model"),
        (["--base-url", "http://127.0.0.1:9/v1"], "--engine openai"),
        (["--language", "xx"], "knows English only"),
    ],
)
def test_bad_usage_exits_2(speech_dir: Path, args: list[str], message: str) -> None:
    result = run_cli("transcribe", str(speech_dir / "fox.wav"), "-o", "-", *args)
    assert result.returncode == 2, _stderr(result)
    assert message in _stderr(result) and result.stdout == b""


def test_several_subtitle_files_to_stdout_is_usage(speech_dir: Path) -> None:
    result = run_cli("transcribe", str(speech_dir), "-f", "srt", "-o", "-")
    assert result.returncode == 2 and "-o DIR" in _stderr(result)


def test_missing_model_folder_fails_fast(speech_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    result = run_cli("transcribe", str(speech_dir / "fox.wav"), "--model", str(missing), "-o", "-", timeout=60)
    assert result.returncode == 1
    assert _stderr(result).count("\n") == 1 and str(missing) in _stderr(result)


def test_size_name_offline_is_one_error_not_a_hang(speech_dir: Path, tmp_path: Path) -> None:
    """The real download path, with the Hugging Face client told to stay offline: no network is touched."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = run_cli("transcribe", str(speech_dir / "fox.wav"), "--model", "small.en", "-o", "-", env=env, timeout=60)
    assert result.returncode == 1
    lines = [line for line in _stderr(result).splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cannot download Whisper model 'small.en'" in lines[0], _stderr(result)


def test_progress_only_when_stderr_is_a_terminal(speech_dir: Path, tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "120"}
    process = subprocess.Popen([sys.executable, "-m", "voicechat", "transcribe", str(speech_dir), "-o", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=terminal, env=env)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=120) == 0
    os.close(controller)
    text = seen.decode(errors="replace")
    assert "3/3" in text and "s of audio" in text and "real time" in text
    assert len(list(tmp_path.iterdir())) == 3
