"""history.db: a SQLite index of every transcript line, refreshed from the JSONL files before each use.

A file is read again only when its size or modification time changed since the last refresh; a vanished file
leaves the index with its turns. Lines that are not JSON (a crash mid-write) are skipped and counted.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from voicechat.errors import UsageError, VoicechatError
from voicechat.history.records import ConversationSummary, HistoryTurn, parse_record

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                    skipped INTEGER NOT NULL);
CREATE TABLE turns (
    path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user TEXT NOT NULL,
    characters TEXT NOT NULL,      -- JSON list of who replied, in order
    reply_text TEXT NOT NULL,      -- every reply part joined, for search
    cut INTEGER NOT NULL,
    error TEXT,
    record TEXT NOT NULL,          -- the transcript line as written
    PRIMARY KEY (path, line)
);
CREATE INDEX turns_by_conversation ON turns (conversation_id, finished);
"""


@dataclass(frozen=True)
class Refresh:
    files: int
    skipped_lines: int


class HistoryIndex:
    """Opened on a transcripts folder and the database file that indexes it."""

    def __init__(self, folder: Path, database: Path) -> None:
        self.folder = folder
        self.database = database
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> HistoryIndex:
        return self

    def __exit__(self, *_: object) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = _connect(self.database)
        return self._db

    def refresh(self) -> Refresh:
        """Bring the index up to date with the transcript files."""
        present = {str(path): path for path in sorted(self.folder.glob("*.jsonl")) if path.is_file()}
        known = {row[0]: (row[1], row[2]) for row in self.db.execute("SELECT path, size, mtime_ns FROM files")}
        with self.db:
            for gone in known.keys() - present.keys():
                self.db.execute("DELETE FROM files WHERE path = ?", (gone,))
            for name, path in present.items():
                stat = path.stat()
                if known.get(name) != (stat.st_size, stat.st_mtime_ns):
                    self._load_file(path, stat.st_size, stat.st_mtime_ns)
        skipped = self.db.execute("SELECT coalesce(sum(skipped), 0) FROM files").fetchone()[0]
        return Refresh(len(present), int(skipped))

    def _load_file(self, path: Path, size: int, mtime_ns: int) -> None:
        self.db.execute("DELETE FROM files WHERE path = ?", (str(path),))
        turns, skipped = read_transcript(path)
        self.db.execute("INSERT INTO files VALUES (?, ?, ?, ?)", (str(path), size, mtime_ns, skipped))
        self.db.executemany(
            "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(str(path), line, t.conversation_id, t.index, t.started, t.finished, t.user_name, t.user,
              json.dumps(list(dict.fromkeys(r.character for r in t.replies))), t.reply_text(), int(t.cut),
              t.error, json.dumps(t.record, ensure_ascii=False)) for line, t in turns],
        )

    def conversations(self, limit: int | None = None) -> list[ConversationSummary]:
        """Newest first: the conversation whose latest turn is latest leads."""
        rows = self.db.execute(
            "SELECT conversation_id FROM turns GROUP BY conversation_id "
            "ORDER BY max(finished) DESC, max(rowid) DESC LIMIT ?", (-1 if limit is None else limit,),
        ).fetchall()
        return [self.summary(row[0]) for row in rows]

    def summary(self, conversation_id: str) -> ConversationSummary:
        turns = self.turns(conversation_id)
        rows = self.db.execute("SELECT path FROM turns WHERE conversation_id = ? ORDER BY finished DESC, rowid "
                               "DESC LIMIT 1", (conversation_id,)).fetchone()
        return summarize(conversation_id, turns, rows[0])

    def turns(self, conversation_id: str) -> list[HistoryTurn]:
        rows = self.db.execute(
            "SELECT record, line FROM turns WHERE conversation_id = ? ORDER BY started, turn, rowid",
            (conversation_id,),
        )
        return [turn for record, line in rows if (turn := parse_record(json.loads(record), line)) is not None]

    def paths(self, conversation_id: str) -> list[Path]:
        rows = self.db.execute("SELECT DISTINCT path FROM turns WHERE conversation_id = ?", (conversation_id,))
        return [Path(row[0]) for row in rows]

    def search(self, words: Iterable[str], limit: int = 50) -> list[HistoryTurn]:
        """Turns holding every word (case-insensitive), newest first."""
        terms = [word for word in words if word.strip()]
        if not terms:
            raise UsageError("nothing to search for: give one or more words, e.g. `voicechat history search maps`")
        where = " AND ".join("instr(lower(user || ' ' || reply_text), lower(?)) > 0" for _ in terms)
        rows = self.db.execute(f"SELECT record, line FROM turns WHERE {where} ORDER BY finished DESC, rowid DESC "
                               "LIMIT ?", (*terms, limit))
        return [turn for record, line in rows if (turn := parse_record(json.loads(record), line)) is not None]

    def resolve(self, prefix: str) -> str:
        """A full conversation id from a unique prefix of it; one clear error when none or several match."""
        wanted = prefix.strip().lower()
        if not wanted:
            raise UsageError("give a conversation ID (or the start of one) from `voicechat history list`")
        rows = self.db.execute(
            "SELECT conversation_id FROM turns WHERE substr(conversation_id, 1, ?) = ? GROUP BY conversation_id "
            "ORDER BY max(finished) DESC LIMIT 6", (len(wanted), wanted),
        ).fetchall()
        if not rows:
            raise UsageError(f"no conversation with ID '{prefix}': see `voicechat history list`")
        if len(rows) > 1:
            shown = ", ".join(row[0][: len(wanted) + 4] for row in rows[:5])
            raise UsageError(f"conversation ID '{prefix}' is ambiguous ({shown}{', ...' if len(rows) > 5 else ''}): "
                             "give more of it")
        return str(rows[0][0])

    def latest(self) -> str | None:
        row = self.db.execute("SELECT conversation_id FROM turns ORDER BY finished DESC, rowid DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])


def read_transcript(path: Path) -> tuple[list[tuple[int, HistoryTurn]], int]:
    """(line number, turn) for each turn in a JSONL transcript, and how many lines could not be read."""
    turns: list[tuple[int, HistoryTurn]] = []
    skipped = 0
    for number, text in _lines(path):
        try:
            turn = parse_record(json.loads(text), number)
        except json.JSONDecodeError:
            turn = None
        if turn is None:
            skipped += 1
        else:
            turns.append((number, turn))
    return turns, skipped


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle):
                if text.strip():
                    yield number, text
    except OSError as error:
        raise VoicechatError(f"cannot read the transcript {path}: {error.strerror}; check its permissions") from None


def summarize(conversation_id: str, turns: list[HistoryTurn], path: str) -> ConversationSummary:
    characters = tuple(dict.fromkeys(reply.character for turn in turns for reply in turn.replies))
    spoken = next((turn.user for turn in turns if turn.user), "") or next(
        (turn.reply_text() for turn in turns if turn.replies), "")
    return ConversationSummary(
        conversation_id=conversation_id,
        started=turns[0].started if turns else "",
        last=max((turn.finished for turn in turns), default=""),
        turns=sum(1 for turn in turns if not turn.is_greeting),
        characters=characters,
        user_name=turns[-1].user_name if turns else "User",
        first_words=" ".join(spoken.split()),
        path=path,
    )


def _connect(database: Path) -> sqlite3.Connection:
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(database, timeout=10)
        db.execute("PRAGMA foreign_keys = ON")
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            _rebuild(db)
    except (OSError, sqlite3.Error) as error:
        raise VoicechatError(f"cannot open the history index {database} ({error}); delete it and it is "
                             "rebuilt from the transcripts") from None
    return db


def _rebuild(db: sqlite3.Connection) -> None:
    """The index is derived data: an older or unknown layout is dropped and read again from the files."""
    with closing(db.cursor()) as cursor:
        for (name,) in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
        cursor.executescript(SCHEMA)
        cursor.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.commit()


def open_default() -> HistoryIndex:
    """The index of the user's transcripts folder (where `talk` writes by default)."""
    from voicechat import paths
    from voicechat.conversation_log import default_path

    return HistoryIndex(default_path().parent, paths.user_data_dir() / "history.db")
