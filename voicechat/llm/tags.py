"""Route a streamed multi-character reply to its characters by the tags the model was told to write.

`<Lydia>Hello.</Lydia><Captain Reyes>Report.</Captain Reyes>` -> TextDelta("Hello.", "Lydia"),
TextDelta("Report.", "Captain Reyes"). Tags may be split across chunks at any point: a `<` holds back text
until the tag closes (or proves not to be a tag), so any chunking parses the same. Text outside tags goes
to the lead character; a tag naming no known character is dropped from the text, which goes to the lead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from voicechat.events import TextDelta

MAX_TAG = 72  # longer than any character name (64) plus "</" and ">"
_TAG_BODY = re.compile(r"/?\s*[^\W\d_][\w .'\-]{0,63}")


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


class TagParser:
    """Push parser: `feed(chunk)` and `finish()` return the deltas ready so far."""

    def __init__(self, characters: Iterable[str], lead: str) -> None:
        self.lead = lead
        self._names = {_key(name): name for name in characters}
        self._names.setdefault(_key(lead), lead)
        self.current = lead
        self.unknown: list[str] = []  # tag names that matched no character, in order seen
        self._pending = ""  # an unfinished "<..." that may still become a tag

    def feed(self, chunk: str) -> list[TextDelta]:
        out: list[str] = []
        deltas: list[TextDelta] = []
        position = 0
        while position < len(chunk):
            if self._pending:
                position = self._extend_tag(chunk, position, out, deltas)
                continue
            start = chunk.find("<", position)
            if start < 0:
                out.append(chunk[position:])
                break
            out.append(chunk[position:start])
            self._pending = "<"
            position = start + 1
        self._emit(out, deltas)
        return deltas

    def finish(self) -> list[TextDelta]:
        """Whatever is held back (an unclosed "<...") is plain text."""
        text, self._pending = self._pending, ""
        return [TextDelta(text, self.current)] if text else []

    def _extend_tag(self, chunk: str, position: int, out: list[str], deltas: list[TextDelta]) -> int:
        char = chunk[position]
        if char == "<" or char == "\n":
            out.append(self._pending)
            self._pending = ""
            return position  # the char is looked at again with no tag pending
        self._pending += char
        if char == ">":
            self._close_tag(out, deltas)
        elif len(self._pending) > MAX_TAG:
            out.append(self._pending)
            self._pending = ""
        return position + 1

    def _close_tag(self, out: list[str], deltas: list[TextDelta]) -> None:
        tag, self._pending = self._pending, ""
        body = tag[1:-1]
        if not _TAG_BODY.fullmatch(body):
            out.append(tag)  # "<3 >" or "< 5 and 6 >": plain text
            return
        self._emit(out, deltas)
        closing = body.lstrip().startswith("/")
        name = body.lstrip().lstrip("/").strip()
        known = self._names.get(_key(name))
        if known is None:
            self.unknown.append(name)
        self.current = self.lead if closing or known is None else known

    def _emit(self, out: list[str], deltas: list[TextDelta]) -> None:
        text = "".join(out)
        out.clear()
        if text:
            deltas.append(TextDelta(text, self.current))


def merge(deltas: Iterable[TextDelta]) -> list[TextDelta]:
    """Neighbouring deltas of one character joined: the same reply however it was chunked."""
    merged: list[TextDelta] = []
    for delta in deltas:
        if merged and merged[-1].character == delta.character:
            merged[-1] = TextDelta(merged[-1].text + delta.text, delta.character)
        elif delta.text:
            merged.append(delta)
    return merged
