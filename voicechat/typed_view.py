"""What `talk --text` shows: each reply streamed as it arrives, under each character's name, and one line for
every notice, wait or failure (on stderr, so stdout carries only the conversation)."""

from __future__ import annotations

from typing import Any, assert_never

from voicechat.events import (
    AudioChunk,
    Heard,
    Notice,
    ReplyAwaited,
    Sentence,
    SessionEvent,
    TextDelta,
    TurnFinished,
    TurnStarted,
)
from voicechat.live.view import awaited_line


class TypedView:
    """Each character's part on its own line after a bold name, printed as it arrives; whitespace at the
    edges of a part is held back so a part never ends in a blank line."""

    def __init__(self, out: Any, err: Any, interactive: bool = False) -> None:
        self.out, self.err, self.interactive = out, err, interactive
        self.character: str | None = None
        self._held = ""

    def handle(self, event: SessionEvent) -> None:
        match event:
            case TextDelta():
                self._show(event)
            case Notice():
                self._note(f"note: {event.text}")
            case ReplyAwaited():
                how = "; type a new line to interrupt it" if self.interactive else ""
                self._note(awaited_line(event) + how)
            case TurnFinished():
                self._end_line()
                if event.error and event.cut:
                    self._note(f"reply cut: {event.error}; what came is kept in history as cut, go on")
                elif event.error:
                    self._note(f"error: {event.error}")
            case Heard() | TurnStarted() | Sentence() | AudioChunk():
                pass
            case _:
                assert_never(event)

    def _show(self, delta: TextDelta) -> None:
        from rich.text import Text

        text = delta.text
        if delta.character != self.character:
            text = text.lstrip()
            if not text:
                return
            self._end_line()
            self.out.print(Text(f"{delta.character}: ", style="bold cyan"), end="", soft_wrap=True)
            self.character = delta.character
        body = text.rstrip()
        if body:
            self.out.print(self._held + body, end="", markup=False, highlight=False, soft_wrap=True)
            self._held = ""
        self._held += text[len(body):]

    def _note(self, line: str) -> None:
        self._end_line()
        self.err.print(line, markup=False, highlight=False, soft_wrap=True)

    def _end_line(self) -> None:
        if self.character is not None:
            self.out.print()
            self.character = None
        self._held = ""
