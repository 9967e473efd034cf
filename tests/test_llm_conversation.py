"""Conversation: system prompt from the cards, bounded history, cut replies kept, failed turns survived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from tests.sse_server import Script, SSEServer
from voicechat.config.models import DEFAULT_BASE_URL, Character, LLMSettings
from voicechat.config.store import load_character
from voicechat.events import Sentence, TextDelta
from voicechat.llm.base import ChatMessage, LLMError, ReplyCut
from voicechat.llm.conversation import CUT_MARK, Conversation
from voicechat.llm.openai_chat import OpenAIChat
from voicechat.llm.registry import choose_engine

LYDIA = Character(name="Lydia", persona="A warm librarian.", voice="lydia")
REYES = Character(name="Captain Reyes", persona="Commands the Meridian.", voice="joe")


class ScriptedModel:
    """A ChatModel that answers from a list and remembers what it was sent."""

    name = "scripted"
    notices: tuple[str, ...] = ()

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.sent: list[list[ChatMessage]] = []
        self.open_streams = 0

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        self.sent.append(list(messages))
        self.open_streams += 1
        try:
            for piece in self.replies.pop(0).split("|"):
                yield piece
        finally:
            self.open_streams -= 1

    async def aclose(self) -> None:
        pass


def say(conversation: Conversation, line: str) -> list[TextDelta]:
    async def go() -> list[TextDelta]:
        return [delta async for delta in conversation.reply(line)]

    return asyncio.run(asyncio.wait_for(go(), 30))


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def test_system_prompt_for_one_character_names_them_and_the_user() -> None:
    prompt = Conversation(ScriptedModel([]), [LYDIA], "Ada").system_prompt
    assert prompt.startswith("You are Lydia. A warm librarian.")
    assert "talking with Ada" in prompt
    assert "<" not in prompt


def test_system_prompt_for_several_characters_asks_for_tags() -> None:
    prompt = Conversation(ScriptedModel([]), [LYDIA, REYES], "Ada").system_prompt
    assert "- Lydia: A warm librarian." in prompt and "- Captain Reyes: Commands the Meridian." in prompt
    assert "<Lydia>Hello.</Lydia><Captain Reyes>" in prompt
    assert "never write Ada's lines" in prompt


def test_packaged_cards_load_into_a_prompt() -> None:
    cast = [load_character(name) for name in ("lydia", "captain", "narrator")]
    prompt = Conversation(ScriptedModel([]), cast, "Ada").system_prompt
    assert all(f"- {c.name}:" in prompt for c in cast)


def test_history_is_sent_with_each_turn_and_reset_clears_it() -> None:
    model = ScriptedModel(["Hi|, Ada.", "Books|!", "Fresh start."])
    conversation = Conversation(model, [LYDIA], "Ada")
    first_id = conversation.conversation_id
    say(conversation, "hello")
    say(conversation, "what do you like?")
    assert [(m.role, m.content) for m in model.sent[1][1:]] == [
        ("user", "hello"), ("assistant", "Hi, Ada."), ("user", "what do you like?")
    ]
    conversation.reset()
    say(conversation, "again")
    assert [m.role for m in model.sent[2]] == ["system", "user"]
    assert conversation.conversation_id != first_id
    assert conversation.last_turn is not None and conversation.last_turn.index == 0


def test_history_bound_in_turns() -> None:
    model = ScriptedModel([f"reply {n}" for n in range(6)])
    conversation = Conversation(model, [LYDIA], "Ada", history_turns=2)
    for n in range(6):
        say(conversation, f"line {n}")
    sent_users = [m.content for m in model.sent[-1] if m.role == "user"]
    assert sent_users == ["line 4", "line 5"]  # over the bound, the oldest half went at once
    assert len(conversation.history) == 2
    # so the request after a trim begins with the one before it: a local model's prompt cache reuses it
    assert model.sent[4][: len(model.sent[3])] == model.sent[3]
    assert max(sum(m.role == "user" for m in sent) for sent in model.sent) == 3  # never more than 2 past ones


def test_history_bound_in_tokens_keeps_the_newest() -> None:
    model = ScriptedModel(["x" * 400, "y" * 400, "z" * 400, "last"])
    conversation = Conversation(model, [LYDIA], "Ada", history_turns=100, history_tokens=150)
    for n in range(4):
        say(conversation, f"line {n}")
    sent = [m.content for m in model.sent[-1][1:]]
    assert sent == ["line 2", "z" * 400, "line 3"]  # about 110 tokens an exchange: two would not fit


def test_several_characters_are_routed_and_history_keeps_the_tags() -> None:
    model = ScriptedModel(["<Lydia>Hi <|/Lydia><Captain |Reyes>Aye.</Captain Reyes><Bob>eh</Bob>"])
    conversation = Conversation(model, [LYDIA, REYES], "Ada")
    say(conversation, "hello all")
    turn = conversation.last_turn
    assert turn is not None
    assert [(p.character, p.text) for p in turn.parts] == [
        ("Lydia", "Hi "), ("Captain Reyes", "Aye."), ("Lydia", "eh")
    ]
    assert conversation.history[-1].reply.startswith("<Lydia>Hi </Lydia><Captain Reyes>")
    assert conversation.unknown_tags == ["Bob"]


def test_a_dropped_stream_is_kept_as_cut_and_the_next_turn_works(server: SSEServer) -> None:
    server.queue(Script.reply("The story begins on a dark night", drop_after=4), Script.reply("Where was I?"))
    chat = OpenAIChat(LLMSettings(base_url=server.base_url, max_retries=0), None)
    conversation = Conversation(chat, [LYDIA], "Ada")
    with pytest.raises(ReplyCut):
        say(conversation, "tell me a story")
    cut = conversation.last_turn
    assert cut is not None and cut.cut and cut.parts == (TextDelta("The story begins on", "Lydia"),)
    assert [(e.reply, e.cut) for e in conversation.history] == [("The story begins on", True)]

    assert "".join(d.text for d in say(conversation, "go on")) == "Where was I?"
    sent = server.requests[1].body["messages"]
    assert sent[-2] == {"role": "assistant", "content": "The story begins on" + CUT_MARK}
    assert conversation.last_turn is not None and not conversation.last_turn.cut
    assert len(conversation.history) == 2


def test_a_failed_turn_leaves_history_alone_and_the_next_works(server: SSEServer) -> None:
    server.queue(Script.http_error(500), Script.reply("Fine now."))
    chat = OpenAIChat(LLMSettings(base_url=server.base_url, max_retries=0), None)
    conversation = Conversation(chat, [LYDIA], "Ada")
    with pytest.raises(LLMError, match="HTTP 500"):
        say(conversation, "hello?")
    assert conversation.history == []
    assert conversation.last_turn is not None and conversation.last_turn.error is not None
    assert [d.text for d in say(conversation, "hello again")] == ["Fine", " now."]
    assert [m["role"] for m in server.requests[1].body["messages"]] == ["system", "user"]


def test_a_reply_abandoned_by_its_reader_is_kept_as_cut() -> None:
    model = ScriptedModel(["One. |Two. |Three."])
    conversation = Conversation(model, [LYDIA], "Ada")

    async def read_one() -> int:
        stream = conversation.reply("count")
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
        return model.open_streams

    assert asyncio.run(read_one()) == 0  # the model's stream closed with the reply, not at loop shutdown
    assert [(e.reply, e.cut) for e in conversation.history] == [("One. ", True)]


@pytest.mark.parametrize(
    ("base_url", "backend", "environ", "engine"),
    [
        (DEFAULT_BASE_URL, "auto", {}, "embedded"),
        (DEFAULT_BASE_URL, "auto", {"OPENROUTER_API_KEY": "k"}, "openai"),
        ("http://127.0.0.1:11434/v1", "auto", {}, "openai"),
        ("http://127.0.0.1:11434/v1", "embedded", {"OPENROUTER_API_KEY": "k"}, "embedded"),
    ],
)
def test_engine_choice(base_url: str, backend: str, environ: dict[str, str], engine: str) -> None:
    settings = LLMSettings(base_url=base_url, backend=backend)  # type: ignore[arg-type]
    assert choose_engine(settings, environ) == engine


def test_after_barge_in_history_keeps_only_what_was_heard() -> None:
    model = ScriptedModel(["<Lydia>One. Two.</Lydia><Captain Reyes>Three.</Captain Reyes>", "ok"])
    conversation = Conversation(model, [LYDIA, REYES], "Ada")
    say(conversation, "count")
    conversation.keep_only_spoken([Sentence("One.", "Lydia", "lydia", 0), Sentence("Two\u2026", "Lydia", "lydia", 1)])
    assert [(e.reply, e.cut) for e in conversation.history] == [("<Lydia>One. Two\u2026</Lydia>", True)]
    assert conversation.last_turn is not None and conversation.last_turn.cut
    assert conversation.last_turn.parts == (TextDelta("One. Two\u2026", "Lydia"),)

    say(conversation, "again")
    conversation.keep_only_spoken([])  # nothing heard: the reply leaves history
    assert [e.user for e in conversation.history] == ["count"]
