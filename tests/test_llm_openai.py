"""The OpenAI-compatible ChatModel against a real SSE server on 127.0.0.1, through the real openai client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sse_server import Script, SSEServer, words
from voicechat.config.models import LLMSettings
from voicechat.llm.base import ChatMessage, LLMError, ReplyCut
from voicechat.llm.kinds import detect_kind
from voicechat.llm.local_server import free_port
from voicechat.llm.openai_chat import OpenAIChat

SECRET = "sk-test-4f9c2b7e1d"
HELLO = [ChatMessage("system", "be brief"), ChatMessage("user", "hi")]


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def settings_for(server: SSEServer, **fields: Any) -> LLMSettings:
    return LLMSettings(base_url=server.base_url, max_retries=fields.pop("max_retries", 1), **fields)


def collect(chat: OpenAIChat, messages: list[ChatMessage] = HELLO) -> list[str]:
    async def go() -> list[str]:
        try:
            return [piece async for piece in chat.stream(messages)]
        finally:
            await chat.aclose()

    return asyncio.run(asyncio.wait_for(go(), 30))


def failure(chat: OpenAIChat) -> LLMError:
    with pytest.raises(LLMError) as caught:
        collect(chat)
    return caught.value


def test_reply_streams_token_by_token(server: SSEServer) -> None:
    server.queue(Script.reply("Hello there. How are you?", delay=0.01))
    pieces = collect(OpenAIChat(settings_for(server), SECRET))
    assert pieces == words("Hello there. How are you?")
    request = server.requests[0]
    assert request.body["stream"] is True
    assert request.body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert request.headers["authorization"] == f"Bearer {SECRET}"


TUNED = {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.15}


@pytest.mark.parametrize(
    ("kind", "extras"),
    [
        ("openrouter", {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.15}),
        ("vllm", {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.15}),
        ("llamacpp", {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.15}),
        ("generic", {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.15}),
        ("ollama", {}),
        ("openai", {}),
    ],
)
def test_profile_parameters_reach_the_body_under_each_backends_names(
    server: SSEServer, kind: str, extras: dict[str, float]
) -> None:
    settings = settings_for(server, backend=kind, model="m-1", temperature=0.3, top_p=0.7, max_tokens=55,
                            frequency_penalty=0.2, presence_penalty=-0.4, **TUNED)
    chat = OpenAIChat(settings, None)
    collect(chat)
    body = server.requests[0].body
    assert {k: body[k] for k in ("model", "temperature", "top_p", "max_tokens", "frequency_penalty",
                                 "presence_penalty")} == {
        "model": "m-1", "temperature": 0.3, "top_p": 0.7, "max_tokens": 55, "frequency_penalty": 0.2,
        "presence_penalty": -0.4}
    sent = {k: body[k] for k in ("top_k", "min_p", "repetition_penalty", "repeat_penalty") if k in body}
    assert sent == extras
    if not extras:
        assert len(chat.notices) == 1
        assert "top_k, min_p, repetition_penalty" in chat.notices[0]
    else:
        assert chat.notices == ()


def test_an_unknown_server_gets_only_the_extras_that_were_set(server: SSEServer) -> None:
    collect(OpenAIChat(settings_for(server, top_k=0, min_p=0.0, repetition_penalty=1.2), None))
    body = server.requests[0].body
    assert body.get("repetition_penalty") == 1.2
    assert "top_k" not in body and "min_p" not in body


@pytest.mark.parametrize(
    ("url", "configured", "kind"),
    [
        ("https://openrouter.ai/api/v1", "auto", "openrouter"),
        ("https://api.openai.com/v1", "auto", "openai"),
        ("http://127.0.0.1:11434/v1", "auto", "ollama"),
        ("http://my-ollama.lan:9000/v1", "auto", "ollama"),
        ("http://127.0.0.1:8080/v1", "auto", "llamacpp"),
        ("http://gpu-box:8000/v1", "auto", "vllm"),
        ("http://gpu-box:9999/v1", "auto", "generic"),
        ("http://gpu-box:9999/v1", "vllm", "vllm"),
        ("http://127.0.0.1:8080/v1", "embedded", "llamacpp"),
    ],
)
def test_backend_kind_from_url_or_profile(url: str, configured: str, kind: str) -> None:
    assert detect_kind(url, configured) == kind


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_names_the_variable_to_set_and_never_the_key(server: SSEServer, status: int) -> None:
    server.queue(Script.http_error(status))
    error = failure(OpenAIChat(settings_for(server, api_key_env="MY_LLM_KEY"), SECRET))
    assert f"HTTP {status}" in str(error)
    assert "set MY_LLM_KEY" in str(error)
    assert SECRET not in str(error)
    assert len(server.requests) == 1  # auth failures are not retried


def test_a_missing_key_says_the_variable_is_not_set(server: SSEServer) -> None:
    server.queue(Script.http_error(401))
    assert "OPENROUTER_API_KEY is not set" in str(failure(OpenAIChat(settings_for(server), None)))


@pytest.mark.parametrize("status", [429, 500])
def test_rate_limits_and_server_errors_are_retried_then_succeed(server: SSEServer, status: int) -> None:
    server.queue(Script.http_error(status, retry_after="0.05"), Script.reply("Back again."))
    assert "".join(collect(OpenAIChat(settings_for(server, max_retries=1), None))) == "Back again."
    assert len(server.requests) == 2


@pytest.mark.parametrize(("status", "words_expected"), [(429, "rate-limiting"), (500, "HTTP 500")])
def test_after_the_retries_a_clear_line(server: SSEServer, status: int, words_expected: str) -> None:
    server.queue(*[Script.http_error(status, retry_after="0.05")] * 3)
    error = failure(OpenAIChat(settings_for(server, max_retries=2), None))
    assert words_expected in str(error)
    assert "after 2 retries" in str(error)
    assert "\n" not in str(error)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (Script.reply("one two three four five", drop_after=3), "the connection dropped"),
        (Script.reply("one two three four five", malformed_after=3), "a malformed chunk"),
        (Script.reply("one two three four five", error_after=3), "upstream model crashed"),
    ],
)
def test_a_stream_broken_midway_keeps_what_came(server: SSEServer, script: Script, reason: str) -> None:
    server.queue(script)
    with pytest.raises(ReplyCut) as caught:
        collect(OpenAIChat(settings_for(server), None))
    assert caught.value.partial == "one two three"
    assert reason in str(caught.value)
    assert len(server.requests) == 1  # a broken stream is never sent again


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (Script.reply("one two", malformed_after=0), "a malformed chunk"),
        (Script.reply("one two", drop_after=0), "the connection dropped"),
        (Script.reply("one two", error_after=0), "upstream model crashed"),
    ],
)
def test_a_stream_broken_before_any_text_is_a_failed_turn(server: SSEServer, script: Script, reason: str) -> None:
    server.queue(script)
    error = failure(OpenAIChat(settings_for(server), None))
    assert not isinstance(error, ReplyCut)
    assert "broke off before any text" in str(error) and reason in str(error)


def test_no_server_says_which_url_to_check() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    error = failure(OpenAIChat(LLMSettings(base_url=url, max_retries=0), None))
    assert f"cannot reach {url}" in str(error)


def test_a_silent_server_times_out_with_the_setting_to_raise(server: SSEServer) -> None:
    server.queue(Script.reply("late", delay=3.0))
    error = failure(OpenAIChat(settings_for(server, timeout=0.3, max_retries=0), None))
    assert "within 0.3 s" in str(error)
    assert "llm.timeout" in str(error)


def test_a_rejected_request_says_what_the_server_said(server: SSEServer) -> None:
    server.queue(Script.http_error(400))
    error = failure(OpenAIChat(settings_for(server, max_retries=2), None))
    assert str(error).endswith("rejected the request (HTTP 400): error")
    assert len(server.requests) == 1


def test_credentials_in_the_url_are_never_shown() -> None:
    url = f"http://bob:{SECRET}@127.0.0.1:{free_port()}/v1"
    chat = OpenAIChat(LLMSettings(base_url=url, max_retries=0), None)
    error = failure(chat)
    assert SECRET not in str(error) and SECRET not in chat.name
    assert "cannot reach http://127.0.0.1:" in str(error)
