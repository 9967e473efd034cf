"""Barge-in on open speakers: voice heard while a reply plays may be what the canceller left of its echo.

A voice louder than the reply's echo could be cuts the reply at once. Otherwise the reply is held at once:
playback pauses where it is, so the user hears it give way and the microphone hears the user without the
reply's echo. The reply is cut when the words heard (live or final) are not its own; when they are its
own, or when the voice stops and the recognizer has nothing coming, it plays on from where it paused.
With headphones there is no echo, and voice cuts the reply at once.

A sound nearly as loud as the reply's whole echo pauses the reply from the microphone's own thread
(`pause_at_once`), before the event loop, busy with speech and transcripts, has its turn; the loop then
takes the pause over as a hold, or gives the volume back when no reply plays any more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from voicechat.live.echo import EchoGuard, words_of

log = logging.getLogger("voicechat.barge_in")

HELD = 0.0  # the gain that pauses a reply (SpeakerSink.duck holds what was not heard)
QUIET_RELEASE = 0.8  # seconds after the voice's last voiced frame with no words before the reply plays on
# ...once the recognizer is not recording either: what it is recording may be the user's words, still to come
RESUME_GRACE = 0.5  # seconds after a reply plays on in which a voice's onset does not hold it again: the
# canceller takes that long to catch the echo of a reply that paused (a louder-than-echo voice still cuts)
HOLD_LIMIT = 8.0  # seconds a reply is held at most while its words are awaited (a slow CPU needs 5)
MIN_WORDS = 2  # a live transcript this long is judged (one word is too often a hallucinated "Okay.")
# ...unless the one word is how people cut in: these stop the reply at once when the reply did not say them
CUT_IN_WORDS = frozenset({"stop", "wait", "hold", "hey", "sorry", "excuse", "pause", "quiet", "enough", "shh"})


class BargeInCheck:
    def __init__(self, guard: EchoGuard, duck: Callable[[float], None], quiet_release: float = QUIET_RELEASE,
                 min_words: int = MIN_WORDS, louder_than_echo: Callable[[], bool] = lambda: False,
                 hold_limit: float = HOLD_LIMIT, recognizing: Callable[[], bool] = lambda: False,
                 sound_over_echo: Callable[[], bool] = lambda: False) -> None:
        self.guard, self._duck, self.min_words = guard, duck, min_words
        self.recognizing = recognizing  # the recognizer is recording: its words may yet come
        self.sound_over_echo = sound_over_echo  # the canceller's latest block was nearly as loud as the whole echo
        self.quiet_release, self.hold_limit = quiet_release, hold_limit
        self.louder_than_echo = louder_than_echo  # the canceller heard a sound no echo could make
        self._expiry: asyncio.TimerHandle | None = None
        self._held_at = self._voice_at = 0.0
        self._held = False  # the sink plays at HELD: only clear() gives the reply its volume back
        self._early = False  # the microphone's thread paused the reply; the loop has not taken it over yet
        self._resumed_at = -RESUME_GRACE

    @property
    def pending(self) -> bool:
        return self._expiry is not None

    def started(self) -> bool:
        """Voice began while a reply plays: True when it is louder than the reply's echo could be (cut the
        reply now), else the reply is held until its words are judged."""
        if self.louder_than_echo():
            log.info("voice over the reply, louder than its echo: cut")
            self.settle()
            return True
        self.hold("voice")
        return False

    def hold(self, what: str = "sound") -> None:
        """Pause the reply until the words of what began over it are judged (a sound may be a voice that a
        voice detector cannot call one yet: the /s/ of "stop")."""
        if self._expiry is None:
            if time.monotonic() - self._resumed_at < RESUME_GRACE:
                log.debug("%s just as the reply plays on again: taken as its echo", what)
                self.release_early()
                return
            log.info("%s over the reply: held until its words are heard", what)
            if not self._held and not self._early:
                self._duck(HELD)
            self._held, self._early, self._held_at = True, False, time.monotonic()
            self._arm(self.quiet_release)
        self.voiced()

    def pause_at_once(self) -> bool:
        """The microphone's thread heard a sound nearly as loud as the reply's whole echo: silence the reply now.
        True when it paused it; the event loop must then call hold() (a reply plays) or release_early()."""
        if self._held or self._early or self._expiry is not None:
            return False
        if time.monotonic() - self._resumed_at < RESUME_GRACE:
            return False  # the echo of a reply that just played on again (as in hold())
        self._early = True
        self._duck(HELD)
        log.debug("sound over the reply: paused from the microphone's thread")
        return True

    def release_early(self) -> None:
        """No reply plays any more to hold: a pause from the microphone's thread gives the volume back."""
        if self._early and not self._held:
            self._early = False
            self._duck(1.0)

    def voiced(self) -> None:
        """A voiced frame while the reply is held: keep holding while the voice goes on."""
        self._voice_at = time.monotonic()

    def heard_echo(self) -> None:
        """The final transcript of the voice was the reply's own words: it plays on."""
        if self._held:
            self.clear()

    def heard(self, text: str, played: Iterable[str]) -> bool:
        """Live words while pending: True when they are the user's (cut the reply). Echo words end the wait."""
        words = words_of(text)
        if len(words) < self.min_words and not (words and words[0] in CUT_IN_WORDS):
            return False
        echo = self.guard.is_echo(text, played)
        log.info("voice over the reply: %r is %s", text, "its echo" if echo else "the user's: cut")
        if echo:
            self.clear()
        else:
            self.settle()
        return not echo

    def _arm(self, delay: float) -> None:
        self._expiry = asyncio.get_running_loop().call_later(max(0.0, delay), self._expired)

    def _expired(self) -> None:
        now = time.monotonic()
        limit = self._held_at + self.hold_limit
        waiting = now < self._voice_at + self.quiet_release or self.recognizing()
        if waiting and now < limit:
            self._arm(min(max(self._voice_at + self.quiet_release - now, 0.1), limit - now))
            return
        self._expiry = None
        log.debug("no words over the reply")
        self.clear()

    def settle(self) -> None:
        """The reply is being cut: stop waiting, and leave it silent (the cut empties the sink; then clear)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def clear(self, cut: bool = False) -> None:
        """The reply plays on at full volume; `cut`: there is no reply any more, the next one plays so."""
        self.settle()
        self.release_early()
        if self._held:
            if not cut:
                log.info("the held reply plays on after %.2f s", time.monotonic() - self._held_at)
                self._resumed_at = time.monotonic()
            self._held = False
            self._duck(1.0)
