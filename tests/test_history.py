"""`voicechat history` over transcripts written by real `talk --text` runs against the scripted SSE server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.sse_server import Script, SSEServer


@dataclass(frozen=True)
class Made:
    home: Path
    maps: str  # conversation ids, oldest first
    ships: str
    song: str

    @property
    def folder(self) -> Path:
        return self.home / "data" / "transcripts"


def cli(home: Path, *args: str, input: str | None = None) -> Any:
    return run_cli(*args, input=input, env={"VOICECHAT_HOME": str(home), "VOICECHAT_LLM_MAX_RETRIES": "0"},
                   timeout=120)


def talk(home: Path, server: SSEServer, lines: str, *extra: str) -> None:
    result = cli(home, "talk", "--text", "--no-audio", "--no-greeting", "--base-url", server.base_url, *extra,
                 input=lines)
    assert result.returncode == 0, result.stderr.decode()


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    """Two real talk runs: one conversation with Lydia, then one with the captain that /reset splits in two."""
    home = tmp_path_factory.mktemp("history_home")
    with SSEServer() as server:
        server.queue(Script.reply("Hello Ada, nice to meet you."), Script.reply("I love old maps of the sea."))
        talk(home, server, "hello there\nwhat do you like?\n", "-c", "lydia")
        server.queue(Script.reply("Ships are my life."), Script.reply("La la la, the song of the stars."))
        talk(home, server, "tell me about ships\n/reset\nsing me a song\n", "-c", "captain")
    ids = list(dict.fromkeys(record["conversation_id"] for record in records(home / "data" / "transcripts")))
    assert len(ids) == 3
    yield Made(home, *ids)


def copy_home(made: Made, tmp_path: Path) -> Made:
    home = tmp_path / "home"
    shutil.copytree(made.home, home)
    (home / "data" / "history.db").unlink(missing_ok=True)
    return Made(home, made.maps, made.ships, made.song)


@pytest.mark.slow
def test_list_is_newest_first_with_who_how_many_and_first_words(made: Made) -> None:
    result = cli(made.home, "history", "list", "--json")
    assert result.returncode == 0, result.stderr.decode()
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(r["conversation_id"], r["characters"], r["turns"], r["first_words"]) for r in rows] == [
        (made.song, ["Captain Reyes"], 1, "sing me a song"),
        (made.ships, ["Captain Reyes"], 1, "tell me about ships"),
        (made.maps, ["Lydia"], 2, "hello there"),
    ]
    table = cli(made.home, "history", "list").stdout.decode()
    lines = [line for line in table.splitlines() if line.strip()]
    assert lines[0].split()[:2] == ["id", "when"]
    assert [line.split()[0] for line in lines[1:]] == [made.song[:8], made.ships[:8], made.maps[:8]]
    assert "hello there" in lines[3] and "Lydia" in lines[3]
    assert cli(made.home, "history", "list", "-n", "1", "--json").stdout.decode().count("\n") == 1


@pytest.mark.slow
def test_show_by_a_short_id_as_text_and_json(made: Made) -> None:
    result = cli(made.home, "history", "show", made.maps[:5])
    assert result.returncode == 0, result.stderr.decode()
    said = [line.split("] ", 1)[1] for line in result.stdout.decode().splitlines() if line.startswith("[")]
    assert said == ["User: hello there", "Lydia: Hello Ada, nice to meet you.", "User: what do you like?",
                    "Lydia: I love old maps of the sea."]
    assert made.maps in result.stdout.decode().splitlines()[0]
    shown = json.loads(cli(made.home, "history", "show", made.maps[:5], "--json").stdout)
    assert shown["conversation_id"] == made.maps and shown["characters"] == ["Lydia"]
    assert shown["turns"] == [r for r in records(made.folder) if r["conversation_id"] == made.maps]


@pytest.mark.slow
def test_search_finds_every_word_in_any_case_across_conversations(made: Made) -> None:
    result = cli(made.home, "history", "search", "OLD", "maps")
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(made.maps[:8]) and "I love old maps of the sea." in lines[0]
    both = cli(made.home, "history", "search", "me").stdout.decode().splitlines()
    assert [line.split()[0] for line in both] == [made.song[:8], made.ships[:8], made.maps[:8]]
    missing = cli(made.home, "history", "search", "zeppelin")
    assert missing.returncode == 1 and "no turn contains" in missing.stderr.decode()


@pytest.mark.slow
def test_export_as_text_markdown_and_json_files(made: Made, tmp_path: Path) -> None:
    for fmt in ("txt", "md", "json"):
        target = tmp_path / f"maps.{fmt}"
        result = cli(made.home, "history", "export", made.maps[:6], "-f", fmt, "-o", str(target))
        assert result.returncode == 0, result.stderr.decode()
        assert f"wrote {target}" in result.stderr.decode()
    assert "Lydia: I love old maps of the sea." in (tmp_path / "maps.txt").read_text()
    markdown = (tmp_path / "maps.md").read_text()
    assert markdown.startswith("# Conversation with Lydia")
    assert "**User:** what do you like?\n\n**Lydia:** I love old maps of the sea." in markdown
    exported = json.loads((tmp_path / "maps.json").read_text())
    assert [t["user"] for t in exported["turns"]] == ["hello there", "what do you like?"]
    stdout = cli(made.home, "history", "export", made.song, "-f", "md")
    assert "**Captain Reyes:** La la la, the song of the stars." in stdout.stdout.decode()
    bad = cli(made.home, "history", "export", made.song, "-f", "pdf")
    assert bad.returncode == 2 and "unknown export format 'pdf'" in bad.stderr.decode()


@pytest.mark.slow
def test_unknown_and_ambiguous_ids_fail_in_one_line(made: Made, tmp_path: Path) -> None:
    home = copy_home(made, tmp_path)
    twin = made.maps[:4] + ("1" if made.maps[4] == "0" else "0") * 28
    old = {"conversation_id": twin, "turn": 0, "started": "2025-01-02T03:04:05.000+00:00", "user": "an old line",
           "replies": [{"character": "Lydia", "text": "from before the index"}]}  # no user_name, finished, cut
    (home.folder / "talk-old.jsonl").write_text(json.dumps(old) + "\n" + '{"conversation_id": "cut off mid-wr')
    unknown = cli(home.home, "history", "show", "ffffffffff")
    assert unknown.returncode == 2
    expected = "error: no conversation with ID 'ffffffffff': see `voicechat history list`"
    assert unknown.stderr.decode().strip() == expected
    ambiguous = cli(home.home, "history", "show", made.maps[:4])
    assert ambiguous.returncode == 2 and len(ambiguous.stderr.decode().strip().splitlines()) == 1
    assert "is ambiguous" in ambiguous.stderr.decode() and "give more of it" in ambiguous.stderr.decode()
    listed = cli(home.home, "history", "list", "--json")
    assert "skipped 1 unreadable transcript line" in listed.stderr.decode()
    oldest = json.loads(listed.stdout.decode().splitlines()[-1])
    assert (oldest["conversation_id"], oldest["first_words"], oldest["turns"]) == (twin, "an old line", 1)
    shown = cli(home.home, "history", "show", twin[:6]).stdout.decode()
    assert "User: an old line" in shown and "Lydia: from before the index" in shown


@pytest.mark.slow
def test_rm_takes_only_that_conversation_out_of_its_transcript(made: Made, tmp_path: Path) -> None:
    home = copy_home(made, tmp_path)
    result = cli(home.home, "history", "rm", made.ships[:7])
    assert result.returncode == 0, result.stderr.decode()
    assert f"removed conversation {made.ships}" in result.stderr.decode()
    assert [r["conversation_id"] for r in records(home.folder)] == [made.maps, made.maps, made.song]
    listed = [json.loads(line)["conversation_id"] for line in cli(home.home, "history", "list", "--json").stdout
              .decode().splitlines()]
    assert listed == [made.song, made.maps]
    files = len(list(home.folder.glob("*.jsonl")))
    assert cli(home.home, "history", "rm", made.song, "--yes").returncode == 0
    assert len(list(home.folder.glob("*.jsonl"))) == files - 1  # its transcript had nothing else: gone
    gone = cli(home.home, "history", "rm", made.song)
    assert gone.returncode == 2 and "no conversation with ID" in gone.stderr.decode()


def test_an_empty_history_says_how_to_start_one(voicechat_home: Path) -> None:
    result = run_cli("history", "list")
    assert result.returncode == 0
    assert "no conversations yet" in result.stderr.decode() and "voicechat talk" in result.stderr.decode()
    assert result.stdout == b""
    path = run_cli("history", "path").stdout.decode().splitlines()
    assert path == [str(voicechat_home / "data" / "history.db"), str(voicechat_home / "data" / "transcripts")]


@pytest.mark.slow
def test_the_index_follows_the_files_and_can_be_queried_with_sqlite(made: Made, tmp_path: Path) -> None:
    import sqlite3

    from voicechat.history.index import HistoryIndex

    home = copy_home(made, tmp_path)
    database = home.home / "data" / "history.db"
    with HistoryIndex(home.folder, database) as index:
        assert index.refresh().files == 2
        assert len(index.turns(made.maps)) == 2
        first = next(p for p in home.folder.glob("*.jsonl") if made.maps in p.read_text())
        line = json.loads(first.read_text().splitlines()[-1])
        with first.open("a") as handle:  # a third turn, as `talk --continue` appends it
            later = "2099-01-01T00:00:00.000+00:00"
            handle.write(json.dumps({**line, "turn": 2, "user": "and rivers?", "started": later,
                                     "finished": later}) + "\n")
        index.refresh()
        assert [t.user for t in index.turns(made.maps)][-1] == "and rivers?"
        assert index.latest() == made.maps
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT user FROM turns WHERE reply_text LIKE '%stars%'").fetchall()
    assert rows == [("sing me a song",)]
