"""The spoken-reply budget: a reply ends on its last whole sentence, within N sentences and W words.

`BudgetGate` sits between the tag parser and whoever shows and speaks the reply, and passes on only text
that will be kept, so nothing shown or spoken is ever taken back:
- the first sentence goes out as it arrives (so its first clause can be spoken early), all but trailing
  whitespace, which waits until the next word shows whether a sentence ended there;
- every later sentence is held until it is whole, then goes out as one `SentenceEnd` (which the sentence
  streamer speaks at once) if it fits the budget, or is dropped, and the gate is `done`;
- a sentence is whole when the next one begins, when the speaking character changes, or when the model
  says it finished (`finish(whole=True)`); a stream that stopped early (the token cap, a dropped
  connection) loses the sentence it was writing.
Once `done`, the caller stops reading and closes the model's stream. A first sentence that runs past the
word budget is the one exception to whole sentences: what went out of it stays, and the reply ends there.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicechat.config.models import LLMSettings
from voicechat.events import TextDelta
from voicechat.text.sentences import segment
from voicechat.text.streaming import MAYBE_END, SentenceEnd


@dataclass(frozen=True)
class ReplyBudget:
    """Most sentences and words a reply may have (0: no limit)."""

    sentences: int = 3
    words: int = 60
    language: str = "en"

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> ReplyBudget:
        return cls(sentences=settings.reply_sentences, words=settings.reply_words)


class BudgetGate:
    """Push filter: `feed(delta)` and `finish(whole)` return the deltas to show and speak."""

    def __init__(self, budget: ReplyBudget) -> None:
        self.budget = budget
        self.done = False
        self.trimmed = False  # some of the model's text was not passed on
        self.sentences = 0
        self.words = 0
        self._character = ""
        self._current = ""  # the sentence being written, from just after the last whole one
        self._released = 0  # characters of it already passed on (the first sentence only)

    def feed(self, delta: TextDelta) -> list[TextDelta]:
        if self.done:
            self.trimmed = self.trimmed or bool(delta.text.strip())
            return []
        out: list[TextDelta] = []
        if delta.character != self._character:
            sentence, self._current = self._current, ""
            if sentence.strip():
                out += self._accept(sentence)  # a change of speaker ends the sentence
            self._character, self._current, self._released = delta.character, "", 0
            if self.done:
                self.trimmed = self.trimmed or bool(delta.text.strip())
                return out
        self._current += delta.text
        out += self._complete()
        if not self.done:
            out += self._in_progress()
        return out

    def finish(self, whole: bool) -> list[TextDelta]:
        """The stream ended: `whole` when the model finished, False when it was cut or abandoned."""
        out: list[TextDelta] = []
        sentence, self._current = self._current, ""
        if not self.done and sentence.strip():
            if whole:
                out = self._accept(sentence)
            else:
                self.trimmed = self.trimmed or bool(sentence[self._released:].strip())
        self.done = True
        self._current, self._released = "", 0
        return out

    def _complete(self) -> list[TextDelta]:
        """Whole sentences in the text so far, each kept or (past the budget) dropped."""
        if not MAYBE_END.search(self._current):
            return []
        out: list[TextDelta] = []
        text, start = self._current, 0
        for end in sentence_ends(text, self.budget.language):
            if end <= self._released:
                continue  # the segmenter moved a boundary into text already passed on: not a boundary
            sentence, self._current = text[start:end], text[end:]
            start = end
            out += self._accept(sentence)
            if self.done:
                break
        return out

    def _in_progress(self) -> list[TextDelta]:
        """Close the reply if the sentence being written breaks the word budget; pass on the first one."""
        words = len(self._current.split())
        if self.budget.words and self.words + words > self.budget.words:
            self._stop(self._current[self._released:])
            return []
        if self.sentences:
            return []
        upto = len(self._current.rstrip())
        if upto <= self._released:
            return []
        piece, self._released = self._current[self._released:upto], upto
        return [TextDelta(piece, self._character)]

    def _accept(self, sentence: str) -> list[TextDelta]:
        words = len(sentence.split())
        limit_s, limit_w = self.budget.sentences, self.budget.words
        fits = not self.sentences or (
            (not limit_s or self.sentences < limit_s) and (not limit_w or self.words + words <= limit_w)
        )
        if not fits:
            self._stop(sentence[self._released:] + self._current)
            return []
        rest, self._released = sentence[self._released:], 0
        self.sentences += 1
        self.words += words
        if (limit_s and self.sentences >= limit_s) or (limit_w and self.words >= limit_w):
            self._stop(self._current)
        return [SentenceEnd(rest, self._character)] if rest else []

    def _stop(self, dropped: str) -> None:
        self.done = True
        self.trimmed = self.trimmed or bool(dropped.strip())
        self._current, self._released = "", 0


def sentence_ends(text: str, language: str = "en") -> list[int]:
    """Offsets just past each whole sentence of `text` and the whitespace after it (the last, unfinished
    piece has none). Found by position, so they hold even where the segmenter alters a piece's text."""
    pieces = segment(text, language)
    ends: list[int] = []
    cursor = 0
    for piece in pieces[:-1]:
        core = piece.strip()
        if not core:
            continue
        found = text.find(core, cursor)
        if found < 0:
            break
        cursor = found + len(core)
        while cursor < len(text) and text[cursor].isspace():
            cursor += 1
        ends.append(cursor)
    return ends
