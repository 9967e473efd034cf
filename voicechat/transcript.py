"""The conversation log: one JSON line per finished turn, appended and flushed to disk as each turn ends.

A line holds the conversation id, the turn's start and end times (ISO 8601, UTC), the user's line, each
character's part of the reply, and whether the reply was cut (and why). Never an API key.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from voicechat import paths
from voicechat.errors import VoicechatError
from voicechat.llm.conversation import Turn


def default_path() -> Path:
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S")
    return paths.user_data_dir() / "transcripts" / f"talk-{stamp}.jsonl"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def turn_record(turn: Turn) -> dict[str, Any]:
    return {
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


class TranscriptWriter:
    """Appends turns to a JSONL file; each `write` reaches the disk before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def open(self) -> TranscriptWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        except OSError as error:
            raise VoicechatError(f"cannot write the transcript {self.path}: {error.strerror}; "
                                 "choose another file with --transcript") from None
        return self

    def write(self, turn: Turn) -> None:
        if self._handle is None:
            self.open()
        assert self._handle is not None
        self._handle.write(json.dumps(turn_record(turn), ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> TranscriptWriter:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
