"""The Higgs engine's settings: `[tts.higgs]` in a profile, `[higgs]` in a voice (descriptions are help text)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from voicechat.config.strict import Strict


class HiggsSettings(Strict):
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


class HiggsVoiceOptions(Strict):
    reference_audio: str = Field(
        "", description="reference recording to clone, relative to voices/ ('': NAME.wav when it exists)"
    )
    reference_text: str = Field("", description="what the reference says ('': the text of NAME.txt)")
    clone: bool = Field(True, description="false: speak from the description even when a reference exists")
