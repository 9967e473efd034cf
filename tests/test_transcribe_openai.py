"""`voicechat transcribe --engine openai` against a real OpenAI-compatible server on 127.0.0.1.

The server, written here with http.server, reads the multipart upload, decodes the audio it was sent and
transcribes it with faster-whisper (as speaches or vLLM would), answering in OpenAI's verbose_json.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from tests.conftest import bundled_whisper_dir, run_cli, synthesize_wav, word_error_rate

pytestmark = pytest.mark.slow

FOX = "The quick brown fox jumps over the lazy dog."
STELLA = "Please call Stella and ask her to bring these things from the store."
API_KEY = "sk-test-123"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]
    model: Any


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        if self.path != "/v1/audio/transcriptions":
            return self._answer(404, {"error": {"message": f"no route {self.path}"}})
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._answer(401, {"error": {"message": "Incorrect API key provided"}})
        fields = self._form()
        audio, rate = soundfile.read(io.BytesIO(fields["file"]), dtype="float32")
        fields.update(rate=rate, channels=audio.ndim)
        self.server.requests.append({k: v for k, v in fields.items() if k != "file"})
        if len(audio) < rate // 2:
            return self._answer(400, {"error": {"message": "audio is shorter than 0.5 s"}})
        segments, _ = self.server.model.transcribe(audio, language="en", word_timestamps=True)
        segments = list(segments)
        self._answer(200, {
            "task": "transcribe", "language": "english", "duration": len(audio) / rate,
            "text": " ".join(s.text.strip() for s in segments),
            "segments": [{"id": i, "start": s.start, "end": s.end, "text": s.text} for i, s in enumerate(segments)],
            "words": [{"word": w.word.strip(), "start": w.start, "end": w.end} for s in segments for w in s.words],
        })

    def _form(self) -> dict[str, Any]:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[name] = payload if name == "file" else payload.decode()
        return fields

    def _answer(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    from faster_whisper import WhisperModel

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.requests = []
    httpd.model = WhisperModel(str(bundled_whisper_dir()), device="cpu", compute_type="int8", cpu_threads=1)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("remote-speech")
    fox = synthesize_wav(FOX, folder / "fox.wav")
    samples, rate = soundfile.read(fox, dtype="float32")
    stereo = folder / "stella48.flac"
    stella, stella_rate = soundfile.read(synthesize_wav(STELLA, folder / "stella.wav"), dtype="float32")
    up = np.interp(np.arange(0, len(stella), stella_rate / 48_000), np.arange(len(stella)), stella)
    soundfile.write(stereo, np.stack([up, up * 0.5], axis=1).astype(np.float32), 48_000)
    short = folder / "blip.wav"
    soundfile.write(short, samples[: rate // 5], rate)
    return {"fox": fox, "stella": stereo, "blip": short}


def _url(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def _run(server_url: str, *args: str, key: str = API_KEY) -> Any:
    return run_cli("transcribe", "--engine", "openai", "--base-url", server_url, *args,
                   env={"OPENAI_API_KEY": key}, timeout=120)


def test_json_and_srt_through_the_server(server: Server, speech: dict[str, Path], tmp_path: Path) -> None:
    server.requests.clear()
    result = _run(_url(server), str(speech["fox"]), str(speech["stella"]), "-o", str(tmp_path), "-f", "json",
                  "--word-timestamps", "--model", "Systran/faster-whisper-tiny.en")
    assert result.returncode == 0, result.stderr.decode()
    fox = json.loads((tmp_path / "fox.json").read_text())
    stella = json.loads((tmp_path / "stella48.json").read_text())
    assert word_error_rate(FOX, fox["text"]) <= 0.25 and word_error_rate(STELLA, stella["text"]) <= 0.25
    assert fox["file"] == str(speech["fox"]) and fox["language"] == "en"
    words = [w["word"] for s in fox["segments"] for w in s["words"]]
    # Whisper capitalises "the" on one CPU and not on another: the words and their times are what is checked
    assert [word.strip(" ,.").lower() for word in words[:2]] == ["the", "quick"]
    assert all(w["start"] <= w["end"] for s in fox["segments"] for w in s["words"])
    assert len(server.requests) == 2
    for request in server.requests:
        assert request["model"] == "Systran/faster-whisper-tiny.en"
        assert request["response_format"] == "verbose_json" and request["language"] == "en"
        assert (request["rate"], request["channels"]) == (16_000, 1)  # decoded and downmixed before upload
    srt = _run(_url(server), str(speech["fox"]), "-f", "srt", "-o", "-")
    assert srt.returncode == 0 and b"-->" in srt.stdout and b"fox" in srt.stdout


def test_one_file_refused_by_the_server_fails_alone(server: Server, speech: dict[str, Path], tmp_path: Path) -> None:
    result = _run(_url(server), str(speech["blip"]), str(speech["fox"]), "-o", str(tmp_path))
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert f"{speech['blip']}: the server answered 400: " in stderr and "shorter than 0.5 s" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fox.txt"]


def test_refused_key_names_the_variable(server: Server, speech: dict[str, Path]) -> None:
    result = _run(_url(server), str(speech["fox"]), "-o", "-", key="sk-wrong")
    assert result.returncode == 1 and result.stdout == b""
    assert "OPENAI_API_KEY" in result.stderr.decode() and "401" in result.stderr.decode()


def test_server_not_running(speech: dict[str, Path], tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _run(f"http://127.0.0.1:{port}/v1", str(speech["fox"]), str(speech["stella"]), "-o", str(tmp_path))
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "cannot reach the transcription server" in stderr and str(port) in stderr
    assert list(tmp_path.iterdir()) == []
