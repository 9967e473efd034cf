"""Which kind of server a base URL points at, and what it calls the sampling parameters beyond OpenAI's.

OpenRouter and vLLM take `top_k`, `min_p`, `repetition_penalty`; llama.cpp (and llama-cpp-python) call the
last one `repeat_penalty`; OpenAI rejects all three and Ollama's /v1 silently drops them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from voicechat.config.models import LLMSettings

# server kind -> its name for each extra parameter (None: the server does not take it)
_EXTRA_NAMES: dict[str, dict[str, str | None]] = {
    "openrouter": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "llamacpp": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repeat_penalty"},
    "generic": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "openai": {"top_k": None, "min_p": None, "repetition_penalty": None},
    "ollama": {"top_k": None, "min_p": None, "repetition_penalty": None},
}
_NEUTRAL: dict[str, float] = {"top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}
_DEFAULT_PORTS = {11434: "ollama", 8080: "llamacpp", 8000: "vllm"}


def detect_kind(base_url: str, configured: str = "auto") -> str:
    """The server kind: the profile's `backend` when set, else a guess from the host and default port."""
    if configured not in ("auto", "embedded"):
        return configured
    if configured == "embedded":
        return "llamacpp"
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host.endswith("openrouter.ai"):
        return "openrouter"
    if host.endswith("api.openai.com"):
        return "openai"
    if "ollama" in host:
        return "ollama"
    try:
        port = parts.port
    except ValueError:
        port = None
    return _DEFAULT_PORTS.get(port or 0, "generic")


@dataclass(frozen=True)
class ExtraParameters:
    body: dict[str, Any]
    dropped: tuple[str, ...]  # parameters set away from neutral that this server ignores


def extra_parameters(settings: LLMSettings, kind: str) -> ExtraParameters:
    """`extra_body` for the request. Known servers get every parameter; an unknown one only those set."""
    names = _EXTRA_NAMES[kind]
    body: dict[str, Any] = {}
    dropped: list[str] = []
    for field, neutral in _NEUTRAL.items():
        value = getattr(settings, field)
        target = names[field]
        if target is None:
            if value != neutral:
                dropped.append(field)
        elif kind != "generic" or value != neutral:
            body[target] = value
    return ExtraParameters(body, tuple(dropped))


def dropped_notice(kind: str, dropped: tuple[str, ...]) -> str | None:
    if not dropped:
        return None
    server = {"ollama": "Ollama's /v1 API", "openai": "the OpenAI API"}.get(kind, kind)
    return f"{server} does not use {', '.join(dropped)}: those profile settings have no effect here"
