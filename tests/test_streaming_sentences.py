"""Streamed text becomes sentences as soon as each is complete, never split inside one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from voicechat.events import Sentence, TextDelta
from voicechat.text.sentences import split_sentences
from voicechat.text.streaming import SentenceStreamer


def tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


def run(text: str, character: str = "Lydia", **options: object) -> list[tuple[int, str]]:
    """(token index at which each sentence came out, its text); index len(tokens) means at finish()."""
    streamer = SentenceStreamer({"Lydia": "lydia"}, **options)  # type: ignore[arg-type]
    pieces = tokens(text)
    found: list[tuple[int, str]] = []
    for index, piece in enumerate(pieces):
        found += [(index, s.text) for s in streamer.feed(TextDelta(piece, character))]
    found += [(len(pieces), s.text) for s in streamer.finish()]
    return found


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("I met Dr. Smith at noon.", "He was late."),
        ("It costs 3.5 dollars today.", "That is cheap."),
        ("Bring fruit, e.g. apples and pears.", "Then go."),
        ("Well... I think so.", "Maybe not."),
        ("Wait\u2026 what happened there?", "Tell me."),
        ("Mr. and Mrs. Brown went home at 5 p.m. yesterday.", "They slept."),
    ],
)
def test_never_splits_inside_a_sentence(first: str, second: str) -> None:
    found = run(f"{first} {second}", first_clause_chars=10_000)
    assert [sentence for _, sentence in found] == [first, second]
    assert found[0][0] == len(tokens(first))  # out with the first token of the next sentence


def test_a_sentence_comes_out_when_the_next_one_starts() -> None:
    text = "Hello there. How are you today? Fine."
    assert run(text, first_clause_chars=10_000) == [
        (2, "Hello there."), (6, "How are you today?"), (7, "Fine.")
    ]


def test_the_first_long_enough_clause_comes_out_early_and_only_the_first() -> None:
    text = "Well now, the library opens at nine, and it closes at six, every day. Later, we talk, ok."
    found = run(text, first_clause_chars=20)
    assert found[0] == (7, "Well now, the library opens at nine,")
    assert [s for _, s in found[1:]] == ["and it closes at six, every day.", "Later, we talk, ok."]


def test_short_clauses_and_numbers_with_commas_do_not_come_out_early() -> None:
    assert run("Hi, I have 1,000,000 books here for you.", first_clause_chars=20) == [
        (8, "Hi, I have 1,000,000 books here for you.")
    ]


def test_a_change_of_character_ends_the_sentence_and_picks_the_voice() -> None:
    streamer = SentenceStreamer({"Lydia": "lydia", "Captain Reyes": "joe"}, default_voice="lydia",
                                first_clause_chars=10_000)
    out: list[Sentence] = []
    for delta in [TextDelta("Hello there", "Lydia"), TextDelta(" friend", "Lydia"),
                  TextDelta("Report now", "Captain Reyes"), TextDelta("Who?", "Bob")]:
        out += streamer.feed(delta)
    out += streamer.finish()
    assert out == [
        Sentence("Hello there friend", "Lydia", "lydia", 0),
        Sentence("Report now", "Captain Reyes", "joe", 1),
        Sentence("Who?", "Bob", "lydia", 2),
    ]


def test_whitespace_and_empty_text_make_no_sentences() -> None:
    streamer = SentenceStreamer()
    assert streamer.feed(TextDelta("  \n ", "Lydia")) == []
    assert streamer.finish() == []


def test_streamed_sentences_match_the_batch_splitter() -> None:
    text = ("Dr. Watson arrived at 3.5 minutes past nine. He said hello... then left! "
            "Was it e.g. a dream? No.")
    found = [s for _, s in run(text, first_clause_chars=10_000)]
    assert found == split_sentences(text)
    assert len(found) == 4


def test_a_sentence_is_out_before_the_stream_ends() -> None:
    async def scenario() -> list[str]:
        release = asyncio.Event()
        seen: list[str] = []

        async def deltas() -> AsyncIterator[TextDelta]:
            for piece in tokens("First one here. Second"):
                yield TextDelta(piece, "Lydia")
            await release.wait()  # the stream stalls: the first sentence must already be out
            yield TextDelta(" one.", "Lydia")

        streamer = SentenceStreamer(first_clause_chars=10_000)
        async for delta in deltas():
            for sentence in streamer.feed(delta):
                seen.append(sentence.text)
                release.set()
        seen += [sentence.text for sentence in streamer.finish()]
        return seen

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == ["First one here.", "Second one."]


def test_a_run_on_without_a_sentence_end_is_spoken_in_pieces() -> None:
    text = " ".join(["and then we walked on, talking"] * 20)  # 620 characters, no full stop
    found = run(text, first_clause_chars=10_000, max_pending_chars=100)
    assert len(found) >= 5
    assert all(len(sentence) <= 110 for _, sentence in found[:-1])
    assert found[0][1].endswith(",")
    assert " ".join(sentence for _, sentence in found) == text


def test_a_sentence_end_delta_completes_the_sentence_at_once() -> None:
    from voicechat.text.streaming import SentenceEnd

    streamer = SentenceStreamer({"Lydia": "lydia"}, first_clause_chars=10_000)
    assert streamer.feed(TextDelta("I met Dr.", "Lydia")) == []
    assert [s.text for s in streamer.feed(SentenceEnd(" Smith today. ", "Lydia"))] == ["I met Dr. Smith today."]
    assert [s.text for s in streamer.feed(SentenceEnd("He waved.", "Lydia"))] == ["He waved."]
    assert streamer.finish() == []
