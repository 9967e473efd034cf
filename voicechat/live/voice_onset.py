"""The moment a voice starts over a playing reply, from the microphone's own frames: the fast barge-in signal.

RealtimeSTT reports speech only after its two voice detectors agree, a few hundred ms into the voice on a
live microphone; a barge-in should not wait that long. While a reply plays, each 32 ms frame of the
(echo-cancelled) microphone goes through Silero VAD here, on the event loop (0.2 ms a frame); two voiced
frames in a row are an onset. What the onset then does (cut the reply, or turn it down until its words are
judged) is the session's barge-in check, the same as for RealtimeSTT's report.
"""

from __future__ import annotations

from typing import Any

WINDOW_BYTES = 1024  # the 512 samples at 16 kHz that Silero judges at once
ONSET_FRAMES = 2  # voiced frames in a row: 64 ms, fewer false onsets than one frame
SPEECH_PROBABILITY = 0.5
QUIET_FRAMES = 10  # unvoiced frames (0.32 s) that end a voice, so that the next one is a new onset


class VoiceOnset:
    def __init__(self) -> None:
        from silero_vad import load_silero_vad

        self._model: Any = load_silero_vad(onnx=True)
        self._voiced = 0
        self._quiet = QUIET_FRAMES
        self._in_voice = False
        self._pending = b""

    @property
    def speaking(self) -> bool:
        """The last frame judged was voiced."""
        return self._voiced > 0

    def heard(self, pcm: bytes) -> bool:
        """16 kHz int16 audio of any length (the canceller's blocks vary): True when a new voice is confirmed
        in it. Silero judges 512 samples at a time; the rest waits for the next call."""
        self._pending += pcm
        onset = False
        while len(self._pending) >= WINDOW_BYTES:
            window, self._pending = self._pending[:WINDOW_BYTES], self._pending[WINDOW_BYTES:]
            onset = self._judge(window) or onset
        return onset

    def _judge(self, window: bytes) -> bool:
        import numpy as np
        import torch

        samples = torch.from_numpy(np.frombuffer(window, dtype=np.int16).astype(np.float32) / 32768)
        voiced = float(self._model(samples, 16000)) >= SPEECH_PROBABILITY
        self._voiced = self._voiced + 1 if voiced else 0
        self._quiet = 0 if voiced else self._quiet + 1
        if self._in_voice and self._quiet >= QUIET_FRAMES:
            self._in_voice = False
        if not self._in_voice and self._voiced >= ONSET_FRAMES:
            self._in_voice = True
            return True
        return False

    def reset(self) -> None:
        """No reply is playing: the next voice is judged afresh."""
        if self._voiced or self._in_voice or self._quiet < QUIET_FRAMES:
            self._model.reset_states()
        self._voiced, self._quiet, self._in_voice, self._pending = 0, QUIET_FRAMES, False, b""
