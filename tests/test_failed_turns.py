"""A failed turn is never a silent success: the real CLI against a real SSE server, and a broken runtime."""

from __future__ import annotations

import json
import socket
import textwrap
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.sse_server import Script, SSEServer

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def audio_seconds(path: Path) -> float:
    with wave.open(str(path)) as handle:
        return handle.getnframes() / handle.getframerate()


def scripted_talk(server: SSEServer, tmp_path: Path, *inputs: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    args = [arg for path in inputs for arg in ("--input", str(path))]
    return run_cli("talk", "--no-greeting", *args, "--output", str(tmp_path / "a.wav"), "--base-url", server.base_url,
                   "--transcript", str(tmp_path / "t.jsonl"),
                   env={"VOICECHAT_LLM_MAX_RETRIES": "0", **(env or {})}, timeout=240)


def test_talk_input_with_a_failing_llm_exits_1_and_leaves_no_empty_wav(server, make_speech, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.queue(Script.http_error(500))
    result = scripted_talk(server, tmp_path, make_speech("What is the weather like today?", "q.wav"))
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "no full reply" in stderr and "HTTP 500" in stderr
    assert "no reply audio was made" in stderr
    assert not (tmp_path / "a.wav").exists()
    record = json.loads((tmp_path / "t.jsonl").read_text())
    assert record["error"] and "HTTP 500" in record["error"]


def test_talk_input_keeps_the_audio_that_was_made_when_a_later_turn_fails(server, make_speech, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.queue(Script.reply("It is sunny and warm today."), Script.http_error(500))
    first = make_speech("What is the weather like today?", "q1.wav")
    second = make_speech("And what about tomorrow?", "q2.wav")
    result = scripted_talk(server, tmp_path, first, second)
    assert result.returncode == 1
    assert "1 input(s) got no reply" in result.stderr.decode()
    assert audio_seconds(tmp_path / "a.wav") > 1.0


def test_a_speech_engine_that_cannot_be_reached_fails_the_turn_not_the_wait(server, make_speech, tmp_path,  # type: ignore[no-untyped-def]
                                                                           voicechat_home) -> None:
    (voicechat_home / "profiles").mkdir()
    (voicechat_home / "profiles" / "remote.toml").write_text(textwrap.dedent(f"""
        [tts]
        engine = "openai-speech"
        [tts.openai-speech]
        base_url = "http://127.0.0.1:{closed_port()}/v1"
        timeout = 5.0
        """))
    server.queue(Script.reply("Here is my answer for you."))
    started = time.monotonic()
    result = run_cli("talk", "--no-greeting", "--profile", "remote",
                     "--input", str(make_speech("Say something.", "q.wav")),
                     "--output", str(tmp_path / "a.wav"), "--base-url", server.base_url,
                     "--transcript", str(tmp_path / "t.jsonl"), timeout=240)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    # The voice is warmed at start, so the engine fails there, in one line, before any turn is waited on.
    assert "openai-speech server at http://127.0.0.1" in stderr and "cannot be reached" in stderr
    assert time.monotonic() - started < 120  # not the 300 s reply timeout
    assert not (tmp_path / "a.wav").exists()


def test_a_silent_llm_is_announced_and_fails_after_the_stated_time(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.queue(Script.reply("Too late.", delay=20))
    started = time.monotonic()
    result = run_cli("talk", "--no-greeting", "--text", "--no-audio", "--base-url", server.base_url, "--transcript",
                     str(tmp_path / "t.jsonl"), input="Hello?\n",
                     env={"VOICECHAT_LLM_TIMEOUT": "4", "VOICECHAT_LLM_MAX_RETRIES": "2"}, timeout=120)
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "waiting for the reply" in stderr
    assert "sent nothing within 4 s" in stderr
    assert elapsed < 3 * 4  # the client's own retries no longer multiply the wait


def test_a_stream_that_just_stops_is_a_cut_reply(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.queue(Script.reply("Once upon a time there was a king who", end_after=5), Script.reply("Fine."))
    transcript = tmp_path / "t.jsonl"
    result = run_cli("talk", "--no-greeting", "--text", "--no-audio", "--base-url", server.base_url, "--transcript",
                     str(transcript), input="Story?\nAnd?\n", timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "reply cut:" in stderr and "stopped midway" in stderr
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert [r["cut"] for r in records if r["user"]] == [True, False]


def test_doctor_fails_the_offline_model_when_its_runtime_crashes(tmp_path: Path) -> None:
    """A llama_cpp that segfaults on import stands in for a build that crashes on this CPU."""
    fake = tmp_path / "fake" / "llama_cpp"
    (fake / "server").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "llama_cpp.py").write_text("")
    (fake / "server" / "__init__.py").write_text("")
    (fake / "server" / "app.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    (fake / "server" / "settings.py").write_text("")
    result = run_cli("doctor", env={"PYTHONPATH": str(tmp_path / "fake")}, timeout=240)
    text = result.stdout.decode()
    assert "FAIL offline LLM: the offline model server crashed (signal 11" in text, text
    assert "rebuild it portably" in text
    assert result.returncode == 1
