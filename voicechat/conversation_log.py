"""The conversation log: one JSON line per finished turn, appended and flushed to disk as each turn ends.

A line holds the conversation id, the turn's start and end times (ISO 8601, UTC), the user's line, each
character's part of the reply, and whether the reply was cut (and why). Never an API key.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from voicechat import paths
from voicechat.errors import VoicechatError
from voicechat.events import TurnMetrics
from voicechat.fileio import PRIVATE
from voicechat.llm.conversation import Turn


def default_path() -> Path:
    """A new file for a new conversation: talk-<time>.jsonl, with -2, -3... when a conversation begun in
    the same second has that name (the log appends, so two would share one file)."""
    folder = paths.user_data_dir() / "transcripts"
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S")
    target, count = folder / f"talk-{stamp}.jsonl", 1
    while target.exists():
        count += 1
        target = folder / f"talk-{stamp}-{count}.jsonl"
    return target


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def turn_record(turn: Turn, metrics: TurnMetrics | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "conversation_id": turn.conversation_id,
        "turn": turn.index,
        "started": _iso(turn.started),
        "finished": _iso(turn.finished),
        "user_name": turn.user_name,
        "user": turn.user,
        "replies": [{"character": part.character, "text": part.text.strip()}
                    for part in turn.parts if part.text.strip()],
        "cut": turn.cut,
        "error": turn.error,
    }
    if metrics is not None:  # seconds from the end of the user's speech to each milestone (+ speculation)
        record["metrics"] = {name: round(value, 4) if isinstance(value, float) else value
                             for name, value in asdict(metrics).items() if value != ""}
    return record


class ConversationLog:
    """Appends turns to a JSONL file; each `write` reaches the disk before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def open(self) -> ConversationLog:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
            os.fchmod(descriptor, PRIVATE)  # a transcript is the user's own words: owner only, even if it existed
            self._handle = os.fdopen(descriptor, "a", encoding="utf-8")
        except OSError as error:
            raise VoicechatError(f"cannot write the transcript {self.path}: {error.strerror}; "
                                 "choose another file with --transcript") from None
        return self

    def write(self, turn: Turn, metrics: TurnMetrics | None = None) -> None:
        if self._handle is None:
            self.open()
        assert self._handle is not None
        self._handle.write(json.dumps(turn_record(turn, metrics), ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ConversationLog:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
