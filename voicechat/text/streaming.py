"""Streamed text -> sentences to speak, each as soon as it is known to be complete.

A sentence is complete when pysbd sees the next one begin (so "Dr. Smith", "3.5", "e.g." and ellipses
never end one). The first sentence of a reply may go early, at a clause break (", " "; " ": " " — ")
once it is long enough to speak, so speech starts sooner. A change of character ends the sentence, and a
run-on with no sentence end is cut at its last clause break once it grows past MAX_PENDING_CHARS.
A `SentenceEnd` delta (sent by the reply budget, which already knows the sentence is whole) completes the
sentence at once, without waiting for the next one to begin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from voicechat.events import Sentence, TextDelta
from voicechat.text.sentences import segment

FIRST_CLAUSE_CHARS = 20
MAX_PENDING_CHARS = 300  # a run-on longer than this is spoken up to its last clause break (or word)
MAYBE_END = re.compile("[.!?\u2026\n][\"'\u201d\u2019)\\]]*\\s+\\S")
_CLAUSE_BREAK = re.compile("[,;:\u2014\u2013](?=\\s+\\S)")



@dataclass(frozen=True)
class SentenceEnd(TextDelta):
    """The last piece of a sentence known to be whole: what was held of it, and the space after it."""


class SentenceStreamer:
    """Push splitter: `feed(delta)` and `finish()` return the sentences completed so far."""

    def __init__(
        self,
        voices: Mapping[str, str] | None = None,
        default_voice: str = "",
        first_clause_chars: int = FIRST_CLAUSE_CHARS,
        language: str = "en",
        max_pending_chars: int = MAX_PENDING_CHARS,
    ) -> None:
        self.voices = dict(voices or {})
        self.default_voice = default_voice
        self.first_clause_chars = first_clause_chars
        self.language = language
        self.max_pending_chars = max_pending_chars
        self.index = 0
        self._buffer = ""
        self._character = ""

    def feed(self, delta: TextDelta) -> list[Sentence]:
        ready: list[Sentence] = []
        if delta.character != self._character:
            ready += self.finish()
            self._character = delta.character
        self._buffer += delta.text
        if isinstance(delta, SentenceEnd):
            return ready + self.finish()
        if not delta.text.strip():
            return ready
        ready += self._complete_sentences()
        if not ready and self.index == 0:
            ready += self._first_clause()
        if not ready and len(self._buffer) > self.max_pending_chars:
            ready += self._run_on()
        return ready

    def finish(self) -> list[Sentence]:
        """Everything still held, as sentences (end of the reply, or of a character's turn)."""
        text, self._buffer = self._buffer, ""
        return [self._make(piece) for piece in segment(text, self.language) if piece.strip()]

    def _complete_sentences(self) -> list[Sentence]:
        if not MAYBE_END.search(self._buffer):
            return []
        pieces = segment(self._buffer, self.language)
        if len(pieces) < 2:
            return []
        last = pieces[-1].strip()
        cut = self._buffer.rfind(last) if last else len(self._buffer)
        if cut < 0:  # pysbd changed the text: keep its last piece as the remainder
            self._buffer = pieces[-1]
        else:
            self._buffer = self._buffer[cut:]
        return [self._make(piece) for piece in pieces[:-1] if piece.strip()]

    def _first_clause(self) -> list[Sentence]:
        for found in _CLAUSE_BREAK.finditer(self._buffer):
            end = found.end()
            if len(self._buffer[:end].strip()) >= self.first_clause_chars:
                clause, self._buffer = self._buffer[:end], self._buffer[end:]
                return [self._make(clause)]
        return []

    def _run_on(self) -> list[Sentence]:
        breaks = [found.end() for found in _CLAUSE_BREAK.finditer(self._buffer)]
        end = breaks[-1] if breaks else self._buffer.rstrip().rfind(" ")
        if end <= 0:
            return []
        piece, self._buffer = self._buffer[:end], self._buffer[end:]
        return [self._make(piece)]

    def _make(self, text: str) -> Sentence:
        sentence = Sentence(
            text=text.strip(),
            character=self._character,
            voice=self.voices.get(self._character, self.default_voice),
            index=self.index,
        )
        self.index += 1
        return sentence
