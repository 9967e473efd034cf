"""One conversation: the characters, the system prompt made from their cards, bounded history, and turns.

`reply` streams one turn's answer through the tag parser (which routes each line to its character);
the caller's loop over `reply` is the conversation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from voicechat.config.models import Character
from voicechat.events import Sentence, TextDelta
from voicechat.llm.base import ChatMessage, ChatModel, LLMError, ReplyCut, ReplyTooLong
from voicechat.llm.budget import BudgetGate, ReplyBudget
from voicechat.llm.tags import TagParser, merge

if TYPE_CHECKING:
    from voicechat.history.resume import PastTurn

CUT_MARK = " [cut off here]"
CHARS_PER_TOKEN = 4
SPOKEN_STYLE = "Everything you write is read aloud: plain spoken sentences, no markdown, lists or emoji."


@dataclass(frozen=True)
class Exchange:
    """One user line and the reply it got, as the model wrote it (tags included)."""

    user: str
    reply: str
    cut: bool = False

    def tokens(self) -> int:
        return (len(self.user) + len(self.reply)) // CHARS_PER_TOKEN + 8


@dataclass(frozen=True)
class Turn:
    """A finished turn, for the screen and the transcript: who said what, and whether it was cut."""

    conversation_id: str
    index: int
    user_name: str
    user: str
    parts: tuple[TextDelta, ...]
    cut: bool
    error: str | None
    started: float  # Unix time
    finished: float


def system_prompt(characters: Sequence[Character], user_name: str) -> str:
    if len(characters) == 1:
        character = characters[0]
        return (f"You are {character.name}. {' '.join(character.persona.split())}\n"
                f"You are talking with {user_name}. {SPOKEN_STYLE}")
    cast = "\n".join(f"- {c.name}: {' '.join(c.persona.split())}" for c in characters)
    first, second = characters[0].name, characters[1].name
    return (f"You voice these characters in one conversation with {user_name}:\n{cast}\n"
            f"Put each character's lines inside a tag with their exact name, for example "
            f"<{first}>Hello.</{first}><{second}>Hi there.</{second}>. Only these characters speak; "
            f"never write {user_name}'s lines. {SPOKEN_STYLE}")


class Conversation:
    def __init__(
        self,
        model: ChatModel,
        characters: Sequence[Character],
        user_name: str,
        history_turns: int = 20,
        history_tokens: int = 3000,
        budget: ReplyBudget | None = None,
    ) -> None:
        if not characters:
            raise ValueError("a conversation needs at least one character")
        self.model = model
        self.user_name = user_name
        self.history_turns = history_turns
        self.history_tokens = history_tokens
        self.budget = budget or ReplyBudget()  # the spoken-reply limits (llm.reply_sentences, reply_words)
        self.characters: tuple[Character, ...] = tuple(characters)
        self.history: list[Exchange] = []
        self.conversation_id = uuid.uuid4().hex
        self.turns = 0
        self.last_turn: Turn | None = None
        self.unknown_tags: list[str] = []  # tag names the model used that match no character
        self._parser = TagParser([], self.lead.name)
        self._last_in_history = False

    @property
    def lead(self) -> Character:
        return self.characters[0]

    @property
    def system_prompt(self) -> str:
        return system_prompt(self.characters, self.user_name)

    def reset(self, characters: Sequence[Character] | None = None) -> None:
        """Forget the history and start a new conversation id (with reloaded characters, if given)."""
        if characters:
            self.characters = tuple(characters)
        self.history.clear()
        self.conversation_id = uuid.uuid4().hex
        self.turns = 0
        self.last_turn = None
        self._last_in_history = False

    def messages(self, user_text: str) -> list[ChatMessage]:
        """System prompt, the recent history that fits the bounds, and the new user line."""
        messages = [ChatMessage("system", self.system_prompt), *self._examples()]
        for exchange in self._recent():
            if exchange.user:  # empty: the characters' greeting, said before the user spoke
                messages.append(ChatMessage("user", exchange.user))
            messages.append(ChatMessage("assistant", exchange.reply + (CUT_MARK if exchange.cut else "")))
        messages.append(ChatMessage("user", user_text))
        return messages

    def _examples(self) -> list[ChatMessage]:
        """The card's example exchanges, as if said before (one character only: a cast has no one voice)."""
        if len(self.characters) != 1:
            return []
        return [message for example in self.lead.examples
                for message in (ChatMessage("user", example.user), ChatMessage("assistant", example.reply))]

    def _recent(self) -> list[Exchange]:
        kept: list[Exchange] = []
        budget = self.history_tokens
        for exchange in reversed(self.history[-self.history_turns:]):
            budget -= exchange.tokens()
            if budget < 0:
                break
            kept.append(exchange)
        return kept[::-1]

    async def reply(self, user_text: str) -> AsyncIterator[TextDelta]:
        """Stream the reply to `user_text` as deltas routed to characters; history and `last_turn` follow.

        Only what fits the reply budget goes out, ending on a whole sentence (`voicechat.llm.budget`), and
        once the budget is spent the model's stream is closed. History keeps what went out. A reply cut
        midway (`ReplyCut`) is kept marked as cut, without its unfinished sentence, then re-raised; one that
        reached the token cap (`ReplyTooLong`) just loses its unfinished sentence; a turn that got nothing
        (`LLMError`) leaves history as it was. Either way the conversation goes on.
        """
        parser = TagParser([c.name for c in self.characters], self.lead.name)
        self._parser = parser
        gate = BudgetGate(self.budget)
        raw: list[str] = []
        parts: list[TextDelta] = []
        started = time.time()
        stream = self.model.stream(self.messages(user_text))
        try:
            async for piece in stream:
                raw.append(piece)
                for delta in _through(gate, parser.feed(piece)):
                    parts.append(TextDelta(delta.text, delta.character))
                    yield delta
                if gate.done:
                    break  # the budget is spent: stop reading, and the finally below closes the stream
            else:
                # an unclosed "<..." at the very end is plain text
                for delta in [*_through(gate, parser.finish()), *gate.finish(whole=True)]:
                    parts.append(TextDelta(delta.text, delta.character))
                    yield delta
        except ReplyTooLong:
            # The token cap is the profile's choice, not a failure: the reply ends on its last whole sentence.
            gate.finish(whole=False)
            self._finish(user_text, self._kept(raw, parts, gate), parts, started, cut=False, error=None)
            return
        except ReplyCut as error:
            gate.finish(whole=False)
            self._finish(user_text, self._kept(raw, parts, gate), parts, started, cut=True, error=str(error))
            raise
        except LLMError as error:
            self._finish(user_text, [], [], started, cut=False, error=str(error))
            raise
        except (GeneratorExit, asyncio.CancelledError):
            gate.finish(whole=False)
            self._finish(user_text, self._kept(raw, parts, gate), parts, started, cut=True, error=None)
            raise
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()  # an abandoned reply releases its connection now, not at garbage collection
        self._finish(user_text, self._kept(raw, parts, gate), parts, started, cut=False, error=None)

    def _kept(self, raw: list[str], parts: Sequence[TextDelta], gate: BudgetGate) -> list[str]:
        """The reply as history keeps it: as the model wrote it, unless the budget left some of it out."""
        if not gate.trimmed:
            return raw
        return [self._as_written([TextDelta(p.text.strip(), p.character) for p in merge(parts)])]

    def record_failed_turn(self, user_text: str, error: str) -> None:
        """A turn that failed before its reply was asked for: logged as a turn, history unchanged."""
        self._parser = TagParser([], self.lead.name)
        self._finish(user_text, [], [], time.time(), cut=False, error=error)

    def resume(self, conversation_id: str, past: Sequence[PastTurn], next_index: int) -> None:
        """Go on with an earlier conversation: its id, its turn numbers, and its exchanges as history, which
        the same bounds (history_turns, history_tokens) then trim."""
        self.reset()
        self.conversation_id = conversation_id
        self.turns = next_index
        self.history = [Exchange(turn.user, self._as_written(turn.parts), turn.cut) for turn in past if turn.parts]
        self._trim()

    def greet(self) -> list[TextDelta]:
        """Each character's greeting, recorded as the conversation's first turn (no user line); [] when no
        character has one or the conversation has begun."""
        parts = [TextDelta(c.greeting.strip(), c.name) for c in self.characters if c.greeting.strip()]
        if not parts or self.turns or self.history:
            return []
        self.history.append(Exchange("", self._as_written(parts)))
        self._last_in_history = True
        now = time.time()
        self.last_turn = Turn(self.conversation_id, self.turns, self.user_name, "", tuple(parts), False, None,
                              now, now)
        self.turns += 1
        return parts

    def keep_only_spoken(self, spoken: Sequence[Sentence]) -> None:
        """After barge-in: the last reply becomes only what the user heard, marked as cut (or is dropped
        from history when nothing was heard)."""
        if self.last_turn is None:
            return
        if self._last_in_history:
            self.history.pop()
        parts = merge(TextDelta(s.text + " ", s.character or self.lead.name) for s in spoken)
        parts = [TextDelta(p.text.strip(), p.character) for p in parts]
        if parts:
            self.history.append(Exchange(self.last_turn.user, self._as_written(parts), cut=True))
        self._last_in_history = bool(parts)
        self.last_turn = replace(self.last_turn, parts=tuple(parts), cut=True)

    def _trim(self) -> None:
        """Over a bound (history_turns, history_tokens), the oldest exchanges go in one block, down to half of
        it. Dropping one a turn would change the start of every request, so a local model would reprocess the
        whole history each turn; this way the next requests begin with the same words, which llama.cpp's
        prompt cache reuses."""
        if len(self.history) <= self.history_turns and _tokens(self.history) <= self.history_tokens:
            return
        kept: list[Exchange] = []
        budget = self.history_tokens // 2
        for exchange in reversed(self.history[-max(1, self.history_turns // 2):]):
            budget -= exchange.tokens()
            if budget < 0 and kept:
                break
            kept.append(exchange)
        self.history = kept[::-1]

    def _as_written(self, parts: Sequence[TextDelta]) -> str:
        """Reply text the way the model writes it: tagged when several characters share the chat."""
        if len(self.characters) == 1:
            return " ".join(p.text for p in parts)
        return "".join(f"<{p.character}>{p.text}</{p.character}>" for p in parts)

    def _finish(self, user_text: str, raw: list[str], parts: list[TextDelta], started: float,
                cut: bool, error: str | None) -> None:
        reply = "".join(raw)
        self._last_in_history = bool(reply.strip())
        if self._last_in_history:
            self.history.append(Exchange(user_text, reply, cut))
            self._trim()
        self.unknown_tags = list(dict.fromkeys(self.unknown_tags + self._parser.unknown))
        self.last_turn = Turn(
            conversation_id=self.conversation_id,
            index=self.turns,
            user_name=self.user_name,
            user=user_text,
            parts=tuple(merge(parts)),
            cut=cut,
            error=error,
            started=started,
            finished=time.time(),
        )
        self.turns += 1


def _tokens(exchanges: Sequence[Exchange]) -> int:
    return sum(exchange.tokens() for exchange in exchanges)


def _through(gate: BudgetGate, deltas: Sequence[TextDelta]) -> list[TextDelta]:
    return [kept for delta in deltas for kept in gate.feed(delta)]
