"""The one way voicechat talks to OpenAI-compatible servers (chat, speech, transcription): a client made with
the key from the environment, or a placeholder for servers that need none, and one line for what a server
said when it refused. The `openai` package (0.5-0.8 s to import) is imported only when a client is made."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

PLACEHOLDER_KEY = "not-needed"  # local servers take no key, but the client sends some Authorization header


def key_from(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The API key in `variable` (never printed or written anywhere), or None."""
    return (os.environ if environ is None else environ).get(variable) or None


def async_client(base_url: str, api_key: str | None, timeout: float, max_retries: int = 2) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url, api_key=api_key or PLACEHOLDER_KEY, timeout=timeout,
                       max_retries=max_retries)


def sync_client(base_url: str, api_key: str | None, timeout: float, max_retries: int = 2) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=api_key or PLACEHOLDER_KEY, timeout=timeout, max_retries=max_retries)


def server_message(error: Any, limit: int = 160) -> str:
    """The message a server put in its error body, else the client's own summary, on one short line."""
    body = getattr(error, "body", None)
    text: Any = getattr(error, "message", None) or error
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") or inner if isinstance(inner, dict) else inner
    line = " ".join(str(text).split()) or type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
