"""Where spoken audio goes: a WAV file, a WAV stream on stdout, or the speakers.

Every sink takes `AudioChunk`s in order, learns the sample rate from the first one, and is finished
with `close()` (keep what was written) or `abort()` (throw it away: no partial file is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from voicechat.errors import VoicechatError
from voicechat.events import AudioChunk
from voicechat.fileio import output_mode

log = logging.getLogger("voicechat.sinks")

if TYPE_CHECKING:
    from voicechat.live.echo import PlayedAudio

_STREAMING_SIZE = 0xFFFFFFFF  # "unknown length" in a RIFF header written before the audio is known


class AudioSink(Protocol):
    async def write(self, chunk: AudioChunk) -> None: ...

    async def interrupt(self) -> None:
        """Drop what is queued but not yet heard (barge-in); the sink stays open for the next reply."""
        ...

    async def close(self) -> None: ...

    async def abort(self) -> None: ...


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """A 44-byte PCM WAV header; `data_bytes` may be the streaming placeholder."""
    riff_size = min(data_bytes + 36, _STREAMING_SIZE)
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack(
            "<IHHIIHH",
            16,
            1,
            channels,
            sample_rate,
            sample_rate * channels * sample_width,
            channels * sample_width,
            8 * sample_width,
        )
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class _RateGuard:
    def __init__(self) -> None:
        self.sample_rate: int | None = None

    def check(self, chunk: AudioChunk) -> bool:
        """True for the first chunk (header not yet written)."""
        if self.sample_rate is None:
            self.sample_rate = chunk.sample_rate
            return True
        if chunk.sample_rate != self.sample_rate:
            raise VoicechatError(
                f"voices with different sample rates ({self.sample_rate} and {chunk.sample_rate} Hz) "
                "cannot share one WAV output: pick voices of one engine"
            )
        return False


class WavStreamSink:
    """WAV to a binary stream (stdout). The header says "unknown length" unless the stream can seek back."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.rate = _RateGuard()
        self.data_bytes = 0

    async def write(self, chunk: AudioChunk) -> None:
        if self.rate.check(chunk):
            self.stream.write(wav_header(chunk.sample_rate, _STREAMING_SIZE - 36))
        self.stream.write(chunk.pcm)
        self.stream.flush()
        self.data_bytes += len(chunk.pcm)

    async def interrupt(self) -> None:
        """Nothing is queued: every written byte is already in the stream."""

    async def close(self) -> None:
        if self.rate.sample_rate is None:
            self.stream.write(wav_header(22050, 0))
        elif self.stream.seekable():
            self.stream.seek(0)
            self.stream.write(wav_header(self.rate.sample_rate, self.data_bytes))
        self.stream.flush()

    async def abort(self) -> None:
        self.stream.flush()


class WavFileSink(WavStreamSink):
    """WAV written to a temporary file beside `target` and moved into place on close."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        handle = tempfile.NamedTemporaryFile("wb", dir=self.target.parent, prefix=f".{self.target.name}.",
                                             suffix=".part", delete=False)
        os.fchmod(handle.fileno(), output_mode())  # the umask's mode, as for any output, not the temp file's 0600
        super().__init__(handle)
        self._handle = handle

    async def close(self) -> None:
        try:
            await super().close()
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._handle.name, self.target)
        except BaseException:
            await self.abort()
            raise

    async def abort(self) -> None:
        self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._handle.name)


OUTPUT_LATENCY = 0.1  # seconds PortAudio buffers: barge-in silence comes within this (plus the device's own)
HANDED_BLOCKS = 64  # more than PortAudio's buffer holds at any block size
QUEUED_SECONDS = 0.1  # audio held ahead of PortAudio's buffer, so a busy event loop does not starve it
STALL_SECONDS = 3.0  # PortAudio asked for no audio this long: the output has stopped


def _scaled(block: bytes, gain: float) -> bytes:
    import numpy as np

    return (np.frombuffer(block, dtype=np.int16) * gain).astype(np.int16).tobytes()


class SpeakerSink:
    """Plays on an output device through sounddevice.

    PortAudio pulls the audio from a short queue in its own thread (a callback stream), so barge-in
    drops the queue at once, and each block's moment at the speaker is known: with `played` set, what
    is played is published there, on the monotonic clock, as the echo canceller's reference.
    """

    def __init__(self, device: int | str | None = None, played: PlayedAudio | None = None) -> None:
        from voicechat.audio.devices import resolve_output_device

        self.device = resolve_output_device(device)
        self.played = played
        self.rate = _RateGuard()
        self._stream: Any = None  # sounddevice.RawOutputStream once the first chunk sets the rate
        self._queue = bytearray()
        self._room = threading.Condition()
        self._resample: Any = None
        self._last_fill = 0.0
        self.gain = 1.0  # set from the event loop, read by PortAudio's thread
        # the blocks handed to PortAudio and when each reaches the speaker: a duck takes back the unheard ones
        self._handed: deque[tuple[float, float, bytes]] = deque(maxlen=HANDED_BLOCKS)
        self._restarting = threading.Lock()  # one abort-and-start of the stream at a time
        # an abort drops audio that was counted as played: the reference must be placed on the clock again
        self._replaced = False

    def duck(self, gain: float) -> None:
        """Play at `gain` (1.0: full volume) from now on: a reply giving way to a voice. What PortAudio
        already holds is taken back and played again at the new gain, so the change is heard at once.
        Gain 0 holds the reply: silence, and what was not heard waits in the queue until the gain rises."""
        changed, self.gain = gain != self.gain, gain
        if changed and self._stream is not None and self._stream.active:
            threading.Thread(target=self._restart, args=(True,), name="voicechat-duck", daemon=True).start()

    def _open(self, sample_rate: int) -> None:
        import sounddevice

        from voicechat.live.echo import TimedResampler

        self._resample = TimedResampler(sample_rate)
        try:
            stream = sounddevice.RawOutputStream(
                samplerate=sample_rate, channels=1, dtype="int16", device=self.device,
                latency=OUTPUT_LATENCY, callback=self._fill,
            )
            stream.start()
        except sounddevice.PortAudioError as error:
            raise VoicechatError(
                f"cannot play on output device {self.device}: {error}; choose another with --output-device "
                "(see `voicechat devices`) or write a file with -o out.wav"
            ) from None
        self._last_fill = time.monotonic()
        self._stream = stream

    def _fill(self, outdata: Any, frames: int, timing: Any, status: Any) -> None:
        """PortAudio's thread: the next block from the queue, silence where it runs dry."""
        size = 2 * frames
        self._last_fill = time.monotonic()
        with self._room:
            held = self.gain == 0.0
            block = b"" if held else bytes(self._queue[:size])
            del self._queue[: len(block)]
            self._room.notify_all()
            if block:
                at = time.monotonic() + (timing.outputBufferDacTime - timing.currentTime)
                self._handed.append((at, len(block) / 2 / (self.rate.sample_rate or 1), block))
        block += bytes(size - len(block))
        if self.gain != 1.0 and not held:
            block = _scaled(block, self.gain)
        outdata[:] = block
        if self.played is not None:
            replaced, self._replaced = self._replaced, False
            self._publish(block, timing, bool(status.output_underflow) or replaced)

    def _publish(self, block: bytes, timing: Any, xrun: bool) -> None:
        import numpy as np

        # PortAudio's clock may not be the monotonic one: carry its "DAC time - now" across.
        start = time.monotonic() + (timing.outputBufferDacTime - timing.currentTime)
        samples, at = self._resample(np.frombuffer(block, dtype=np.int16), start)
        assert self.played is not None
        self.played.publish(samples, at, xrun)

    def _stalled(self) -> bool:
        """PortAudio stopped asking for audio (the stream died, or the device hangs); a stream that a barge-in
        is aborting and starting again is inactive for a moment, and has not stopped."""
        if self._restarting.locked():
            return False
        return not self._stream.active or time.monotonic() - self._last_fill > STALL_SECONDS

    def _wait_for_room(self) -> None:
        assert self.rate.sample_rate is not None
        limit = 2 * int(self.rate.sample_rate * QUEUED_SECONDS)
        with self._room:
            while len(self._queue) >= limit:
                if self._stalled():
                    raise VoicechatError(f"output device {self.device} stopped playing: choose another with "
                                         "--output-device (see `voicechat devices`)")
                self._room.wait(0.2)

    def _wait_until_played(self) -> None:
        with self._room:
            while self._queue and not self._stalled():
                self._room.wait(0.2)

    async def write(self, chunk: AudioChunk) -> None:
        if self.rate.check(chunk):
            self._open(chunk.sample_rate)
        await asyncio.to_thread(self._wait_for_room)
        with self._room:
            self._queue += chunk.pcm

    async def interrupt(self) -> None:
        with self._room:
            self._queue.clear()
            self._room.notify_all()
        if self._stream is not None and self._stream.active:
            await asyncio.to_thread(self._restart, False)

    def _restart(self, replay: bool) -> None:
        """Abort the stream, which drops what PortAudio (and the sound server behind it) holds, so a barge-in
        is silent now rather than OUTPUT_LATENCY later, and start it again (silence until the next reply).
        `replay`: the dropped blocks not yet heard go back in front of the queue (a duck)."""
        import sounddevice

        with self._restarting:
            try:
                self._stream.abort()
                now = time.monotonic()
                with self._room:
                    if replay:  # a block more than half heard is not played twice
                        self._queue[:0] = b"".join(block for at, seconds, block in self._handed
                                                   if at + seconds / 2 > now)
                    else:  # a cut: nothing a duck put back in the meantime may play
                        self._queue.clear()
                    self._handed.clear()
                self._replaced = True
                self._stream.start()
            except sounddevice.PortAudioError:
                log.warning("the output stream did not restart after a barge-in", exc_info=True)
            self._last_fill = time.monotonic()

    async def close(self) -> None:
        if self._stream is not None:
            await asyncio.to_thread(self._wait_until_played)
            await asyncio.sleep(float(self._stream.latency))  # PortAudio's own buffer
            self._stream.stop()
            self._stream.close()

    async def abort(self) -> None:
        if self._stream is not None:
            await self.interrupt()
            self._stream.abort()  # drops what is buffered at once
            self._stream.close()
