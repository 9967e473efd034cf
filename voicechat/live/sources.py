"""Where the user's voice comes from: a microphone (sounddevice) or audio files fed at real-time pace.

Both give 16 kHz mono int16 `AudioFrame`s, the rate the recognizer wants; the microphone is opened at
a rate it supports (48 kHz mics included) and resampled with soxr.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicechat.errors import NoAudioDeviceError, UsageError, VoicechatError
from voicechat.events import AudioFrame

if TYPE_CHECKING:
    from voicechat.live.echo import EchoCanceller

STT_RATE = 16000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: one VAD window


def level_dbfs(pcm: bytes) -> float:
    import numpy as np

    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    if samples.size == 0:
        return -96.0
    rms = float(np.sqrt(np.mean(samples * samples))) / 32768.0
    return max(-96.0, 20.0 * math.log10(rms)) if rms > 0 else -96.0


def make_frame(pcm: bytes) -> AudioFrame:
    return AudioFrame(pcm=pcm, sample_rate=STT_RATE, level=level_dbfs(pcm))


def silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * STT_RATE))


def read_speech_file(path: Path) -> bytes:
    """Any common audio file (wav, flac, mp3, ogg, m4a; any rate, stereo downmixed) -> 16 kHz int16 PCM."""
    import numpy as np

    from voicechat.audio.decode import decode_audio

    samples = decode_audio(path, STT_RATE)
    return (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


def split_frames(pcm: bytes, samples: int = FRAME_SAMPLES) -> list[bytes]:
    size = 2 * samples
    frames = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    if frames and len(frames[-1]) < size:
        frames[-1] = frames[-1] + bytes(size - len(frames[-1]))
    return frames


class RealTimePacer:
    """Sleeps so that frames leave at the pace they would be spoken (drift-free over long runs)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.sent = 0.0

    async def wait(self, seconds: float) -> None:
        self.sent += seconds
        delay = self.start + self.sent - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _input_device(wanted: int | str | None) -> dict[str, Any]:
    from voicechat.audio.devices import list_devices

    inputs = [device for device in list_devices() if device.max_input_channels > 0]
    if not inputs:
        raise NoAudioDeviceError(
            "no microphone found: type instead with `voicechat talk --text`, or script turns with --input FILE.wav"
        )
    if wanted is None or wanted == "":
        chosen = next((d for d in inputs if d.is_default_input), inputs[0])
    else:
        matches = [d for d in inputs if str(wanted) == str(d.index) or str(wanted).lower() in d.name.lower()]
        if not matches:
            names = ", ".join(f"{d.index}: {d.name}" for d in inputs)
            raise UsageError(f"no input device matches '{wanted}': choose one of {names}")
        chosen = matches[0]
    return {"index": chosen.index, "name": chosen.name, "rate": int(chosen.default_sample_rate)}


class StreamResampler:
    """int16 mono blocks at the device's rate -> 16 kHz blocks, keeping filter state across blocks."""

    def __init__(self, rate: int) -> None:
        import soxr

        self.rate = rate
        self._stream = None if rate == STT_RATE else soxr.ResampleStream(rate, STT_RATE, 1, dtype="int16")

    def __call__(self, pcm: bytes) -> bytes:
        import numpy as np

        if self._stream is None:
            return pcm
        return bytes(self._stream.resample_chunk(np.frombuffer(pcm, dtype=np.int16)).tobytes())


OPEN_TIMEOUT = 10.0  # seconds for a device to deliver its first block
# A voice over a reply is heard this much sooner: with 32 ms blocks and a 50 ms buffer, a block reached the
# barge-in check 50-90 ms after its capture; 16 ms and 20 ms took the onset -> silence median from 214 to
# 122 ms on the rig (docs/benchmarks.md). Either alone gained little. The canceller's alignment holds at
# this setting, since a stream's place on the clock is the median of many blocks' reported times.
CAPTURE_SAMPLES = 256  # 16 ms at 16 kHz per microphone block
INPUT_LATENCY = 0.02  # seconds: PortAudio's input buffer


class MicrophoneSource:
    """Frames from an input device, resampled to 16 kHz, handed to the event loop from PortAudio's thread.

    With an `echo` canceller, each block is cleaned of the speakers' echo in PortAudio's thread, using the
    moment PortAudio says the block entered the microphone to find what the speakers played then.
    """

    def __init__(self, device: int | str | None = None, echo: EchoCanceller | None = None) -> None:
        self.device = _input_device(device)  # fails at once, with the fix, when there is none
        self.echo = echo
        self._stream: Any = None
        self._queue: asyncio.Queue[bytes] | None = None

    async def open(self, timeout: float = OPEN_TIMEOUT) -> None:
        """Start recording and return once the device has delivered its first block: from then on what is
        said is heard (a sound server can take seconds to connect a new stream on a busy machine)."""
        if self._queue is not None:
            return
        import sounddevice

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=200)
        first = asyncio.Event()
        rate = self.device["rate"]
        clean = self._cleaner(rate)

        def on_audio(data: Any, frames: int, timing: Any, status: Any) -> None:
            if not first.is_set():  # read from PortAudio's thread: at worst one extra call
                loop.call_soon_threadsafe(first.set)
            pcm = clean(bytes(data), timing, status)
            if pcm:
                loop.call_soon_threadsafe(_put_latest, queue, pcm)

        try:
            self._stream = sounddevice.RawInputStream(
                samplerate=rate, channels=1, dtype="int16", device=self.device["index"],
                blocksize=int(rate * CAPTURE_SAMPLES / STT_RATE), latency=INPUT_LATENCY, callback=on_audio,
            )
            self._stream.start()
        except sounddevice.PortAudioError as error:
            raise VoicechatError(
                f"cannot record from '{self.device['name']}': {error}; pick another with --input-device"
            ) from None
        self._queue = queue
        try:
            await asyncio.wait_for(first.wait(), timeout)
        except TimeoutError:
            self.close()
            raise VoicechatError(
                f"'{self.device['name']}' gave no audio within {timeout:.0f} s: check that the microphone is "
                "not muted or taken by another program, or pick another with --input-device"
            ) from None

    async def frames(self) -> AsyncIterator[AudioFrame]:
        await self.open()
        assert self._queue is not None
        try:
            while True:
                yield make_frame(await self._queue.get())
        finally:
            self.close()

    def close(self) -> None:
        if self._stream is not None:
            stream, self._stream, self._queue = self._stream, None, None
            stream.stop()
            stream.close()

    def _cleaner(self, rate: int) -> Callable[[bytes, Any, Any], bytes]:
        """Device blocks -> 16 kHz blocks, with the echo taken out when there is a canceller."""
        if self.echo is None:
            resample = StreamResampler(rate)
            return lambda pcm, timing, status: resample(pcm)
        import numpy as np

        from voicechat.live.echo import TimedResampler

        echo, timed = self.echo, TimedResampler(rate)

        def cancel(pcm: bytes, timing: Any, status: Any) -> bytes:
            # PortAudio's clock may not be the monotonic one: carry its "ADC time - now" across.
            captured = time.monotonic() + (timing.inputBufferAdcTime - timing.currentTime)
            samples, start = timed(np.frombuffer(pcm, dtype=np.int16), captured)
            return echo.process(samples.tobytes(), start, bool(status.input_overflow)) if samples.size else b""

        return cancel


def _put_latest(queue: asyncio.Queue[bytes], pcm: bytes) -> None:
    """Never block PortAudio: when the consumer lags, the oldest audio goes."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(pcm)
