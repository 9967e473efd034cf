"""Routing a streamed multi-character reply by its tags, however the stream is chunked."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from voicechat.events import TextDelta
from voicechat.llm.tags import TagParser, merge

CAST = ["Lydia", "Captain Reyes", "Narrator"]


def parse(chunks: list[str], cast: list[str] = CAST, lead: str = "Lydia") -> tuple[list[TextDelta], list[str]]:
    parser = TagParser(cast, lead)
    deltas: list[TextDelta] = []
    for chunk in chunks:
        deltas += parser.feed(chunk)
    deltas += parser.finish()
    return merge(deltas), parser.unknown


def test_tagged_lines_go_to_their_characters() -> None:
    reply = "<Lydia>Hello there.</Lydia>\n<Captain Reyes>Report, crew.</Captain Reyes>"
    deltas, _ = parse([reply])
    spoken = [(d.character, d.text.strip()) for d in deltas if d.text.strip()]
    assert spoken == [("Lydia", "Hello there."), ("Captain Reyes", "Report, crew.")]


def test_untagged_text_goes_to_the_lead_and_closing_returns_to_it() -> None:
    deltas, _ = parse(["Hi! <Narrator>Rain falls.</Narrator> Back to me."])
    assert [(d.character, d.text) for d in deltas] == [
        ("Lydia", "Hi! "), ("Narrator", "Rain falls."), ("Lydia", " Back to me.")
    ]


def test_a_tag_split_across_every_character_still_routes() -> None:
    reply = "<Captain Reyes>Aye.</Captain Reyes>"
    deltas, _ = parse(list(reply))
    assert deltas == [TextDelta("Aye.", "Captain Reyes")]


def test_names_match_case_and_spacing_loosely() -> None:
    deltas, _ = parse(["<captain  reyes>Aye.</CAPTAIN REYES>"])
    assert deltas == [TextDelta("Aye.", "Captain Reyes")]


def test_an_unknown_name_is_dropped_and_its_text_goes_to_the_lead() -> None:
    deltas, unknown = parse(["<Bob>Who am I?</Bob>"])
    assert deltas == [TextDelta("Who am I?", "Lydia")]
    assert unknown == ["Bob", "Bob"]


def test_angle_brackets_that_are_not_tags_stay_text() -> None:
    text = "3 < 5 and 6 > 2, <3 always, a <<Lydia>b and <unfinished"
    deltas, _ = parse([text])
    assert "".join(d.text for d in deltas) == "3 < 5 and 6 > 2, <3 always, a <b and <unfinished"


def test_a_runaway_angle_bracket_is_released_as_text() -> None:
    text = "<" + "x" * 200
    deltas, _ = parse([text[:50], text[50:]])
    assert deltas == [TextDelta(text, "Lydia")]


names = st.sampled_from(["Lydia", "Captain Reyes", "Narrator", "Bob", "lydia"])
plain = st.text(alphabet=st.sampled_from(list("ab .,!?<>/\n'")), max_size=12)
segment = st.one_of(
    plain,
    names.map(lambda n: f"<{n}>"),
    names.map(lambda n: f"</{n}>"),
    st.tuples(names, plain).map(lambda p: f"<{p[0]}>{p[1]}</{p[0]}>"),
)


@st.composite
def chunked(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = "".join(draw(st.lists(segment, max_size=12)))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=len(text) + 1)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(chunked())
def test_any_chunking_parses_the_same(case: tuple[str, list[str]]) -> None:
    text, chunks = case
    assert "".join(chunks) == text
    assert parse(chunks) == parse([text])
