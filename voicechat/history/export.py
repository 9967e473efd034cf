"""A conversation as plain text, Markdown or JSON, for `history show` and `history export`."""

from __future__ import annotations

import json
from datetime import datetime

from voicechat.history.records import ConversationSummary, HistoryTurn

FORMATS = ("txt", "md", "json")


def local_time(stamp: str, with_date: bool = True) -> str:
    """An ISO 8601 UTC stamp from a transcript -> local time for people to read ('' stays '')."""
    try:
        moment = datetime.fromisoformat(stamp).astimezone()
    except ValueError:
        return stamp
    return moment.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S")


def _flags(turn: HistoryTurn) -> str:
    if turn.error and not turn.replies:
        return f" [no reply: {turn.error}]"
    return " [cut]" if turn.cut else ""


def as_text(summary: ConversationSummary, turns: list[HistoryTurn]) -> str:
    lines = [f"conversation {summary.conversation_id} · {local_time(summary.started)} · "
             f"{', '.join(summary.characters) or 'no replies'} · {summary.turns} turn(s)", ""]
    for turn in turns:
        stamp = local_time(turn.started, with_date=False)
        if turn.user:
            lines.append(f"[{stamp}] {turn.user_name}: {turn.user}")
        for reply in turn.replies:
            lines.append(f"[{stamp}] {reply.character}: {reply.text}")
        if _flags(turn):
            lines[-1] += _flags(turn)
    return "\n".join(lines) + "\n"


def as_markdown(summary: ConversationSummary, turns: list[HistoryTurn]) -> str:
    cast = ", ".join(summary.characters) or "nobody"
    lines = [f"# Conversation with {cast}", "",
             f"*{local_time(summary.started)} · {summary.turns} turn(s) · ID `{summary.conversation_id}`*", ""]
    for turn in turns:
        if turn.user:
            lines += [f"**{turn.user_name}:** {turn.user}", ""]
        for reply in turn.replies:
            lines += [f"**{reply.character}:** {reply.text}", ""]
        if _flags(turn):
            lines += [f"*{_flags(turn).strip()}*", ""]
    return "\n".join(lines)


def as_json(summary: ConversationSummary, turns: list[HistoryTurn]) -> str:
    document = {
        "conversation_id": summary.conversation_id,
        "started": summary.started,
        "last": summary.last,
        "characters": list(summary.characters),
        "user_name": summary.user_name,
        "turns": [turn.record for turn in turns],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render(summary: ConversationSummary, turns: list[HistoryTurn], fmt: str) -> str:
    return {"txt": as_text, "md": as_markdown, "json": as_json}[fmt](summary, turns)
