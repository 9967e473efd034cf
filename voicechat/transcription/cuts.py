"""Where to cut a long recording: in a pause near each evenly spaced target.

Silero VAD (the ONNX copy inside faster-whisper) runs only on a window around each target, so finding the
cuts costs the same for a 5-minute file as for a 5-hour one. Among the pauses in a window the longest wins
(a sentence end over a comma), with a small pull toward the target so the pieces stay about equal; where
nobody pauses in the whole window, the quietest 30 ms there is used.

A cut in a pause drops the pause's middle: the left piece keeps up to 0.3 s of silence after its speech (a
soft word ending that Silero already calls silence stays in), the right piece 0.1 s before its speech.
Whisper puts a piece's first word at its very start, so the first cue after a cut starts just before the
speech, as one pass would put it, not in the middle of the pause.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SEARCH_SECONDS = 8.0  # each side of a target
MIN_PAUSE_SECONDS = 0.12
LONG_ENOUGH_SECONDS = 1.0  # a pause this long is as good as any longer one
PULL_PER_SECOND = 0.04  # seconds of pause a cut gives up for each second nearer the target
FRAME_SECONDS = 0.03
TAIL_SECONDS = 0.3  # of a pause kept after the speech before a cut
LEAD_SECONDS = 0.1  # and before the speech after it


Cut = tuple[int, int]  # (where the left piece ends, where the right piece starts), in samples


def cut_points(samples: npt.NDArray[np.float32], rate: int, count: int) -> list[Cut]:
    """`count - 1` cuts, in order, that make `count` pieces of about equal length out of `samples`."""
    step = len(samples) / count
    reach = int(min(SEARCH_SECONDS, step / rate / 4) * rate)
    cuts: list[Cut] = []
    for index in range(1, count):
        target = round(index * step)
        low = max(cuts[-1][1] + 1 if cuts else 1, target - reach)
        high = min(len(samples) - 1, target + reach)
        if high - low < 2:
            point = max(low, min(target, high))
            cuts.append((point, point))
            continue
        end, start = best_cut(samples[low:high], rate, target - low)
        cuts.append((low + end, low + start))
    return cuts


def best_cut(window: npt.NDArray[np.float32], rate: int, target: int) -> Cut:
    """Where to cut `window`: in its best pause, keeping a little of it on each side, else at its quietest."""
    pauses = find_pauses(window, rate)
    if not pauses:
        point = quietest(window, rate, target)
        return point, point

    def score(pause: tuple[int, int]) -> float:
        length = min(pause[1] - pause[0], LONG_ENOUGH_SECONDS * rate)
        return (length - PULL_PER_SECOND * abs((pause[0] + pause[1]) / 2 - target)) / rate

    start, end = max(pauses, key=score)
    tail = min(int(TAIL_SECONDS * rate), (end - start) // 2)
    lead = min(int(LEAD_SECONDS * rate), (end - start) - tail)
    return start + tail, end - lead


def find_pauses(window: npt.NDArray[np.float32], rate: int) -> list[tuple[int, int]]:
    """(start, end) samples of the stretches Silero hears no speech in, at least MIN_PAUSE_SECONDS long."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=100, speech_pad_ms=0)
    speech = get_speech_timestamps(window, options, sampling_rate=rate)
    edges = [0] + [bound for span in speech for bound in (span["start"], span["end"])] + [len(window)]
    shortest = MIN_PAUSE_SECONDS * rate
    return [(start, end) for start, end in zip(edges[::2], edges[1::2], strict=True) if end - start >= shortest]


def quietest(window: npt.NDArray[np.float32], rate: int, target: int) -> int:
    """The middle of the 30 ms frame with the least energy, the nearest to the target among equals."""
    import numpy as np

    frame = max(1, int(FRAME_SECONDS * rate))
    frames = len(window) // frame
    if frames == 0:
        return min(target, len(window) - 1)
    energy = np.square(window[: frames * frame].astype(np.float64)).reshape(frames, frame).mean(axis=1)
    middles = np.arange(frames) * frame + frame // 2
    order = np.lexsort((np.abs(middles - target), np.round(energy, 12)))
    return int(middles[order[0]])
