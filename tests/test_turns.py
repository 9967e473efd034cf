"""End of turn: Smart Turn v3.2 (the ONNX in the pipecat-ai wheel) on real Piper speech, the words, the waits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voicechat.live.sources import read_speech_file, silence
from voicechat.live.text_turn import TextTurn
from voicechat.live.turns import (
    HELD_WAIT,
    EndOfTurn,
    SmartTurn,
    TurnDecision,
    TurnDetector,
    TurnSettings,
    WordsVerdict,
    short_reply,
    smart_turn_path,
    words_trail,
)

SETTINGS = TurnSettings(mode="smart", silence=0.45, complete_wait=0.15, patience=1.5, threshold=0.5)
COMPLETE = ["What time is it?", "Can you tell me a story about a dragon?", "What is the capital of France?"]
TRAILING = ["I was wondering if", "Could you tell me about the", "I want to go to"]


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn()


@pytest.fixture
def speech(make_speech: Callable[[str, str], Path]) -> Callable[[str], bytes]:
    """16 kHz PCM of Piper saying the text, with the short quiet a pause starts with."""

    def make(text: str) -> bytes:
        return read_speech_file(make_speech(text, "clip.wav")) + silence(0.1)

    return make


def test_the_model_ships_in_the_pipecat_wheel_and_pipecat_is_never_imported() -> None:
    import sys

    path = smart_turn_path()
    assert path.name == "smart-turn-v3.2-cpu.onnx" and path.stat().st_size > 8_000_000
    assert "pipecat" not in sys.modules


@pytest.mark.parametrize("text", COMPLETE)
def test_a_complete_question_sounds_finished(smart_turn: SmartTurn, speech: Callable[[str], bytes], text: str) -> None:
    # Piper's noise moves a clip's probability by a few points (0.49 once in CI for the dragon question);
    # a trailing phrase reads under 0.2, so 0.4 still tells the two apart
    assert smart_turn.probability(speech(text)) > 0.4


def test_a_trailing_phrase_sounds_unfinished(smart_turn: SmartTurn, speech: Callable[[str], bytes]) -> None:
    assert smart_turn.probability(speech("I was wondering if")) < 0.2


def test_clips_longer_than_eight_seconds_use_their_end(smart_turn: SmartTurn, speech: Callable[[str], bytes]) -> None:
    question = speech("What time is it?")
    long_clip = speech("I was wondering if") + silence(9.0) + question
    assert abs(smart_turn.probability(long_clip) - smart_turn.probability(question)) < 0.05


@pytest.mark.parametrize(("text", "trails"), [
    ("I was wondering if", True), ("Tell me about the", True), ("So, um", True), ("I think...", True),
    ("What time is it?", False), ("Hello there.", False), ("Tell me a story", None), ("", None),
    ("When you get a chance.", True), ("If it is not too much trouble.", True),  # a dependent clause alone
    ("When is the next train?", False), ("If it rains, we stay home.", False),
    ("Could you please?", True), ("Can you please.", True),  # a request whose verb is still to come
    ("Could you please stop?", False), ("Yes, please.", False),
])
def test_words_say_whether_a_sentence_trails(text: str, trails: bool | None) -> None:
    assert words_trail(text) is trails


@pytest.mark.parametrize(("probability", "text", "wait", "reason"), [
    (0.95, "What time is it?", 0.15, "complete"),
    (0.95, "What time is it", 0.15, "complete"),  # the live text often has no punctuation yet
    (0.02, "I was wondering if", 1.5, "trailing"),
    (0.95, "I was wondering if", 1.5, "trailing"),  # the words outrank a voice that sounds done
    (None, "I was wondering if", 1.5, "trailing"),  # before the model answers
    (0.02, "Tell me a story", 1.5, "unfinished"),
    (0.02, "What time is it?", 0.45, "unfinished"),  # the words end a sentence: the middle wait
    (None, "What time is it?", 1.5, "waiting"),  # no cut-off before the voice is judged
])
def test_decisions_combine_the_voice_and_the_words(probability: float | None, text: str, wait: float,
                                                   reason: str) -> None:
    decision = TurnDetector(SETTINGS).decide(probability, text)
    assert (decision.wait, decision.reason) == (wait, reason)


@pytest.mark.parametrize(("probability", "text", "words", "wait", "reason"), [
    (0.95, "Can you tell me.", WordsVerdict.UNFINISHED, 1.0, "words unfinished"),  # the voice and "." mislead
    (0.95, "Can you tell me.", WordsVerdict.PENDING, 1.5, "waiting for words"),  # no cut-off before judged
    (0.95, "What time is it?", WordsVerdict.FINISHED, 0.15, "complete"),
    (0.02, "What time is it?", WordsVerdict.FINISHED, 0.45, "unfinished"),
    (0.02, "What time is it?", WordsVerdict.PENDING, 1.5, "unfinished"),  # a "?" alone is not enough then
    (0.95, "I was wondering if", WordsVerdict.FINISHED, 1.5, "trailing"),  # the word list still outranks it
    (0.95, "What time is it?", WordsVerdict.NONE, 0.15, "complete"),  # no judge: as before
])
def test_the_text_judges_verdict_joins_the_decision(probability: float, text: str, words: WordsVerdict,
                                                    wait: float, reason: str) -> None:
    decision = TurnDetector(SETTINGS).decide(probability, text, words)
    assert (decision.wait, decision.reason) == (wait, reason)


def test_silence_mode_always_waits_the_silence() -> None:
    detector = TurnDetector(TurnSettings(mode="silence", silence=0.3))
    assert detector.decide(0.99, "What time is it?").wait == 0.3
    assert detector.decide(0.01, "I was wondering if").wait == 0.3


class Waits:
    """What EndOfTurn told the recognizer, and a way to wait for its model's answer."""

    def __init__(self) -> None:
        self.applied: list[float] = []
        self.decisions: list[TurnDecision] = []
        self.judged = threading.Event()

    def apply(self, seconds: float) -> None:
        self.applied.append(seconds)

    def decided(self, decision: TurnDecision) -> None:
        self.decisions.append(decision)
        if decision.probability is not None:
            self.judged.set()


def end_of_turn(smart_turn: SmartTurn) -> tuple[EndOfTurn, Waits]:
    waits = Waits()
    return EndOfTurn(SETTINGS, waits.apply, smart_turn, waits.decided), waits


def test_a_pause_after_a_question_ends_the_turn_soon(smart_turn: SmartTurn, speech: Callable[[str], bytes]) -> None:
    turns, waits = end_of_turn(smart_turn)
    turns.transcript("What time is it?")
    turns.pause_started(speech("What time is it?"))
    assert waits.judged.wait(10)
    turns.close()
    assert waits.applied == [1.5, 0.15]  # patient until the voice is judged, then short
    assert [d.reason for d in waits.decisions] == ["waiting", "complete"]


def test_a_pause_after_trailing_words_waits_patiently_until_speech_resumes(
        smart_turn: SmartTurn, speech: Callable[[str], bytes]) -> None:
    turns, waits = end_of_turn(smart_turn)
    turns.transcript("I was wondering")  # the live text lags the voice
    turns.pause_started(speech("I was wondering if"))
    assert waits.judged.wait(10)
    turns.transcript("I was wondering if")
    turns.speech_resumed()
    turns.close()
    assert waits.applied == [1.5, 1.5, 1.5, 1.5]
    assert [d.reason for d in waits.decisions] == ["waiting", "unfinished", "trailing"]


def test_an_answer_about_a_pause_that_ended_is_dropped(smart_turn: SmartTurn, speech: Callable[[str], bytes]) -> None:
    turns, waits = end_of_turn(smart_turn)
    turns.pause_started(speech("What time is it?"))
    turns.speech_resumed()  # before the model can have answered
    waits.judged.wait(0.5)
    turns.close()
    assert waits.applied[-1] == 1.5 and 0.15 not in waits.applied


def test_a_held_turn_never_ends_until_released(smart_turn: SmartTurn, speech: Callable[[str], bytes]) -> None:
    turns, waits = end_of_turn(smart_turn)
    turns.hold()
    turns.transcript("What time is it?")
    turns.pause_started(speech("What time is it?"))
    turns.speech_resumed()
    turns.pause_started(speech("What time is it?"))
    for _ in range(100):  # the model answers while held: it must not shorten the wait
        if len(waits.applied) >= 5:
            break
        threading.Event().wait(0.05)
    assert set(waits.applied) == {HELD_WAIT} and waits.decisions == []
    turns.release()
    turns.close()
    assert waits.applied[-1] == 0.15 and waits.decisions[-1].reason == "complete"


@pytest.fixture(scope="module")
def text_judge() -> Iterator[TextTurn]:
    judge = TextTurn.bundled()
    assert judge is not None, "the bundled SmolLM2 and llama-cpp-python are part of the dev install"
    yield judge
    judge.close()


@pytest.mark.parametrize(("text", "finished"), [
    ("What time is it?", True), ("Tell me about the history of the bicycle.", True), ("Why is the sky blue?", True),
    ("Can you tell me.", False), ("I would like to know.", False), ("My friend and I.", False),
    ("Tell me about the.", False),
])
def test_the_text_judge_reads_whole_messages_from_cut_ones(text_judge: TextTurn, text: str, finished: bool) -> None:
    assert text_judge.finished(text) is finished, text_judge.end_logprob(text)


def test_a_pause_whose_words_stop_short_waits_patiently_though_it_sounds_finished(
        smart_turn: SmartTurn, text_judge: TextTurn, speech: Callable[[str], bytes]) -> None:
    waits = Waits()
    turns = EndOfTurn(SETTINGS, waits.apply, smart_turn, waits.decided, text_judge)
    turns.pause_started(speech("What time is it?"))
    assert waits.judged.wait(10)
    assert waits.applied[-1] == 1.5 and waits.decisions[-1].reason == "waiting for words"
    turns.pause_transcript("My friend and I.")  # as Whisper writes a thinking pause
    for _ in range(200):
        if waits.decisions[-1].reason != "waiting for words":
            break
        threading.Event().wait(0.05)
    turns.close()
    assert waits.decisions[-1].reason == "words unfinished" and waits.applied[-1] == 1.0
    assert 0.15 not in waits.applied


def test_a_pause_after_a_whole_question_ends_soon_once_its_words_are_read(
        smart_turn: SmartTurn, text_judge: TextTurn, speech: Callable[[str], bytes]) -> None:
    waits = Waits()
    turns = EndOfTurn(SETTINGS, waits.apply, smart_turn, waits.decided, text_judge)
    turns.pause_started(speech("What time is it?"))
    turns.pause_transcript("What time is it?")
    for _ in range(200):
        if waits.applied and waits.applied[-1] == 0.15:
            break
        threading.Event().wait(0.05)
    turns.close()
    assert waits.applied[-1] == 0.15 and waits.decisions[-1].reason == "complete"


@pytest.mark.parametrize(("text", "whole"), [
    ("Okay.", True), ("Yes, please.", True), ("Thank you so much!", True), ("No.", True), ("Of course.", True),
    ("So.", False), ("Okay...", False), ("Okay, so", False), ("Yes, but", False), ("I like dogs.", False),
    ("Thank", False), ("", False),
])
def test_a_short_reply_is_whole_by_its_words(text: str, whole: bool) -> None:
    assert short_reply(text) is whole


def test_a_short_reply_ends_soon_though_the_judge_reads_it_as_cut_off(
        smart_turn: SmartTurn, text_judge: TextTurn, speech: Callable[[str], bytes]) -> None:
    assert not text_judge.finished("Okay.")  # why the rule exists: the judge alone would wait 1.0 s
    waits = Waits()
    turns = EndOfTurn(SETTINGS, waits.apply, smart_turn, waits.decided, text_judge)
    turns.pause_started(speech("What time is it?"))
    turns.pause_transcript("Okay.")
    for _ in range(200):
        if waits.applied and waits.applied[-1] == 0.15:
            break
        threading.Event().wait(0.05)
    turns.close()
    assert waits.applied[-1] == 0.15 and waits.decisions[-1].reason == "complete"
    assert 1.0 not in waits.applied


@pytest.mark.slow
def test_the_live_listener_waits_through_a_thinking_pause_after_words_that_are_no_whole_message(
        make_speech: Callable[[str, str], Path]) -> None:
    """Real listener, real models: "I would like to know" ... 0.8 s ... "how tall the tallest tree is." fed
    at real-time pace is one turn, though Smart Turn hears Piper's first half as finished."""
    import asyncio

    from tests.conftest import bundled_whisper_dir
    from voicechat.config.models import Profile
    from voicechat.events import HeardKind
    from voicechat.live.listener import RealtimeListener, listener_settings
    from voicechat.live.sources import RealTimePacer, split_frames

    first = read_speech_file(make_speech("I would like to know", "a.wav"))
    second = read_speech_file(make_speech("how tall the tallest tree is.", "b.wav"))

    async def run() -> list[str]:
        listener = RealtimeListener(listener_settings(Profile().stt, bundled_whisper_dir()))
        await listener.start()
        finals: list[str] = []
        pacer = RealTimePacer()
        try:
            for block in split_frames(silence(0.5) + first + silence(0.8) + second + silence(4.0)):
                listener.feed(block)
                await pacer.wait(len(block) / 32000)
                while not listener.events.empty():
                    event = listener.events.get_nowait()
                    if event.kind is HeardKind.FINAL and event.text:
                        finals.append(event.text)
        finally:
            await listener.stop()
        return finals

    finals = asyncio.run(run())
    assert len(finals) == 1 and "tree" in finals[0].lower(), finals


def test_a_closed_judge_refuses_rather_than_reading_freed_memory() -> None:
    judge = TextTurn.bundled()
    assert judge is not None
    judge.close()
    with pytest.raises(RuntimeError, match="closed"):
        judge.end_logprob("What time is it?")
