"""ChatModel over any OpenAI-compatible chat-completions endpoint, streamed with `openai.AsyncOpenAI`.

The `openai` package is imported when a model is made, never at CLI start-up. Errors become one line that
names the endpoint and the fix; the API key never appears in them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from voicechat.config.models import LLMSettings
from voicechat.llm.base import ChatMessage, LLMError, ReplyCut, ReplyTooLong
from voicechat.llm.kinds import detect_kind, dropped_notice, extra_parameters


class OpenAIChat:
    """Streams replies from `settings.base_url` with the profile's sampling parameters."""

    def __init__(self, settings: LLMSettings, api_key: str | None, kind: str | None = None) -> None:
        from voicechat.openai_client import async_client

        self.settings = settings
        self.kind = kind or detect_kind(settings.base_url, settings.backend)
        self.url = shown_url(settings.base_url)
        self.name = f"{settings.model} at {self.url}"
        self._has_key = bool(api_key)
        self._extra = extra_parameters(settings, self.kind)
        notice = dropped_notice(self.kind, self._extra.dropped)
        self.notices: tuple[str, ...] = (notice,) if notice else ()
        self._client = async_client(settings.base_url, api_key, settings.timeout, settings.max_retries)

    def request(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        """The keyword arguments of `chat.completions.create` for these messages."""
        s = self.settings
        stop = {"stop": list(s.stop)} if s.stop else {}
        return {
            **stop,
            "model": s.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "frequency_penalty": s.frequency_penalty,
            "presence_penalty": s.presence_penalty,
            "max_tokens": s.max_tokens,
            "extra_body": dict(self._extra.body),
        }

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        import openai

        received: list[str] = []
        opened = False
        finish: str | None = None
        try:
            # llm.timeout bounds the wait for the first chunk in all: the client alone would retry a timeout
            # (max_retries) and so wait up to three times as long as the profile says.
            async with asyncio.timeout(self.settings.timeout) as first_chunk:
                response = await self._client.chat.completions.create(**self.request(messages))
                opened = True
                async with response:
                    async for chunk in response:
                        first_chunk.reschedule(None)
                        finish = _finish_reason(chunk) or finish
                        text = _chunk_text(chunk)
                        if text:
                            received.append(text)
                            yield text
        except TimeoutError:
            raise LLMError(f"{self._host()} sent nothing within {self.settings.timeout:g} s: raise llm.timeout "
                           "for a slow model, or check the server") from None
        except (openai.APIError, json.JSONDecodeError) as error:
            raise self._describe(error, "".join(received), opened) from None
        self._check_ending(finish, "".join(received))

    def _check_ending(self, finish: str | None, partial: str) -> None:
        """A stream is whole only when the server said why it ended; one that just stops was cut."""
        if finish == "length":
            raise ReplyTooLong(f"the reply reached llm.max_tokens ({self.settings.max_tokens})", partial)
        if finish is None and partial:
            raise ReplyCut(f"the reply from {self._host()} stopped midway (the stream ended without "
                           "finishing)", partial)
        if finish is None:
            raise LLMError(f"the reply from {self._host()} ended before any text (the stream ended without "
                           "finishing): try again")

    async def aclose(self) -> None:
        await self._client.close()

    def _describe(self, error: Exception, partial: str, opened: bool) -> LLMError:
        cause = _cause(error, self.settings.timeout)
        if partial:
            return ReplyCut(f"the reply from {self._host()} broke off midway ({cause})", partial)
        if opened:
            return LLMError(f"the reply from {self._host()} broke off before any text ({cause}): try again")
        return LLMError(self._explain(error))

    def _explain(self, error: Exception) -> str:
        import openai

        host, s = self._host(), self.settings
        retries = f"after {s.max_retries} {'retry' if s.max_retries == 1 else 'retries'}"
        retries = retries if s.max_retries else "with retries off"
        if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
            state = "is not set" if not self._has_key else "holds a key it refused"
            return (f"{host} refused the request (HTTP {error.status_code}): {s.api_key_env} {state}; "
                    f"set {s.api_key_env} to a valid API key for {self.url}")
        if isinstance(error, openai.RateLimitError):
            return f"{host} is rate-limiting requests (HTTP 429) {retries}: wait a minute, or use another model"
        if isinstance(error, openai.NotFoundError):
            return (f"{host} has no model '{s.model}' or no chat API at {self.url} (HTTP 404): "
                    "check --model / llm.model and --base-url")
        if isinstance(error, openai.APIStatusError) and error.status_code < 500:
            return f"{host} rejected the request (HTTP {error.status_code}): {_server_message(error)}"
        if isinstance(error, openai.APIStatusError):
            return f"{host} failed with HTTP {error.status_code} {retries}: {_server_message(error)}"
        if isinstance(error, openai.APITimeoutError):
            return f"{host} sent nothing within {s.timeout:g} s: raise llm.timeout or check the server"
        if isinstance(error, openai.APIConnectionError):
            return f"cannot reach {self.url}: is the server running? Check --base-url / llm.base_url"
        return f"{host} sent a broken answer ({_cause(error, s.timeout)}): try again"

    def _host(self) -> str:
        return urlsplit(self.url).netloc or self.url


def shown_url(url: str) -> str:
    """The URL without any user:password part, fit to print."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _finish_reason(chunk: Any) -> str | None:
    choices = getattr(chunk, "choices", None) or []
    return getattr(choices[0], "finish_reason", None) if choices else None


def _chunk_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return getattr(delta, "content", None) or ""


def _cause(error: Exception, timeout: float) -> str:
    import openai

    if isinstance(error, json.JSONDecodeError):
        return "a malformed chunk"
    if isinstance(error, openai.APITimeoutError):
        return f"nothing came within {timeout:g} s; raise llm.timeout for a slow model"
    if isinstance(error, openai.APIConnectionError):
        return "the connection dropped"
    return f"the server reported: {_server_message(error)}"


def _server_message(error: Any) -> str:
    from voicechat.openai_client import server_message

    return server_message(error)
