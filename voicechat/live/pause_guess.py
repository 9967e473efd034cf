"""The words of an utterance so far, transcribed as a pause starts: the guess a speculative reply starts from.

RealtimeSTT makes no live text during a pause, and its live text lags the voice, so the latest live text
often misses the last words ("What is the capital of"). When a pause starts, the utterance's audio (from
a second before its voice was detected) is transcribed here, in this process, by a second copy of the
same small model on one thread, while RealtimeSTT's worker makes the final transcript. One guess at a
time; a pause that ended before its guess came gets none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class PauseGuesser:
    def __init__(self, model_dir: Path, language: str, device: str, compute_type: str) -> None:
        from faster_whisper import WhisperModel

        self._model: Any = WhisperModel(str(model_dir), device=device, compute_type=compute_type, cpu_threads=1)
        self.language = language
        self._busy = threading.Lock()
        self.transcribe(bytes(32000))  # the first call pays for setting up: not in the first pause

    def transcribe(self, pcm: bytes) -> str:
        import numpy as np

        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
        segments, _ = self._model.transcribe(samples, language=self.language, beam_size=1,
                                             condition_on_previous_text=False, without_timestamps=True)
        return " ".join(segment.text.strip() for segment in segments).strip()

    def guess(self, pcm: bytes, deliver: Callable[[str], None]) -> None:
        """Transcribe `pcm` in a daemon thread and hand the text to `deliver` (skipped while one is running)."""
        if not self._busy.acquire(blocking=False):
            return

        def work() -> None:
            try:
                deliver(self.transcribe(pcm))
            finally:
                self._busy.release()

        threading.Thread(target=work, name="voicechat-pause-guess", daemon=True).start()
