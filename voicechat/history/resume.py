"""Going on with an earlier conversation: which one (`--continue [ID]`), its turns, cast and transcript."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicechat.errors import UsageError
from voicechat.events import TextDelta
from voicechat.history.records import HistoryTurn

if TYPE_CHECKING:
    from voicechat.session import Session

LAST = ""  # `--continue` with no ID: the conversation with the latest turn


@dataclass(frozen=True)
class PastTurn:
    """One earlier exchange as the LLM context takes it back: the user's line and who said what."""

    user: str
    parts: tuple[TextDelta, ...]
    cut: bool


@dataclass(frozen=True)
class Resumed:
    conversation_id: str
    turns: tuple[PastTurn, ...]
    next_index: int  # the index the next turn gets, after every turn already written
    characters: tuple[str, ...]  # display names, in the order they first spoke
    transcript: Path  # the file holding its latest turn: new turns go there too


def find(reference: str) -> Resumed:
    """The conversation `reference` names (a unique ID prefix), or the latest one for LAST."""
    from voicechat.history.index import open_default

    with open_default() as index:
        index.refresh()
        if reference == LAST:
            latest = index.latest()
            if latest is None:
                raise UsageError(f"no earlier conversation to continue in {index.folder}: start one without "
                                 "--continue")
            conversation_id = latest
        else:
            conversation_id = index.resolve(reference)
        summary = index.summary(conversation_id)
        turns = index.turns(conversation_id)
    return Resumed(
        conversation_id=conversation_id,
        turns=tuple(_past(turn) for turn in turns if turn.replies),  # a turn that got no reply left no history
        next_index=max((turn.index for turn in turns), default=-1) + 1,
        characters=summary.characters,
        transcript=Path(summary.path),
    )


def _past(turn: HistoryTurn) -> PastTurn:
    return PastTurn(turn.user, tuple(TextDelta(reply.text, reply.character) for reply in turn.replies), turn.cut)


def character_cards(resumed: Resumed) -> list[str]:
    """The card names of the characters who spoke in it, found by their display names."""
    from voicechat.config.store import list_files, load_character

    by_name: dict[str, str] = {}
    for card in list_files("characters"):
        try:
            by_name.setdefault(load_character(card.name).name, card.name)
        except UsageError:
            continue  # a broken card names nobody
    missing = [name for name in resumed.characters if name not in by_name]
    if missing:
        raise UsageError(f"conversation {resumed.conversation_id[:8]} was with {', '.join(missing)}, whom no "
                         "character card names now: pass --character NAME")
    return [by_name[name] for name in resumed.characters]


async def continue_session(session: Session, reference: str) -> dict[str, object]:
    """`serve`'s `"continue"` config option: the open session goes on with an earlier conversation ("last":
    the latest). Returns the event that tells the client which one."""
    import asyncio

    from voicechat.serve.protocol import ProtocolError

    try:
        resumed = await asyncio.to_thread(find, LAST if reference == "last" else reference)
    except UsageError:  # the client is told what it can fix; the server's paths stay in its log
        raise ProtocolError(f"no earlier conversation '{reference}' to continue on this server (or its ID is "
                            'ambiguous): send "continue": "last", or a whole ID') from None
    await session.interrupt()
    session.conversation.resume(resumed.conversation_id, resumed.turns, resumed.next_index)
    return {"type": "continued", "conversation": resumed.conversation_id, "turns": len(resumed.turns)}
