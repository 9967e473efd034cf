"""LLM engines by name, and the rule that picks one for a profile.

'openai' is any OpenAI-compatible endpoint; 'embedded' is the bundled offline model, used when the profile
names no endpoint of its own (the default OpenRouter URL) and no API key is in the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from voicechat.config.models import DEFAULT_BASE_URL
from voicechat.registry import Registry

if TYPE_CHECKING:
    from voicechat.config.models import LLMSettings
    from voicechat.llm.base import ChatModel

LLM_ENGINES = Registry(
    "LLM",
    {
        "openai": "voicechat.llm.openai_chat:OpenAIChat",
        "embedded": "voicechat.llm.embedded:EmbeddedChat",
    },
)


def choose_engine(settings: LLMSettings, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if settings.backend == "embedded":
        return "embedded"
    if environ.get(settings.api_key_env) or settings.base_url.rstrip("/") != DEFAULT_BASE_URL:
        return "openai"
    return "embedded"


def create_chat_model(settings: LLMSettings, environ: Mapping[str, str] | None = None) -> ChatModel:
    """The ChatModel for these settings, its key read from the variable the profile names (never logged)."""
    environ = os.environ if environ is None else environ
    engine = LLM_ENGINES.load(choose_engine(settings, environ))
    return cast("ChatModel", engine(settings, api_key=environ.get(settings.api_key_env) or None))
