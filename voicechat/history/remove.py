"""Taking a conversation out of its transcripts: each file is rewritten atomically without its lines."""

from __future__ import annotations

import json
from pathlib import Path

from voicechat.errors import VoicechatError
from voicechat.fileio import atomic_output


def remove_conversation(conversation_id: str, paths: list[Path]) -> int:
    """Drop every line of `conversation_id` from `paths`; a file left with nothing in it is deleted.
    Returns the number of lines removed."""
    removed = 0
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise VoicechatError(f"cannot read the transcript {path}: {error.strerror}") from None
        kept = [line for line in lines if not _belongs(line, conversation_id)]
        removed += len(lines) - len(kept)
        try:
            if any(line.strip() for line in kept):
                with atomic_output(path) as handle:
                    handle.write("".join(kept).encode("utf-8"))
            else:
                path.unlink()
        except OSError as error:
            raise VoicechatError(f"cannot rewrite the transcript {path}: {error.strerror}; check its "
                                 "permissions") from None
    return removed


def _belongs(line: str, conversation_id: str) -> bool:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("conversation_id") == conversation_id
