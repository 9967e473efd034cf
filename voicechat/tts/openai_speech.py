"""openai-speech: an OpenAI-compatible /v1/audio/speech server, streamed as raw 16-bit PCM.

The same client speaks to OpenAI, to Higgs served by vLLM, and to Kokoro-FastAPI: many terminals can share
one GPU box. Each voice in voices/ maps to a server voice name through its `[openai-speech]` section.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from voicechat.config.models import TTSSettings
from voicechat.errors import VoicechatError
from voicechat.events import AudioChunk, Sentence
from voicechat.tts.base import EngineTraits, VoiceLookup, voice_lookup

READ_BYTES = 4800  # 0.1 s at 24 kHz


@dataclass(frozen=True)
class RemoteVoice:
    name: str  # the server's voice name
    instructions: str
    speed: float


class PcmFramer:
    """Bytes as the network delivers them -> whole 16-bit samples (an odd trailing byte waits for the next read)."""

    def __init__(self) -> None:
        self._pending = b""

    def push(self, data: bytes) -> bytes:
        data = self._pending + data
        whole = len(data) - len(data) % 2
        self._pending = data[whole:]
        return data[:whole]


class OpenAISpeechTTS:
    name = "openai-speech"
    traits = EngineTraits(concurrency="unbounded", remote=True, streaming=True)

    def __init__(self, settings: TTSSettings, voices: VoiceLookup | None = None) -> None:
        self.settings = settings
        self._lookup = voice_lookup(voices)
        self.options = settings.openai_speech
        self._voices: dict[str, RemoteVoice] = {}
        self._client: Any = None

    def voice(self, name: str) -> RemoteVoice:
        name = name or self.settings.voice
        if name not in self._voices:
            voice = self._lookup(name).voice
            remote = voice.openai_speech
            instructions = remote.instructions or (voice.description if self.options.instructions else "")
            self._voices[name] = RemoteVoice(
                name=remote.voice or self.options.default_voice,
                instructions=instructions if self.options.instructions else "",
                speed=remote.speed if remote.speed is not None else self.options.speed,
            )
        return self._voices[name]

    def client(self) -> Any:
        if self._client is None:
            from voicechat.openai_client import async_client

            self._client = async_client(self.options.base_url, self._api_key(), self.options.timeout)
        return self._client

    def _api_key(self) -> str | None:
        from voicechat.openai_client import key_from

        key = key_from(self.options.api_key_env)
        if key:
            return key
        if urlparse(self.options.base_url).hostname == "api.openai.com":
            raise VoicechatError(
                f"openai-speech needs an API key: export {self.options.api_key_env}=... "
                "(or point tts.openai-speech.base_url at your own server)"
            )
        return None  # local servers (vLLM, Kokoro-FastAPI) usually take no key

    async def prepare(self, voice: str = "") -> None:
        self.voice(voice)
        self.client()

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        import openai

        voice = self.voice(sentence.voice)
        request = {
            "model": self.options.model,
            "voice": voice.name,
            "input": sentence.text,
            "response_format": "pcm",
            "speed": voice.speed,
        }
        if voice.instructions:
            request["instructions"] = voice.instructions
        framer, index = PcmFramer(), 0
        try:
            async with self.client().audio.speech.with_streaming_response.create(**request) as response:
                async for data in response.iter_bytes(READ_BYTES):
                    pcm = framer.push(data)
                    if pcm:
                        yield self._chunk(pcm, sentence, index)
                        index += 1
        except openai.APIStatusError as error:
            raise VoicechatError(
                f"openai-speech server at {self.options.base_url} answered {error.status_code}: "
                f"{_reason(error)}; check tts.openai-speech.model and the voice name '{voice.name}'"
            ) from None
        except openai.APIConnectionError as error:
            raise VoicechatError(
                f"openai-speech server at {self.options.base_url} cannot be reached ({error}); "
                "start it or fix tts.openai-speech.base_url"
            ) from None

    def _chunk(self, pcm: bytes, sentence: Sentence, index: int) -> AudioChunk:
        return AudioChunk(
            pcm=pcm,
            sample_rate=self.options.sample_rate,
            sentence_index=sentence.index,
            chunk_index=index,
            character=sentence.character,
        )


def _reason(error: Any) -> str:
    from voicechat.openai_client import server_message

    return server_message(error, limit=200)
