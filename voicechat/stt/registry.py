"""STT engines by the name a profile's `stt.engine` or `--engine` uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from voicechat.registry import Registry

if TYPE_CHECKING:
    from voicechat.config.models import STTSettings
    from voicechat.stt.base import SpeechToText

STT_ENGINES = Registry(
    "STT",
    {
        "faster-whisper": "voicechat.stt.faster_whisper:FasterWhisperSTT",
        "openai": "voicechat.stt.openai_stt:OpenAISTT",
    },
)


def create_stt(settings: STTSettings) -> SpeechToText:
    engine_class = STT_ENGINES.load(settings.engine)
    return cast("SpeechToText", engine_class(settings))
