"""One transcript line as history sees it, and the summary of a conversation made of such lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reply:
    character: str
    text: str


@dataclass(frozen=True)
class HistoryTurn:
    """A finished turn read back from a transcript; `user` is empty for a character's greeting."""

    conversation_id: str
    index: int
    started: str  # ISO 8601, UTC, as the transcript wrote it
    finished: str
    user_name: str
    user: str
    replies: tuple[Reply, ...]
    cut: bool
    error: str | None
    record: dict[str, Any]  # the line as written, for --json and export

    @property
    def is_greeting(self) -> bool:
        return not self.user and bool(self.replies)

    def reply_text(self) -> str:
        return " ".join(reply.text for reply in self.replies)


@dataclass(frozen=True)
class ConversationSummary:
    conversation_id: str
    started: str
    last: str
    turns: int
    characters: tuple[str, ...]
    user_name: str
    first_words: str
    path: str  # the transcript holding its latest turn


def parse_record(data: object, line_number: int) -> HistoryTurn | None:
    """A transcript line's JSON -> a turn; None for lines that are not turns (no conversation id)."""
    if not isinstance(data, dict) or not isinstance(data.get("conversation_id"), str):
        return None
    replies = tuple(
        Reply(str(item.get("character", "")), str(item.get("text", "")))
        for item in data.get("replies") or ()
        if isinstance(item, dict) and str(item.get("text", "")).strip()
    )
    index = data.get("turn")
    error = data.get("error")
    return HistoryTurn(
        conversation_id=data["conversation_id"],
        index=index if isinstance(index, int) else line_number,
        started=str(data.get("started") or ""),
        finished=str(data.get("finished") or data.get("started") or ""),
        user_name=str(data.get("user_name") or "User"),
        user=str(data.get("user") or ""),
        replies=replies,
        cut=bool(data.get("cut")),
        error=None if error is None else str(error),
        record=data,
    )
