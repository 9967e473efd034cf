"""The Piper engine's settings: `[piper]` in a voice."""

from __future__ import annotations

from pydantic import Field

from voicechat.config.strict import Strict


class PiperVoiceOptions(Strict):
    model: str = Field(
        "en_US-joe-medium", description="bundled voice name, or a path to a Piper .onnx (relative to voices/)"
    )
    speaker_id: int | None = Field(None, ge=0, description="speaker of a multi-speaker model")
    length_scale: float = Field(1.0, ge=0.25, le=4.0, description="speaking slowness (<1 faster, >1 slower)")
    noise_scale: float | None = Field(None, ge=0.0, le=2.0, description="generator noise")
    noise_w_scale: float | None = Field(None, ge=0.0, le=2.0, description="phoneme width noise")
    volume: float = Field(1.0, gt=0.0, le=4.0, description="loudness multiplier")
