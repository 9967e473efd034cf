"""Scripted turns: audio files spoken into the same Session a microphone would feed, at real-time pace.

Between and after inputs the feed is silence, as a quiet room would give. Each input waits for the
previous reply to finish, unless `interrupt_after` is set: then it starts that many seconds after the
previous reply's first audio, which is how a barge-in is scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from voicechat.events import AudioChunk, SessionEvent, TurnFinished, TurnStarted
from voicechat.live.sources import RealTimePacer, make_frame, read_speech_file, silence, split_frames
from voicechat.session import Session

LEAD_SILENCE = 0.3
NO_SPEECH_TIMEOUT = 15.0  # seconds after an input ends with no turn started: nothing was recognized
REPLY_TIMEOUT = 300.0


@dataclass(frozen=True)
class ScriptResult:
    turns: int
    failed_inputs: tuple[str, ...]


class Feeder:
    """Feeds the session a frame every 32 ms: queued speech first, silence otherwise.

    While a file is being fed, the listener holds the turn open (`whole=True`), so that no pause inside
    the file ends it: each file is one turn. Its end is judged like any pause once the file is fed.
    """

    def __init__(self, session: Session, whole: bool = True) -> None:
        self.session = session
        self.whole = whole
        self.pending: deque[bytes] = deque()
        self.speech_done = asyncio.Event()

    def say(self, pcm: bytes) -> None:
        self.speech_done.clear()
        if self.whole:
            _turn_hold(self.session, True)
        self.pending.extend(split_frames(silence(LEAD_SILENCE) + pcm))

    async def run(self) -> None:
        pacer = RealTimePacer()
        quiet = split_frames(silence(0.032))[0]
        while True:
            last = False
            if self.pending:
                pcm = self.pending.popleft()
                last = not self.pending
            else:
                pcm = quiet
            frame = make_frame(pcm)
            self.session.feed(frame)
            if last:
                if self.whole:
                    _turn_hold(self.session, False)
                self.speech_done.set()
            await pacer.wait(frame.duration)


def _turn_hold(session: Session, held: bool) -> None:
    """Hold (or release) the listener's turn, where it can (stand-in listeners of benchmarks cannot)."""
    listener = session.listener
    method = getattr(listener, "hold_turn" if held else "release_turn", None)
    if method is not None:
        method()


class _TurnWatch:
    """Which turns have started, played their first audio, or failed, from the session's events."""

    def __init__(self) -> None:
        self.started: set[int] = set()
        self.first_audio: set[int] = set()
        self.errors: dict[int, str] = {}
        self.current = -1
        self.changed = asyncio.Event()

    def see(self, event: SessionEvent) -> None:
        if isinstance(event, TurnStarted):
            self.current = event.index
            self.started.add(event.index)
        elif isinstance(event, AudioChunk):
            self.first_audio.add(self.current)
        elif isinstance(event, TurnFinished) and event.error:
            self.errors[event.index] = event.error
        else:
            return
        self.changed.set()

    async def wait(self, found: set[int], index: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while index not in found:
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return True


async def run_script(session: Session, inputs: list[Path], interrupt_after: float | None = None,
                     whole: bool = True) -> ScriptResult:
    """Speak each input into the session; `whole=False` lets pauses inside a file end the turn (benchmarks)."""
    speech = [read_speech_file(path) for path in inputs]  # bad files fail before anything runs
    watch = _TurnWatch()
    unobserve = session.observe(watch.see)
    feeder = Feeder(session, whole)
    feeding = asyncio.create_task(feeder.run())
    failed: list[str] = []
    # Turn numbers go on from those already taken (a greeting, or an earlier conversation continued).
    first_index, finished_before = session.conversation.turns, session.turns_finished
    try:
        for position, (path, pcm) in enumerate(zip(inputs, speech, strict=True)):
            index = first_index + len(watch.started)
            feeder.say(pcm)
            await feeder.speech_done.wait()
            if not await watch.wait(watch.started, index, NO_SPEECH_TIMEOUT):
                failed.append(f"{path}: no speech recognized")
                continue
            if interrupt_after is not None and position < len(inputs) - 1:
                await watch.wait(watch.first_audio, index, REPLY_TIMEOUT)
                await asyncio.sleep(interrupt_after)
            elif not await session.wait_for_turns(finished_before + index - first_index + 1, timeout=REPLY_TIMEOUT):
                failed.append(f"{path}: no reply within {REPLY_TIMEOUT:.0f} s")
            elif index in watch.errors:
                failed.append(f"{path}: no full reply ({watch.errors[index]})")
    finally:
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        unobserve()
    return ScriptResult(session.turns_finished - finished_before, tuple(failed))
