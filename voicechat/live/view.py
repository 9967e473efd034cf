"""What the user sees during `talk`: a live Rich view on a terminal, plain lines otherwise.

Both take the Session's events in order. The live view shows what the user is saying as they say it,
each character's reply as it streams, an input level meter, and per turn a latency line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, assert_never

from voicechat.events import (
    AudioChunk,
    Heard,
    HeardKind,
    Notice,
    ReplyAwaited,
    Sentence,
    SessionEvent,
    TextDelta,
    TurnFinished,
    TurnMetrics,
    TurnStarted,
)

HISTORY_LINES = 12


def latency_line(metrics: TurnMetrics) -> str:
    steps = (("transcript", metrics.transcript), ("first token", metrics.first_token),
             ("first sentence", metrics.first_sentence), ("first audio", metrics.first_audio))
    shown = [f"{name} {value * 1000:.0f} ms" for name, value in steps if value is not None]
    return "end of speech -> " + " -> ".join(shown) if shown else "no reply"


def awaited_line(event: ReplyAwaited) -> str:
    return f"waiting for the reply ({event.waited:g} s so far; it fails after {event.timeout:g} s)"


def level_meter(dbfs: float, width: int = 20) -> str:
    filled = max(0, min(width, int((dbfs + 60) / 60 * width)))
    return "▮" * filled + "▯" * (width - filled)


@dataclass
class ViewState:
    user_name: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (speaker, text), finished and in flight
    partial: str = ""
    level: float = -96.0
    latency: str = ""
    status: str = "listening"

    def handle(self, event: SessionEvent) -> None:
        match event:
            case Heard(kind=HeardKind.FINAL):
                self.partial = ""
                self.lines.append((self.user_name, event.text))
            case Heard(kind=HeardKind.UPDATE | HeardKind.STABLE):
                self.partial = event.text
                self.status = "hearing you"
            case TurnStarted():
                self.status = "thinking"
            case ReplyAwaited():
                self.status = f"waiting for the reply (fails after {event.timeout:g} s)"
            case TextDelta():
                self.status = "replying"
                self._add_reply_text(event)
            case Notice():
                self.lines.append(("note", event.text))
            case TurnFinished():
                self.status = "listening"
                self.latency = latency_line(event.metrics) + (" (interrupted)" if event.interrupted else "")
                if event.error:
                    self.lines.append(("error", event.error))
            case Heard() | Sentence() | AudioChunk():
                pass
            case _:
                assert_never(event)
        del self.lines[:-HISTORY_LINES]

    def _add_reply_text(self, delta: TextDelta) -> None:
        if self.lines and self.lines[-1][0] == delta.character and self.lines[-1][0] != self.user_name:
            self.lines[-1] = (delta.character, self.lines[-1][1] + delta.text)
        else:
            self.lines.append((delta.character, delta.text.lstrip()))


class LiveView:
    """Rich renderable over a ViewState; wrap it in rich.live.Live."""

    def __init__(self, state: ViewState) -> None:
        self.state = state

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.text import Text

        rows: list[Any] = []
        for speaker, text in self.state.lines:
            style = "bold cyan" if speaker == self.state.user_name else ("red" if speaker == "error" else "bold green")
            rows.append(Text.from_markup(f"[{style}]{escape(speaker)}:[/] {escape(text.strip())}"))
        if self.state.partial:
            rows.append(Text.from_markup(f"[dim cyan]{escape(self.state.user_name)}: {escape(self.state.partial)}…[/]"))
        meter = level_meter(self.state.level)
        rows.append(Text.from_markup(f"[dim]mic {meter} {self.state.status}[/]"))
        if self.state.latency:
            rows.append(Text.from_markup(f"[dim]{escape(self.state.latency)}[/]"))
        return Group(*rows)


class PlainView:
    """Plain lines for pipes and scripts: the conversation on stdout, latency on stderr."""

    def __init__(self, user_name: str, out: Any, err: Any) -> None:
        self.user_name, self.out, self.err = user_name, out, err
        self._replies: dict[str, list[str]] = {}

    def handle(self, event: SessionEvent) -> None:
        match event:
            case Heard(kind=HeardKind.FINAL):
                self._line(self.out, f"{self.user_name}: {event.text}")
            case TextDelta():
                self._replies.setdefault(event.character, []).append(event.text)
            case Notice():
                self._line(self.err, f"note: {event.text}")
            case ReplyAwaited():
                self._line(self.err, awaited_line(event))
            case TurnFinished():
                self._show_reply(event)
                if event.error:
                    self._line(self.err, f"error: {event.error}")
                self._line(self.err, latency_line(event.metrics) + (" (interrupted)" if event.interrupted else ""))
            case Heard() | TurnStarted() | Sentence() | AudioChunk():
                pass
            case _:
                assert_never(event)

    def _show_reply(self, event: TurnFinished) -> None:
        """The whole reply, or for an interrupted one only what was heard."""
        replies = self._replies
        if event.interrupted:
            replies = {}
            for sentence in event.spoken:
                replies.setdefault(sentence.character, []).append(sentence.text + " ")
        mark = " [interrupted]" if event.interrupted else ""
        for character, pieces in replies.items():
            self._line(self.out, f"{character}: {''.join(pieces).strip()}{mark}")
        self._replies = {}

    @staticmethod
    def _line(console: Any, text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
