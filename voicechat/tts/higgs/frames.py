"""From streamed code columns to audio: undo the delay pattern, then decode finished frames in windows.

Higgs emits one column of codes per step, codebook k delayed by k steps, so frame j is complete once column
j + K - 1 has arrived (K codebooks). The one-shot path decodes frames 1 .. L-K-1 of L columns (the first frame
is the stream's BOS, the last its EOS), clipped to the codebook; `DelayPattern` yields exactly those frames.

The audio decoder is convolutional and non-causal: a sample depends on a few frames either side. Decoding a
window alone is exact only with enough neighbours, so `WindowedDecoder` decodes each chunk with `left_context`
frames before it and waits for `lookahead` frames after it, keeping only the chunk's own samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

Decode = Callable[[np.ndarray], np.ndarray]  # (codebooks, frames) codes -> samples, frames * samples_per_frame


class DelayPattern:
    """Columns in, finished frames out (in order), matching the one-shot decode's frame selection."""

    def __init__(self, num_codebooks: int, codebook_size: int) -> None:
        self.num_codebooks = num_codebooks
        self.codebook_size = codebook_size
        self._columns: list[np.ndarray] = []
        self._emitted = 1  # frame 0 is the BOS frame

    @property
    def columns(self) -> int:
        return len(self._columns)

    def push(self, column: np.ndarray) -> np.ndarray:
        """Add one column; return the frames (codebooks, n) that are now known not to be the final one."""
        self._columns.append(np.asarray(column, dtype=np.int64).reshape(self.num_codebooks))
        # frame j needs column j + K - 1; it is not the dropped last frame once column j + K exists
        ready = len(self._columns) - self.num_codebooks
        frames = [self._frame(j) for j in range(self._emitted, ready)]
        self._emitted = max(self._emitted, ready)
        if not frames:
            return np.zeros((self.num_codebooks, 0), dtype=np.int64)
        return np.stack(frames, axis=1)

    def _frame(self, j: int) -> np.ndarray:
        codes = np.array([self._columns[j + k][k] for k in range(self.num_codebooks)], dtype=np.int64)
        return np.clip(codes, 0, self.codebook_size - 1)


@dataclass(frozen=True)
class WindowPlan:
    first_frames: int
    chunk_frames: int
    left_context: int
    lookahead: int


class WindowedDecoder:
    """Frames in, PCM chunks out: each chunk decoded with its left context and lookahead."""

    def __init__(self, decode: Decode, samples_per_frame: int, plan: WindowPlan) -> None:
        self.decode = decode
        self.samples_per_frame = samples_per_frame
        self.plan = plan
        self._frames = np.zeros((0, 0), dtype=np.int64)
        self._done = 0  # frames already turned into audio
        self.decoded_frames = 0  # frames put through the decoder, context included (the cost)

    def push(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Add frames; yield every chunk whose lookahead has arrived."""
        self._append(frames)
        while True:
            size = self.plan.first_frames if self._done == 0 else self.plan.chunk_frames
            if self._available() - self._done < size + self.plan.lookahead:
                return
            yield self._chunk(self._done + size)

    def finish(self) -> np.ndarray:
        """The rest, once no more frames will come (its right edge is the true end, so no lookahead is owed)."""
        if self._available() <= self._done:
            return np.zeros(0, dtype=np.float32)
        return self._chunk(self._available())

    def _append(self, frames: np.ndarray) -> None:
        if frames.shape[1] == 0:
            return
        self._frames = frames if self._frames.size == 0 else np.concatenate([self._frames, frames], axis=1)

    def _available(self) -> int:
        return 0 if self._frames.size == 0 else int(self._frames.shape[1])

    def _chunk(self, end: int) -> np.ndarray:
        start = self._done
        window_start = max(0, start - self.plan.left_context)
        window_end = min(self._available(), end + self.plan.lookahead)
        audio = self.decode(self._frames[:, window_start:window_end])
        self.decoded_frames += window_end - window_start
        offset = (start - window_start) * self.samples_per_frame
        self._done = end
        return np.asarray(audio[offset : offset + (end - start) * self.samples_per_frame], dtype=np.float32)


def to_pcm16(audio: np.ndarray) -> bytes:
    """Float samples in [-1, 1] to 16-bit little-endian PCM."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
