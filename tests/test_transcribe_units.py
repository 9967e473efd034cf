"""The parts of `voicechat transcribe` that need no model: formats, planning, model resolution, parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pysubs2
import pytest

from tests.conftest import bundled_whisper_dir
from voicechat.errors import UsageError
from voicechat.stt.base import Clip, Segment, TranscribeOptions, Transcription, Word
from voicechat.stt.faster_whisper import plan_workers
from voicechat.stt.models import ModelError, resolve_model
from voicechat.stt.openai_stt import parse_verbose_json
from voicechat.transcription.formats import render
from voicechat.transcription.inputs import plan
from voicechat.transcription.memory import retain_freed_memory

WORDS = (Word(0.0, 0.4, "Hello", 0.9), Word(0.5, 1.1, "there.", 0.8))
TRANSCRIPT = Transcription(
    "talk.wav",
    "en",
    4.25,
    (
        Segment(0.0, 1.2, "Hello there.", WORDS),
        Segment(1.5, 3.75, "A {curly} second line, with 3,5 numbers.", ()),
    ),
)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_parse_back(fmt: str) -> None:
    parsed = pysubs2.SSAFile.from_string(render(TRANSCRIPT, fmt))  # type: ignore[arg-type]
    assert [(event.start, event.end) for event in parsed] == [(0, 1200), (1500, 3750)]
    assert parsed[0].plaintext == "Hello there."
    assert "curly" in parsed[1].plaintext and "3,5 numbers" in parsed[1].plaintext


def test_vtt_has_its_header() -> None:
    assert render(TRANSCRIPT, "vtt").startswith("WEBVTT")


def test_json_shape() -> None:
    data = json.loads(render(TRANSCRIPT, "json"))
    assert set(data) == {"file", "language", "duration", "text", "segments"}
    assert data["file"] == "talk.wav" and data["language"] == "en" and data["duration"] == 4.25
    assert data["text"] == "Hello there. A {curly} second line, with 3,5 numbers."
    first, second = data["segments"]
    assert first["words"][1] == {"start": 0.5, "end": 1.1, "word": "there.", "probability": 0.8}
    assert second["words"] == []
    compact = render(TRANSCRIPT, "json", compact=True)
    assert compact.count("\n") == 1 and json.loads(compact) == data


def test_json_leaves_words_out_when_not_asked() -> None:
    plain = Transcription("a.wav", "en", 1.0, (Segment(0.0, 1.0, "Hi."),))
    assert "words" not in json.loads(render(plain, "json"))["segments"][0]


def test_txt_is_the_text() -> None:
    assert render(TRANSCRIPT, "txt") == TRANSCRIPT.text + "\n"


def test_plan_maps_inputs_to_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("b.wav", "a.mp3", "notes.txt"):
        (folder / name).write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    made = plan([folder, empty, folder / "a.mp3"], "srt", out, to_stdout=False, overwrite=False)
    assert [(job.source.name, job.target) for job in made.jobs] == [("a.mp3", out / "a.srt"), ("b.wav", out / "b.srt")]
    assert len(made.failures) == 1 and str(empty) in made.failures[0] and "no audio" in made.failures[0]


def test_plan_keeps_existing_outputs_unless_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "a.wav"
    source.write_bytes(b"x")
    (tmp_path / "a.txt").write_text("old")
    kept = plan([source], "txt", None, to_stdout=False, overwrite=False)
    assert kept.jobs == () and "--overwrite" in kept.skipped[0]
    replaced = plan([source], "txt", None, to_stdout=False, overwrite=True)
    assert [job.target for job in replaced.jobs] == [tmp_path / "a.txt"]


def test_plan_refuses_two_inputs_for_one_output(tmp_path: Path) -> None:
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.wav").write_bytes(b"x")
    made = plan([tmp_path / "x", tmp_path / "y"], "txt", tmp_path / "out", to_stdout=False, overwrite=False)
    assert len(made.jobs) == 1
    assert "same.txt" in made.failures[0] and str(tmp_path / "y" / "same.wav") in made.failures[0]


def test_plan_never_overwrites_its_input(tmp_path: Path) -> None:
    source = tmp_path / "clip.json"
    source.write_text("{}")
    made = plan([source], "json", None, to_stdout=False, overwrite=True)
    assert made.jobs == () and "input itself" in made.failures[0]


def test_bundled_model_resolves() -> None:
    assert resolve_model("bundled") == bundled_whisper_dir()


def test_missing_model_folder_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "whisper-small"
    with pytest.raises(ModelError) as error:
        resolve_model(str(missing))
    assert str(missing) in str(error.value) and "does not exist" in str(error.value)


def test_folder_without_model_files(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelError) as error:
        resolve_model(str(tmp_path))
    assert "tokenizer.json" in str(error.value) and "config.json" in str(error.value)


def test_unknown_model_name_is_usage() -> None:
    with pytest.raises(UsageError) as error:
        resolve_model("enormous")
    assert "small.en" in str(error.value)


@pytest.mark.parametrize(("clips", "cores", "expected"), [(1, 2, (1, 2)), (30, 2, (2, 1)), (3, 16, (3, 5)),
                                                          (40, 16, (4, 4)), (5, 1, (1, 1))])
def test_plan_workers(clips: int, cores: int, expected: tuple[int, int]) -> None:
    assert plan_workers(clips, cores) == expected


def test_verbose_json_with_words() -> None:
    clip = Clip("x.wav", np.zeros(32_000, dtype=np.float32))
    data = {
        "language": "english", "duration": 2.0, "text": " Hi there. Bye.",
        "segments": [{"start": 0.0, "end": 1.0, "text": " Hi there."}, {"start": 1.0, "end": 2.0, "text": " Bye."}],
        "words": [{"word": "Hi", "start": 0.1, "end": 0.3}, {"word": "there.", "start": 0.4, "end": 0.9},
                  {"word": "Bye.", "start": 1.2, "end": 1.6}],
    }
    transcript = parse_verbose_json(data, clip, TranscribeOptions(None, word_timestamps=True))
    assert transcript.language == "english" and transcript.duration == 2.0
    assert [s.text for s in transcript.segments] == ["Hi there.", "Bye."]
    assert [[w.text for w in s.words or ()] for s in transcript.segments] == [["Hi", "there."], ["Bye."]]


def test_json_without_segments_is_one_segment() -> None:
    clip = Clip("x.wav", np.zeros(16_000, dtype=np.float32))
    transcript = parse_verbose_json({"text": "Just text."}, clip, TranscribeOptions("en"))
    assert transcript.segments == (Segment(0.0, 1.0, "Just text.", None),)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retain_freed_memory_takes_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert retain_freed_memory() is True
