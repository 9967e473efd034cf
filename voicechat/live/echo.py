"""Acoustic echo cancellation: the speakers' own sound taken back out of the microphone.

On open speakers the microphone hears every reply. `PlayedAudio` keeps what the speaker sink played, at
16 kHz, on the monotonic clock at the moment it left the speaker (PortAudio reports that moment per block);
`EchoCanceller` takes each microphone block with the moment it entered the microphone, looks up what was
playing then as the reference, and lets WebRTC's AEC3 (pywebrtc-audio) subtract its echo. What remains of
the acoustic path (a room, a laptop's body, a virtual loopback) AEC3's own delay estimator finds.

`EchoGuard` is the second line: a transcript made while a reply plays that is made of the reply's own words
is its echo, not the user.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voicechat.events import Heard, HeardKind

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger("voicechat.echo")

RATE = 16000
AEC_FRAME = 160  # AEC3 works in 10 ms frames: anything else it pads, which would break the stream
# The reference is handed to AEC3 this far ahead of the microphone's moment: AEC3 finds echo delays from
# 0 to 500 ms but none below 0, and the placement of a stream on the clock is only good to tens of ms.
REFERENCE_LEAD = 0.1
# A stream's place on the clock: the median of the reported times of its blocks in this first stretch (in
# seconds, not blocks: the microphone's 16 ms blocks report times that wobble more than the 32 ms ones did)
SETTLE_SECONDS = 0.75
REANCHOR_SECONDS = 0.25  # a stream this far from its counted place has skipped (beyond what PortAudio flags)


def cancellation_problem() -> str | None:
    """None when the echo canceller can run here, else why not (talk then falls back to half duplex)."""
    try:
        from pywebrtc_audio import AudioProcessor

        AudioProcessor(sample_rate=RATE, echo_cancellation=True)
    except (ImportError, OSError, RuntimeError) as error:
        return f"pywebrtc-audio cannot run: {error}"
    return None


class StreamClock:
    """Places a stream's blocks on the monotonic clock, as absolute 16 kHz sample indexes.

    Counted samples are the truth within a stream; the times PortAudio reports per block wobble (by 28 ms
    on PulseAudio here, more as a stream starts), so the stream's offset is their median over its first
    blocks, and is found again after an xrun.
    """

    def __init__(self) -> None:
        self._counted = 0
        self._offsets: list[int] = []
        self._offset = 0
        self._anchored_at = 0  # the counted sample from which the offsets are being gathered

    def place(self, reported: float, count: int, xrun: bool = False) -> int:
        """The index of a block's first sample, given the time PortAudio reported for it."""
        import statistics

        offset = round(reported * RATE) - self._counted
        if xrun or (self._offsets and abs(offset - self._offset) > REANCHOR_SECONDS * RATE):
            self._offsets, self._anchored_at = [], self._counted
        if self._counted - self._anchored_at < SETTLE_SECONDS * RATE:
            self._offsets.append(offset)
            self._offset = round(statistics.median(self._offsets))
        at = self._counted + self._offset
        self._counted += count
        return at


class PlayedAudio:
    """A ring of the last `seconds` of played audio; index = round(monotonic seconds * 16000)."""

    def __init__(self, seconds: float = 4.0) -> None:
        import numpy as np

        self._ring = np.zeros(int(seconds * RATE), dtype=np.int16)
        self._end: int | None = None  # absolute index just after the last sample written
        self._clock = StreamClock()
        self._lock = threading.Lock()

    def publish(self, samples: npt.NDArray[np.int16], start: float, xrun: bool = False) -> None:
        """Samples that leave the speaker from monotonic time `start` on; `xrun`: the stream skipped."""
        if samples.size == 0:
            return
        with self._lock:
            at = self._clock.place(start, samples.size, xrun)
            if self._end is not None and at > self._end:
                self._write(self._end, _zeros(at - self._end))
            self._write(at, samples)
            self._end = at + samples.size

    def take(self, start: int, count: int) -> npt.NDArray[np.int16]:
        """`count` samples from absolute index `start`; silence where nothing was played (or kept)."""
        import numpy as np

        out = np.zeros(count, dtype=np.int16)
        with self._lock:
            if self._end is None:
                return out
            size = self._ring.size
            first, last = max(start, self._end - size), min(start + count, self._end)
            if first < last:
                positions = np.arange(first, last) % size
                out[first - start : last - start] = self._ring[positions]
        return out

    def _write(self, at: int, samples: npt.NDArray[np.int16]) -> None:
        import numpy as np

        size = self._ring.size
        if samples.size > size:
            at, samples = at + samples.size - size, samples[-size:]
        self._ring[np.arange(at, at + samples.size) % size] = samples


def _zeros(count: int) -> npt.NDArray[np.int16]:
    import numpy as np

    return np.zeros(min(count, 10 * RATE), dtype=np.int16)


class TimedResampler:
    """Blocks at a device's rate -> 16 kHz, each with the monotonic time its first output sample stands for.

    soxr holds back its filter's delay: the output of a block ends `delay()` samples before the block's end.
    """

    def __init__(self, rate: int) -> None:
        import soxr

        self.rate = rate
        self._stream = None if rate == RATE else soxr.ResampleStream(rate, RATE, 1, dtype="int16")

    def __call__(self, samples: npt.NDArray[np.int16], start: float) -> tuple[npt.NDArray[np.int16], float]:
        if self._stream is None:
            return samples, start
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(samples)
        end = start + samples.size / self.rate
        return out, end - (float(self._stream.delay()) + out.size) / RATE


@dataclass(frozen=True)
class EchoStats:
    frames: int  # 10 ms frames processed
    seconds_cpu: float  # time spent in AEC3


def _db(samples: npt.NDArray[np.int16]) -> float:
    import numpy as np

    x = samples.astype(np.float32) / 32768
    return float(10 * np.log10(np.mean(x * x) + 1e-10))


def _loudest_frame_db(samples: npt.NDArray[np.int16]) -> float:
    """The level of the loudest 10 ms of a block: a voice that begins late in a block counts at once."""
    whole = samples.size // AEC_FRAME * AEC_FRAME
    return max((_db(frame) for frame in samples[:whole].reshape(-1, AEC_FRAME)), default=_db(samples))


ECHO_WINDOW_SECONDS = 0.4  # the reference whose echo may still be arriving
PLAYING_DB = -45.0  # the reference is this loud: the speakers are playing
RESIDUE_MARGIN = 10.0  # dB under the echo expected of what plays: what AEC3 left of it, not a voice
OVER_ECHO_MARGIN = 6.0  # dB over the whole echo expected of what plays: even uncancelled echo is not this loud
# dB over the whole echo expected: far above what AEC3 leaves of it (40 dB under), a sound in the room. 6 dB
# under the echo, a voice's first sound trips it before its vowel: onset -> silence 234 -> 148 ms at the
# median on the rig, with no false hold in 40 replies (docs/benchmarks.md)
SOUND_MARGIN = -6.0


class ResidueGate:
    """The last guard on the microphone while the speakers play: a cleaned block quieter than the echo
    expected of what is playing, less RESIDUE_MARGIN, is what AEC3 left of the reply (it slips when a busy
    machine lets the streams drift), and is muted; a voice over the reply is louder than that.

    How loud the echo is (microphone level minus reference level) is learned while the microphone is
    muted for AEC3's first seconds."""

    def __init__(self) -> None:
        from collections import deque

        self._far: deque[tuple[float, int]] = deque()  # level and length of each recent reference block
        self._far_samples = 0
        self._gains: list[float] = []
        self.over_echo = False  # the last block was louder than its echo could be: a voice over the reply
        self.sound = False  # the last block was nearly as loud as the whole echo: a sound over the reply (or a slip)

    def passes(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16], clean: npt.NDArray[np.int16],
               learning: bool) -> bool:
        import statistics

        playing = self._playing(far)
        self.over_echo = self.sound = False
        if playing < PLAYING_DB:
            return True
        if learning:
            self._gains.append(_db(near) - playing)
            return True
        if not self._gains:
            return True
        expected = playing + statistics.median(self._gains)
        level = _db(clean)
        self.over_echo = level >= expected + OVER_ECHO_MARGIN
        self.sound = _loudest_frame_db(clean) >= expected + SOUND_MARGIN
        return level >= expected - RESIDUE_MARGIN

    def _playing(self, far: npt.NDArray[np.int16]) -> float:
        """The loudest reference block of the last ECHO_WINDOW_SECONDS, this one included (in seconds, not
        blocks: a microphone's blocks are 10 to 40 ms)."""
        self._far.append((_db(far), far.size))
        self._far_samples += far.size
        while self._far_samples - self._far[0][1] >= ECHO_WINDOW_SECONDS * RATE:
            self._far_samples -= self._far.popleft()[1]
        return max(level for level, _ in self._far)


LEARN_SECONDS = 5.0  # AEC3 needs this much played speech to learn the room; it lets echo through until then
PLAYING_LEVEL = 1e-4  # mean square (about -40 dBFS): the reference holds sound, not silence


class EchoCanceller:
    """16 kHz int16 microphone audio in, the same with the speakers' echo removed out (one thread only).

    Until AEC3 has heard LEARN_SECONDS of the speakers (the first reply of a session, or its greeting),
    its echo passes. With `mute_while_learning` the microphone is muted while they play then; without, what
    passes is left to the checks on the words heard (live/barge_in.py, EchoGuard), so that the user can cut
    the first reply short too.
    """

    def __init__(self, played: PlayedAudio, mute_while_learning: bool = True) -> None:
        from pywebrtc_audio import AudioProcessor

        self.played = played
        self._aec: Any = AudioProcessor(sample_rate=RATE, echo_cancellation=True)
        self._pending = b""
        self._clock = StreamClock()
        self.frames = 0
        self.cpu = 0.0
        self.learned = 0.0  # seconds of played sound AEC3 has had
        self.voice_over_echo_at = float("-inf")  # monotonic time of the latest block louder than any echo
        self.sound_over_echo_at = float("-inf")  # and of the latest block nearly as loud as the whole echo
        self.mute_while_learning = mute_while_learning
        self._gate = ResidueGate()
        # called in the microphone's thread on each block nearly as loud as the reply's whole echo: the barge-in check
        # pauses the reply from there, without waiting for the event loop's turn
        self.on_sound: Callable[[], None] | None = None

    @property
    def learning(self) -> bool:
        return self.learned < LEARN_SECONDS

    def process(self, pcm: bytes, captured: float, xrun: bool = False) -> bytes:
        """`pcm` entered the microphone from monotonic time `captured` on (`xrun`: the stream skipped before
        it); returns the cleaned audio that is ready, in 10 ms steps."""
        import time

        import numpy as np

        at = self._clock.place(captured, len(pcm) // 2, xrun) - len(self._pending) // 2
        self._pending += pcm
        usable = len(self._pending) // (2 * AEC_FRAME) * AEC_FRAME
        if usable == 0:
            return b""
        near = np.frombuffer(self._pending[: 2 * usable], dtype=np.int16)
        self._pending = self._pending[2 * usable :]
        far = self.played.take(at + round(REFERENCE_LEAD * RATE), usable)
        started = time.perf_counter()
        clean = self._aec.process(near, far)
        self.cpu += time.perf_counter() - started
        self.frames += usable // AEC_FRAME
        learning = self.learning
        if learning:
            clean = self._count_learning(clean, far)
        if not self._gate.passes(near, far, clean, learning):
            clean = np.zeros_like(clean)
        else:
            if self._gate.over_echo:
                self.voice_over_echo_at = time.monotonic()
            if self._gate.sound:
                self.sound_over_echo_at = time.monotonic()
                if self.on_sound is not None:
                    log.debug("sound over the echo in a block captured %.0f ms ago, %.0f ms long",
                              1000 * (time.monotonic() - captured), 1000 * usable / RATE)
                    self.on_sound()
        return bytes(clean.tobytes())

    def heard_sound_over_echo(self, within: float = 0.05) -> bool:
        """Whether the latest cleaned block (within `within` seconds) was nearly as loud as the reply's whole echo:
        the first sign of a voice over the reply, before any voice detector can tell (read from another
        thread)."""
        import time

        return time.monotonic() - self.sound_over_echo_at <= within

    def heard_voice_over_echo(self, within: float = 0.5) -> bool:
        """Whether, in the last `within` seconds, the microphone heard a sound louder than the reply's echo
        could be (read from another thread: a float, written whole)."""
        import time

        return time.monotonic() - self.voice_over_echo_at <= within

    def _count_learning(self, clean: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        import numpy as np

        frames = far.reshape(-1, AEC_FRAME).astype(np.float32) / 32768
        playing = (frames * frames).mean(axis=1) > PLAYING_LEVEL
        self.learned += playing.sum() * AEC_FRAME / RATE
        if not self.mute_while_learning:
            return clean
        muted = clean.reshape(-1, AEC_FRAME).copy()
        muted[playing] = 0
        return muted.reshape(-1)

    def stats(self) -> EchoStats:
        return EchoStats(self.frames, self.cpu)


# --- the second guard: transcripts made of the reply's own words ----------------------------------

ECHO_SHARE = 0.6  # this share of a transcript's words among the words just played makes it an echo
ECHO_TAIL = 6.0  # seconds after a reply ends in which its echo may still come back as a transcript (slow when busy)


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


class EchoGuard:
    """Decides whether a final transcript heard while a reply played (or just after) is that reply's echo."""

    def __init__(self, share: float = ECHO_SHARE, tail: float = ECHO_TAIL) -> None:
        self.share, self.tail = share, tail
        self._replying_at = float("-inf")

    def hears_echo(self, event: Heard, replying: bool, played: Iterable[str]) -> bool:
        """Called for every transcript event, with whether a reply is in flight and the words it has played."""
        import time

        now = time.monotonic()
        if replying:
            self._replying_at = now
        if event.kind is not HeardKind.FINAL or now - self._replying_at > self.tail:
            return False
        return self.is_echo(event.text, played)

    def is_echo(self, transcript: str, played: Iterable[str]) -> bool:
        heard = words_of(transcript)
        if not heard:
            return True  # nothing recognizable: no turn to take
        spoken = set()
        for text in played:
            spoken.update(words_of(text))
        if not spoken:
            return False
        matching = sum(word in spoken for word in heard)
        return matching / len(heard) >= self.share
