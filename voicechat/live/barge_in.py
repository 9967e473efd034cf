"""Barge-in on open speakers: voice heard while a reply plays may be what the canceller left of its echo.

A voice louder than the reply's echo could be cuts the reply at once. Otherwise the reply is ducked at once
(the user hears it give way) and cut only when the live words are not the reply's own; when they are, or
when no words come, it comes back to full volume. With headphones there is no echo, and voice cuts the
reply at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from voicechat.live.echo import EchoGuard, words_of

log = logging.getLogger("voicechat.barge_in")

DUCKED = 0.25  # -12 dB: clearly giving way, still intelligible if it was only echo
CONFIRM_WINDOW = 2.5  # seconds of voice without words before the reply comes back to full volume
MIN_WORDS = 2  # a live transcript this long is judged (one word is too often a hallucinated "Okay.")
# ...unless the one word is how people cut in: these stop the reply at once when the reply did not say them
CUT_IN_WORDS = frozenset({"stop", "wait", "hold", "hey", "sorry", "excuse", "pause", "quiet", "enough", "shh"})


class BargeInCheck:
    def __init__(self, guard: EchoGuard, duck: Callable[[float], None], window: float = CONFIRM_WINDOW,
                 min_words: int = MIN_WORDS, louder_than_echo: Callable[[], bool] = lambda: False) -> None:
        self.guard, self._duck, self.window, self.min_words = guard, duck, window, min_words
        self.louder_than_echo = louder_than_echo  # the canceller heard a sound no echo could make
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> bool:
        return self._expiry is not None

    def started(self) -> bool:
        """Voice began while a reply plays: True when it is louder than the reply's echo could be (cut the
        reply now), else the reply is ducked until its words are judged."""
        if self.louder_than_echo():
            log.info("voice over the reply, louder than its echo: cut")
            self.clear()
            return True
        if self._expiry is None:
            log.info("voice over the reply: ducked until its words are heard")
            self._duck(DUCKED)
        else:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(self.window, self.clear)
        return False

    def heard(self, text: str, played: Iterable[str]) -> bool:
        """Live words while pending: True when they are the user's (cut the reply). Echo words end the wait."""
        words = words_of(text)
        if len(words) < self.min_words and not (words and words[0] in CUT_IN_WORDS):
            return False
        echo = self.guard.is_echo(text, played)
        log.info("voice over the reply: %r is %s", text, "its echo" if echo else "the user's: cut")
        self.clear()
        return not echo

    def clear(self) -> None:
        if self._expiry is not None:
            log.debug("the reply comes back to full volume")
            self._expiry.cancel()
            self._expiry = None
            self._duck(1.0)
