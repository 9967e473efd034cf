"""Commands whose issues are still open: they say so instead of pretending to work."""

from __future__ import annotations

from voicechat.errors import VoicechatError


def transcribe() -> None:
    """Batch transcription of audio files (not built yet)."""
    raise VoicechatError("`voicechat transcribe` is not built yet (its issue is open)")
