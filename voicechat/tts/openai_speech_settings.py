"""The openai-speech engine's settings: `[tts.openai-speech]` in a profile and `[openai-speech]` in a voice."""

from __future__ import annotations

from pydantic import Field

from voicechat.config.strict import Strict


class OpenAISpeechSettings(Strict):
    """`[tts.openai-speech]`: an OpenAI-compatible /v1/audio/speech server (OpenAI, vLLM, Kokoro-FastAPI)."""

    base_url: str = Field("https://api.openai.com/v1", description="OpenAI-compatible API base URL")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    model: str = Field("gpt-4o-mini-tts", min_length=1, description="speech model id at the server")
    default_voice: str = Field(
        "alloy", min_length=1, description="server voice for voices without an [openai-speech] voice name"
    )
    sample_rate: int = Field(
        24000, ge=8000, le=48000, description="rate of the server's raw pcm (OpenAI, vLLM, Kokoro: 24000)"
    )
    speed: float = Field(1.0, ge=0.25, le=4.0, description="speaking speed multiplier")
    instructions: bool = Field(
        True, description="send the voice's description as speaking instructions (off for servers that reject it)"
    )
    timeout: float = Field(60.0, gt=0.0, le=3600.0, description="seconds to wait for the server")


class OpenAISpeechVoiceOptions(Strict):
    voice: str = Field("", description="the server's voice name ('': the profile's default_voice)")
    instructions: str = Field("", description="how to speak (gpt-4o-mini-tts); '': the voice's description")
    speed: float | None = Field(None, ge=0.25, le=4.0, description="speed for this voice (unset: the profile's)")
