"""The JSONL transcript: one line per finished turn, on disk when `write` returns, never a key."""

from __future__ import annotations

import json
from pathlib import Path

from voicechat.conversation_log import ConversationLog, default_path
from voicechat.events import TextDelta, TurnMetrics
from voicechat.llm.conversation import Turn

TURN = Turn("c1", 0, "Ada", "hello", (TextDelta(" Hi Ada. ", "Lydia"), TextDelta("  ", "Lydia")), True,
            "dropped", 1_700_000_000.0, 1_700_000_001.5)


def test_each_turn_is_a_line_readable_before_close(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = ConversationLog(path).open()
    writer.write(TURN)
    first = json.loads(path.read_text())  # another reader sees it while the writer is still open
    writer.write(TURN, TurnMetrics(transcript=0.01, first_token=0.2, first_sentence=None, first_audio=0.51234))
    writer.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert first == {
        "conversation_id": "c1", "turn": 0, "started": "2023-11-14T22:13:20.000+00:00",
        "finished": "2023-11-14T22:13:21.500+00:00", "user_name": "Ada", "user": "hello",
        "replies": [{"character": "Lydia", "text": "Hi Ada."}], "cut": True, "error": "dropped",
    }
    assert json.loads(lines[1])["metrics"] == {"transcript": 0.01, "first_token": 0.2, "first_sentence": None,
                                              "first_audio": 0.5123}


def test_appends_to_an_existing_file_and_defaults_to_the_data_dir(tmp_path: Path, voicechat_home: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"old": true}\n')
    with ConversationLog(path) as writer:
        writer.write(TURN)
    assert len(path.read_text().splitlines()) == 2
    assert default_path().parent == voicechat_home / "data" / "transcripts"


def test_two_conversations_begun_in_the_same_second_get_files_of_their_own(voicechat_home: Path) -> None:
    first = default_path()
    first.parent.mkdir(parents=True)
    first.write_text("")
    second = default_path()
    second.write_text("")
    third = default_path()
    assert len({first, second, third}) == 3 and third.parent == first.parent
    assert all(path.name.startswith("talk-") and path.suffix == ".jsonl" for path in (first, second, third))
