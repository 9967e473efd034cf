"""The openai-speech engine (how Higgs served by vLLM is reached) against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w

from tests.conftest import run_cli
from voicechat.config.store import load_profile
from voicechat.errors import VoicechatError
from voicechat.events import AudioChunk, Sentence
from voicechat.tts.openai_speech import OpenAISpeechTTS, PcmFramer

RATE = 24000


def served_pcm(seconds: float = 0.5) -> bytes:
    """A 220 Hz tone, 16-bit little-endian: what a speech server would send for `pcm`."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 12000).astype("<i2").tobytes()


class SpeechServer:
    """POST /v1/audio/speech -> chunked raw PCM in odd-sized pieces; the voice 'missing' gets a 404."""

    def __init__(self, pcm: bytes) -> None:
        self.pcm = pcm
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/audio/speech":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                elif body.get("voice") == "missing":
                    self._json(404, {"error": {"message": "voice 'missing' not found"}})
                else:
                    self._stream(server.pcm)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, pcm: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "audio/pcm")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(pcm), 3001):  # odd sizes: samples split across reads
                    piece = pcm[start : start + 3001]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.flush()
                    time.sleep(0.002)
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def server() -> Iterator[SpeechServer]:
    speech = SpeechServer(served_pcm())
    speech.thread.start()
    yield speech
    speech.httpd.shutdown()
    speech.httpd.server_close()


def remote_tts(base_url: str, **settings: object) -> OpenAISpeechTTS:
    overrides = {"tts.engine": "openai-speech", "tts.openai-speech.base_url": base_url, **settings}
    return OpenAISpeechTTS(load_profile("default", overrides).tts)


def write_voice(home: Path, name: str, data: dict[str, Any]) -> None:
    (home / "voices").mkdir(exist_ok=True)
    (home / "voices" / f"{name}.toml").write_text(tomli_w.dumps(data))


def collect(tts: OpenAISpeechTTS, sentence: Sentence) -> list[AudioChunk]:
    async def run() -> list[AudioChunk]:
        return [chunk async for chunk in tts.stream(sentence)]

    return asyncio.run(run())


def test_higgs_remote_streams_the_servers_pcm(server: SpeechServer, voicechat_home: Path) -> None:
    write_voice(voicechat_home, "narrator", {
        "description": "A deep, slow storyteller.",
        "openai-speech": {"voice": "onyx", "speed": 0.9},
    })
    tts = remote_tts(server.base_url, **{"tts.openai-speech.model": "bosonai/higgs-audio-v2"})

    chunks = collect(tts, Sentence("Once upon a time.", voice="narrator", character="Narrator", index=2))

    assert b"".join(c.pcm for c in chunks) == server.pcm
    assert len(chunks) > 3  # streamed, not one blob
    assert all(len(c.pcm) % 2 == 0 for c in chunks)
    assert all(c.pcm for c in chunks)  # no empty marker chunk at the end
    assert {(c.sample_rate, c.sentence_index, c.character) for c in chunks} == {(RATE, 2, "Narrator")}
    request = server.requests[-1]
    assert request["model"] == "bosonai/higgs-audio-v2"
    assert request["voice"] == "onyx"
    assert request["response_format"] == "pcm"
    assert request["speed"] == 0.9
    assert request["input"] == "Once upon a time."
    assert request["instructions"] == "A deep, slow storyteller."


def test_higgs_remote_voice_without_a_mapping_uses_the_default(server: SpeechServer, voicechat_home: Path) -> None:
    write_voice(voicechat_home, "plain", {"description": "Anything."})
    tts = remote_tts(server.base_url, **{"tts.openai-speech.default_voice": "nova",
                                         "tts.openai-speech.instructions": False})
    collect(tts, Sentence("Hi.", voice="plain"))
    assert server.requests[-1]["voice"] == "nova"
    assert "instructions" not in server.requests[-1]
    assert server.headers[-1].get("authorization") == "Bearer not-needed"


def test_higgs_remote_sends_the_key_from_the_environment(
    server: SpeechServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SPEECH_KEY", "sk-test")
    tts = remote_tts(server.base_url, **{"tts.openai-speech.api_key_env": "MY_SPEECH_KEY"})
    collect(tts, Sentence("Hi."))
    assert server.headers[-1]["authorization"] == "Bearer sk-test"


def test_higgs_remote_server_error_is_one_clear_line(server: SpeechServer, voicechat_home: Path) -> None:
    write_voice(voicechat_home, "ghost", {"openai-speech": {"voice": "missing"}})
    with pytest.raises(VoicechatError, match=r"answered 404: voice 'missing' not found; check .*'missing'"):
        collect(remote_tts(server.base_url), Sentence("Hi.", voice="ghost"))


def test_higgs_remote_unreachable_server_names_the_url() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(VoicechatError, match=rf"127.0.0.1:{port}/v1 cannot be reached"):
        collect(remote_tts(f"http://127.0.0.1:{port}/v1"), Sentence("Hi."))


def test_higgs_remote_openai_without_key_says_which_variable() -> None:
    tts = remote_tts("https://api.openai.com/v1")
    with pytest.raises(VoicechatError, match="export OPENAI_API_KEY"):
        collect(tts, Sentence("Hi."))


def test_higgs_remote_framer_keeps_samples_whole() -> None:
    framer = PcmFramer()
    assert framer.push(b"\x01\x02\x03") == b"\x01\x02"
    assert framer.push(b"\x04") == b"\x03\x04"
    assert framer.push(b"") == b""


@pytest.mark.slow
def test_higgs_remote_say_cli_writes_the_served_audio(
    server: SpeechServer, voicechat_home: Path, tmp_path: Path
) -> None:
    (voicechat_home / "profiles").mkdir()
    profile = {"tts": {"engine": "openai-speech", "openai-speech": {"base_url": server.base_url}}}
    (voicechat_home / "profiles" / "remote.toml").write_text(tomli_w.dumps(profile))
    target = tmp_path / "remote.wav"

    result = run_cli("say", "--engine", "openai-speech", "--profile", "remote", "Hello.", "-o", str(target))

    assert result.returncode == 0, result.stderr.decode()
    with wave.open(str(target)) as handle:
        assert handle.getframerate() == RATE
        assert handle.readframes(handle.getnframes()) == server.pcm
