"""The review's findings that need no server: file modes (F12), name checks (F13), deep JSON (F5), the
Origin/Host rules (F1, F2), secret scrubbing (F4), the limits' counters (F6-F8) and the page (F14)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from voicechat.events import AudioChunk
from voicechat.serve.guard import Origins, normal_origin
from voicechat.serve.limits import Slots, TurnBucket
from voicechat.serve.protocol import ProtocolError, parse_message, scrub_secrets
from voicechat.serve.sink import Outbox


@pytest.fixture
def umask() -> Iterator[None]:
    """Each test sets its own umask; the process's comes back afterwards."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_outputs_follow_the_umask(tmp_path: Path, umask: None, mask: int, expected: int) -> None:
    from voicechat.audio.sinks import WavFileSink
    from voicechat.fileio import atomic_write_bytes

    os.umask(mask)
    atomic_write_bytes(tmp_path / "out.txt", b"text")

    async def write_wav() -> None:
        sink = WavFileSink(tmp_path / "out.wav")
        await sink.write(AudioChunk(b"\0\0" * 100, 16000))
        await sink.close()

    asyncio.run(write_wav())
    assert mode(tmp_path / "out.txt") == expected and mode(tmp_path / "out.wav") == expected


def test_private_files_and_transcripts_are_the_owners_only(tmp_path: Path, umask: None) -> None:
    from voicechat.conversation_log import ConversationLog
    from voicechat.fileio import atomic_write_bytes
    from voicechat.llm.conversation import Turn

    atomic_write_bytes(tmp_path / "secret.txt", b"x", private=True)
    old = tmp_path / "old" / "talk.jsonl"
    old.parent.mkdir()
    old.write_text("")
    old.chmod(0o644)  # written by an earlier version
    turn = Turn(conversation_id="c", index=0, user_name="User", user="hello", parts=(), cut=False, error=None,
                started=0.0, finished=1.0)
    for path in (tmp_path / "transcripts" / "talk.jsonl", old):
        with ConversationLog(path) as writer:
            writer.write(turn)
    assert mode(tmp_path / "secret.txt") == 0o600
    assert mode(tmp_path / "transcripts" / "talk.jsonl") == 0o600 and mode(tmp_path / "transcripts") == 0o700
    assert mode(old) == 0o600 and '"user": "hello"' in old.read_text()


def test_a_profile_name_ending_in_a_newline_is_refused(voicechat_home: Path) -> None:
    result = run_cli("profiles", "new", "evil\n")
    assert result.returncode == 2 and "profile name" in result.stderr.decode()
    assert not list(voicechat_home.rglob("*.toml"))


def test_deeply_nested_json_is_a_protocol_error() -> None:
    for raw in ("[" * 2000, '{"a":' * 2000, "1" * 5000):
        with pytest.raises(ProtocolError):
            parse_message(raw)


def test_origins_and_hosts() -> None:
    rules = Origins("127.0.0.1", allowed_origins=("https://chat.example.org",), allowed_hosts=("voice.lan",))
    local = "127.0.0.1"
    assert all(rules.host_ok(name, local) for name in ("127.0.0.1", "localhost", "::1", "[::1]", "voice.lan"))
    assert not any(rules.host_ok(name, local) for name in ("evil.example", "127.0.0.1.evil.example", "10.0.0.2"))
    wildcard = Origins("0.0.0.0")
    assert wildcard.host_ok("192.168.1.4", "192.168.1.4") and not wildcard.host_ok("192.168.1.5", "192.168.1.4")
    assert rules.origin_ok(None, local, 8765) and rules.origin_ok("http://127.0.0.1:8765", local, 8765)
    assert rules.origin_ok("https://chat.example.org", local, 8765)
    for origin in ("http://127.0.0.1:9", "http://evil.example:8765", "null", "file://", "http://[bad"):
        assert not rules.origin_ok(origin, local, 8765), origin
    assert normal_origin("HTTPS://Chat.Example.org/") == "https://chat.example.org"
    from voicechat.errors import UsageError

    with pytest.raises(UsageError, match="--allow-origin"):
        normal_origin("chat.example.org/page")


def test_secrets_are_scrubbed_from_log_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-1234567890")
    line = scrub_secrets("bad key sk-or-v1-abcdef123456 and tok-1234567890, header Bearer xyz.123 kept: 401")
    assert "abcdef123456" not in line and "tok-1234567890" not in line and "xyz.123" not in line
    assert line.count("[redacted]") == 3 and line.endswith("kept: 401")


def test_the_turn_bucket_takes_a_burst_then_the_rate() -> None:
    bucket = TurnBucket(rate=1000.0, burst=3)
    assert [bucket.take() for _ in range(3)] == [True] * 3
    slow = TurnBucket(rate=0.001, burst=2)
    assert [slow.take() for _ in range(4)] == [True, True, False, False]
    slots = Slots(1)
    assert slots.take() and not slots.take()
    slots.give()
    assert slots.take()


def test_the_outbox_stops_at_its_byte_limit_and_drops_its_audio() -> None:
    async def run() -> tuple[Outbox, int]:
        outbox = Outbox(limit=10_000)
        outbox.put({"type": "audio_start"})
        for _ in range(9):
            outbox.put(bytes(1000))
        before = outbox.queued
        outbox.put(bytes(2000))  # over the limit
        outbox.put(bytes(10))  # nothing more is taken
        return outbox, before

    outbox, before = asyncio.run(run())
    assert before > 9000 and outbox.overflowed.is_set()
    assert len(outbox) == 1 and outbox.queued < 100  # the event stays, the audio went


def test_the_page_acts_only_on_the_users_own_clicks() -> None:
    from importlib import resources

    script = (resources.files("voicechat.serve") / "static" / "app.js").read_text()
    ready = script[script.index('case "ready":'):script.index('case "listening":')]
    assert "send(" not in ready and "startMic" not in ready  # a link cannot speak or listen for the user
    assert script.count("if (!byUser(event)) return;") == 2 and script.count("if (byUser(event)) send(") == 2
