"""`voicechat talk` by voice: scripted turns from speech files through the real Session.

Speech is made in the test with the bundled Piper voice, heard by RealtimeSTT over the bundled tiny.en
model, answered by a loopback OpenAI-compatible server, spoken by Piper into a WAV, and transcribed back.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.conftest import NO_AUDIO_SERVER, devices_of_a_new_process, run_cli, transcribe_file, word_error_rate
from tests.sse_server import Script, SSEServer
from voicechat.events import (
    AudioChunk,
    Heard,
    HeardKind,
    Sentence,
    TextDelta,
    TurnFinished,
    TurnStarted,
)

pytestmark = pytest.mark.slow

KEY = {"OPENROUTER_API_KEY": "test-key-not-secret"}
LONG_REPLY = (
    "Once upon a time there was a small boat on a wide grey sea. The sailor in it had lost his map. "
    "He watched the stars every night to find his way home. One night a storm came and threw the waves high. "
    "The boat spun around and around until the morning came. When the sun rose he saw an island ahead."
)


@pytest.fixture
def server() -> SSEServer:
    with SSEServer() as running:
        yield running  # type: ignore[misc]


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def talk(server: SSEServer, tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> tuple[object, Path, Path]:
    answer, transcript = tmp_path / "answer.wav", tmp_path / "talk.jsonl"
    args = ["talk", "--no-greeting", "--base-url", server.base_url, "--output", str(answer),
            "--transcript", str(transcript)]
    for path in inputs:
        args += ["--input", str(path)]
    return run_cli(*args, *extra, env=KEY), answer, transcript


def test_two_spoken_turns_with_history_come_back_as_speech(server: SSEServer, make_speech, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = make_speech("What is the capital of France?", "q1.wav")
    second = make_speech("And what about Germany?", "q2.wav")
    replies = ["The capital of France is Paris.", "Berlin is the capital of Germany."]
    server.queue(*(Script.reply(text) for text in replies))
    result, answer, transcript = talk(server, tmp_path, first, second)
    assert result.returncode == 0, result.stderr.decode()

    turns = records(transcript)
    assert [turn["turn"] for turn in turns] == [0, 1]
    assert word_error_rate("What is the capital of France?", str(turns[0]["user"])) <= 0.2
    assert [turn["replies"][0]["text"] for turn in turns] == replies  # type: ignore[index]
    for turn in turns:
        metrics = turn["metrics"]
        assert isinstance(metrics, dict)
        steps = [metrics[name] for name in ("transcript", "first_token", "first_sentence", "first_audio")]
        assert steps[0] > 0 and steps == sorted(steps)
    second_request = [m["content"] for m in server.requests[1].body["messages"]]
    assert second_request[-2] == replies[0]  # the first exchange is history for the second
    # a missing reply is half the words (0.5); tiny.en mishears Piper's "France is. Berlin" as "Francis. Or when"
    # in some runs (0.33: Piper's noise makes each take differ)
    assert word_error_rate(" ".join(replies), transcribe_file(answer)) <= 0.4
    stdout = result.stdout.decode().splitlines()
    assert stdout[1] == f"Lydia: {replies[0]}" and stdout[3] == f"Lydia: {replies[1]}"
    assert "RealtimeSTT" not in result.stdout.decode()


def test_a_scripted_barge_in_keeps_only_what_was_heard(server: SSEServer, make_speech, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = make_speech("Tell me a long story about the sea.", "q1.wav")
    second = make_speech("Stop, tell me about mountains instead.", "q2.wav")
    server.queue(Script.reply(LONG_REPLY), Script.reply("Mountains are tall and cold."))
    result, answer, transcript = talk(server, tmp_path, first, second, extra=("--interrupt-after", "1.0"))
    assert result.returncode == 0, result.stderr.decode()

    cut, after = records(transcript)
    heard = cut["replies"][0]["text"]  # type: ignore[index]
    assert cut["cut"] is True and after["cut"] is False
    assert 0 < len(heard) < len(LONG_REPLY) / 2
    assert LONG_REPLY.startswith(heard.rstrip("…").strip())
    history = server.requests[1].body["messages"][-2]["content"]
    assert history.startswith(heard) and "island" not in history
    spoken_back = transcribe_file(answer).lower()
    # the next reply follows the cut one at once, so tiny.en runs the two together ("a smount in their tall")
    assert "tall and cold" in spoken_back and "island" not in spoken_back
    assert "(interrupted)" in result.stderr.decode()


def paused_speech(make_speech, parts: list[str], pause: float, target: Path) -> Path:  # type: ignore[no-untyped-def]
    """Piper saying the parts with `pause` seconds of silence between them, as one WAV."""
    import numpy as np
    import soundfile

    clips = [soundfile.read(make_speech(text, f"part{i}.wav"), dtype="int16") for i, text in enumerate(parts)]
    rate = clips[0][1]
    gap = np.zeros(int(pause * rate), dtype=np.int16)
    joined = np.concatenate([piece for samples, _ in clips for piece in (samples, gap)][:-1])
    soundfile.write(target, joined, rate, subtype="PCM_16")
    return target


def test_a_scripted_input_with_a_thinking_pause_is_heard_whole(server: SSEServer, make_speech,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    question = paused_speech(make_speech, ["I was wondering if", "you could tell me a story about a dragon."],
                             0.7, tmp_path / "paused.wav")
    server.queue(Script.reply("Once there was a dragon."), Script.reply("A second answer."))
    # A fixed 0.3 s silence would end a live turn inside the 0.7 s pause: the file is held open instead.
    transcript = tmp_path / "talk.jsonl"
    result = run_cli("talk", "--no-greeting", "--base-url", server.base_url, "--input", str(question), "--output",
                     str(tmp_path / "answer.wav"), "--transcript", str(transcript),
                     env={**KEY, "VOICECHAT_STT_TURN_DETECTION": "silence", "VOICECHAT_STT_END_OF_TURN_SILENCE": "0.3"})
    assert result.returncode == 0, result.stderr.decode()

    turns = records(transcript)
    assert len(turns) == 1 and len(server.requests) == 1
    assert word_error_rate("I was wondering if you could tell me a story about a dragon.",
                           str(turns[0]["user"])) <= 0.2


def test_no_microphone_is_a_clear_error_within_seconds() -> None:
    if any(inputs > 0 for _, inputs, _ in devices_of_a_new_process(NO_AUDIO_SERVER)):
        pytest.skip("this machine has a microphone of its own")
    started = time.monotonic()
    result = run_cli("talk", "--no-greeting", env=KEY | NO_AUDIO_SERVER, timeout=60)
    assert time.monotonic() - started < 5
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert lines == ["error: no microphone found: type instead with `voicechat talk --text`, or script turns with "
                     "--input FILE.wav"]


def test_a_bad_input_file_fails_before_anything_runs(server: SSEServer, tmp_path: Path) -> None:
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"definitely not audio")
    result, answer, _ = talk(server, tmp_path, bad)
    assert result.returncode == 1
    assert "noise.wav" in result.stderr.decode() and "Traceback" not in result.stderr.decode()
    assert not answer.exists() and server.requests == []


def test_output_without_input_is_bad_usage(tmp_path: Path) -> None:
    result = run_cli("talk", "--no-greeting", "--output", str(tmp_path / "a.wav"), env=KEY)
    assert result.returncode == 2
    assert b"--output goes with --input" in result.stderr


def test_a_turn_emits_its_events_stage_by_stage(server: SSEServer, make_speech, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """In process: the real listener, the real client on the loopback server, Piper, a WAV sink."""
    from voicechat.audio.sinks import WavFileSink
    from voicechat.config.models import LLMSettings, TTSSettings
    from voicechat.config.store import load_character
    from voicechat.live.listener import ListenerSettings, RealtimeListener
    from voicechat.live.playback import Playback
    from voicechat.live.scripted import run_script
    from voicechat.llm.conversation import Conversation
    from voicechat.llm.openai_chat import OpenAIChat
    from voicechat.session import Session, SessionOptions
    from voicechat.stt.models import resolve_model
    from voicechat.tts.piper import PiperTTS

    question = make_speech("Please say something nice.", "q.wav")
    server.queue(Script.reply("You are doing great, really. Keep going!", delay=0.01))
    events: list[object] = []

    async def run() -> None:
        chat = OpenAIChat(LLMSettings(base_url=server.base_url), api_key="k")
        model_dir = resolve_model("bundled")
        session = Session(
            conversation=Conversation(chat, [load_character("lydia")], "Ada"),
            listener=RealtimeListener(ListenerSettings(model_dir, model_dir)),
            tts=PiperTTS(TTSSettings()),
            playback=Playback(WavFileSink(tmp_path / "out.wav"), pace=True),
            voices={"Lydia": "lydia"},
            default_voice="lydia",
            options=SessionOptions(full_duplex=True),
            observers=[events.append],
        )
        async with session:
            await run_script(session, [question])
        await chat.aclose()

    asyncio.run(run())

    def first(kind: type, where: object = None) -> int:
        for position, event in enumerate(events):
            if isinstance(event, kind) and (where is None or getattr(event, "kind", None) is where):
                return position
        raise AssertionError(f"no {kind.__name__} {where or ''} in {events}")

    # Live text comes while the user speaks where the CPU keeps up; on a slow one (tiny.en takes 1.5 s a pass
    # on a Zen 1 core, and the early final transcriptions at each pause go first) none may come before the
    # final. Where it comes, it comes between the start and the final.
    live = [first(Heard, HeardKind.UPDATE)] if any(
        isinstance(e, Heard) and e.kind is HeardKind.UPDATE for e in events) else []
    order = [
        first(Heard, HeardKind.STARTED),
        *live,
        first(Heard, HeardKind.FINAL),
        first(TurnStarted),
        first(TextDelta),
        first(Sentence),
        first(AudioChunk),
        first(TurnFinished),
    ]
    assert order == sorted(order), order
    finished = events[first(TurnFinished)]
    assert isinstance(finished, TurnFinished) and not finished.interrupted and finished.error is None
    assert finished.spoken[0].text.startswith("You are doing great")
    sentences = [e for e in events if isinstance(e, Sentence)]
    assert sentences[0].text == "You are doing great," and sentences[0].voice == "lydia"  # the first clause goes early


def test_a_model_that_cannot_load_is_a_clear_error_not_a_hang(make_speech, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import bundled_whisper_dir

    broken = tmp_path / "broken-model"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (broken / name).write_bytes((bundled_whisper_dir() / name).read_bytes())
    (broken / "model.bin").write_bytes(bytes(range(256)) * 400)
    question = make_speech("Hello there.", "q.wav")
    started = time.monotonic()
    result = run_cli("talk", "--no-greeting", "--input", str(question), "--output", str(tmp_path / "a.wav"),
                     env={**KEY, "VOICECHAT_STT_MODEL": str(broken)}, timeout=120)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the speech recognizer could not load"), lines
    assert "broken-model" in lines[0] and "stt.model" in lines[0]
    assert not (tmp_path / "a.wav").exists()
