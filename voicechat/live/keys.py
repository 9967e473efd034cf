"""Keys in the live view: space push-to-talk, m mute, Esc interrupt, q quit, and the one-line help for them.

The terminal is put in cbreak mode (keys arrive one by one, unechoed; Ctrl+C still interrupts) while the
loop runs, and restored after. A closed microphone feeds the session silence rather than nothing, so the
recognizer's clock runs on and a turn in progress ends as if the user stopped speaking.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voicechat.events import AudioFrame

if TYPE_CHECKING:
    from voicechat.session import Session

HELP = "space push-to-talk · m mute · Esc interrupt · q quit"
ESC = b"\x1b"


@dataclass
class MicGate:
    """Which microphone frames reach the session. Hands-free until space is pressed; then push-to-talk:
    each press of space opens or closes the microphone. Mute closes it whatever the mode."""

    muted: bool = False
    push_to_talk: bool = False
    talking: bool = False

    @property
    def open(self) -> bool:
        return not self.muted and (not self.push_to_talk or self.talking)

    def press_space(self) -> None:
        if not self.push_to_talk:
            self.push_to_talk, self.talking = True, True
        else:
            self.talking = not self.talking

    def toggle_mute(self) -> None:
        self.muted = not self.muted

    def status(self) -> str:
        if self.muted:
            return "MUTED (m to unmute)"
        if self.push_to_talk:
            return "push-to-talk: talking (space to stop)" if self.talking else "push-to-talk: space to talk"
        return "hands-free"

    def pass_frame(self, frame: AudioFrame) -> AudioFrame:
        """The frame, or silence of the same length when the microphone is closed."""
        if self.open:
            return frame
        return AudioFrame(pcm=bytes(len(frame.pcm)), sample_rate=frame.sample_rate, level=-96.0)


class KeyHelp:
    """The bottom line of the live view: what the keys do, and the microphone's state."""

    def __init__(self, gate: MicGate) -> None:
        self.gate = gate

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text(f"{HELP}  ·  mic {self.gate.status()}", style="dim")


class LiveKeys:
    """The keys of one live session: the microphone gate, Esc's interrupt, and q's request to quit."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.gate = MicGate()
        self.help = KeyHelp(self.gate)
        self.quit = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def press(self, data: bytes) -> None:
        if data == ESC:
            task = asyncio.ensure_future(self.session.interrupt())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if data.startswith(ESC):
            return  # an arrow or function key: ignored
        for key in data.decode(errors="ignore").lower():
            if key == " ":
                self.gate.press_space()
            elif key == "m":
                self.gate.toggle_mute()
            elif key == "q":
                self.quit.set()

    @contextlib.contextmanager
    def reading(self, stream: Any = None) -> Iterator[bool]:
        """Take key presses from `stream` (stdin) while the block runs; yields False, doing nothing, when it
        is not a terminal."""
        stream = stream or sys.stdin
        if not stream.isatty():
            yield False
            return
        import termios
        import tty

        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
        loop = asyncio.get_running_loop()
        tty.setcbreak(fd)
        loop.add_reader(fd, lambda: self.press(os.read(fd, 16)))
        try:
            yield True
        finally:
            loop.remove_reader(fd)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
