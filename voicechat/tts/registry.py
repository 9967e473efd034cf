"""TTS engines by the name a profile's `tts.engine` or `--engine` uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from voicechat.registry import Registry

if TYPE_CHECKING:
    from voicechat.config.models import TTSSettings
    from voicechat.tts.base import EngineTraits, TextToSpeech, VoiceLookup

TTS_ENGINES = Registry(
    "TTS",
    {
        "piper": "voicechat.tts.piper:PiperTTS",
        "higgs": "voicechat.tts.higgs.engine:HiggsTTS",
        "openai-speech": "voicechat.tts.openai_speech:OpenAISpeechTTS",
    },
)


def create_tts(settings: TTSSettings, voices: VoiceLookup | None = None) -> TextToSpeech:
    """The profile's engine; `voices` finds a voice's entry (default: the packaged and user voices folders)."""
    from voicechat.config.store import load_voice

    engine_class = TTS_ENGINES.load(settings.engine)
    return cast("TextToSpeech", engine_class(settings, voices or load_voice))


def engine_traits(name: str) -> EngineTraits:
    return cast("EngineTraits", TTS_ENGINES.load(name).traits)
