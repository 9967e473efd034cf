"""Past conversations: found, shown, searched, exported, removed and continued.

The JSONL transcripts stay the record (voicechat/conversation_log.py appends and fsyncs each turn as it ends, so a
crash loses nothing and the live loop never waits on a database lock). A SQLite file beside them,
history.db, indexes every line of every transcript in the transcripts folder: it is rebuilt from the files
whenever they change, so it can be deleted at any time, and users can query it themselves with `sqlite3`
(`voicechat history path` prints where it is). Transcripts written before the index existed are read the same.
"""
