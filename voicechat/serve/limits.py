"""What one server gives its clients at most, and the small counters that hold it to that.

Each limit is a `voicechat serve` option; a client that reaches one gets one `error` line and the log one
line (at most one per limit every LOG_EVERY seconds, with how many more were refused meanwhile).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from voicechat.errors import VoicechatError

log = logging.getLogger("voicechat.serve")
LOG_EVERY = 10.0  # seconds between two log lines about the same limit


@dataclass(frozen=True)
class ServeLimits:
    connections: int = 16  # WebSocket conversations at once
    recognizers: int = 4  # speech recognizers at once (about 230 MiB each)
    queued_bytes: int = 8 * 1024 * 1024  # reply audio and events waiting for one slow client (~3 min of audio)
    turn_rate: float = 1.0  # typed turns per second per connection, sustained
    turn_burst: int = 3  # typed turns a connection may send at once before turn_rate applies
    sockets: int = 64  # TCP connections at once, WebSocket or HTTP, finished or not
    header_timeout: float = 10.0  # seconds a client has to send a request's headers
    send_buffer: int = 256 * 1024  # the kernel's send buffer per socket (loopback autotunes it to megabytes)


class LimitReached(VoicechatError):
    """A limit a client reached: its message is fit to send to that client."""


@dataclass
class TurnBucket:
    """A token bucket: `burst` turns at once, refilled at `rate` per second."""

    rate: float
    burst: int
    _tokens: float = -1.0
    _at: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        if self._tokens < 0:
            self._tokens = float(self.burst)
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass
class Slots:
    """A count of something held (recognizers, connections) against its limit."""

    limit: int
    held: int = 0

    def take(self) -> bool:
        if self.held >= self.limit:
            return False
        self.held += 1
        return True

    def give(self) -> None:
        self.held = max(0, self.held - 1)


@dataclass
class Throttled:
    """Logs a line about a limit at most once every LOG_EVERY seconds, saying how many it left unsaid."""

    every: float = LOG_EVERY
    _last: dict[str, float] = field(default_factory=dict)
    _unsaid: dict[str, int] = field(default_factory=dict)

    def warn(self, kind: str, line: str, *args: object, exc_info: bool = False) -> bool:
        """True when the line was logged."""
        now = time.monotonic()
        if now - self._last.get(kind, -self.every) < self.every:
            self._unsaid[kind] = self._unsaid.get(kind, 0) + 1
            return False
        unsaid = self._unsaid.pop(kind, 0)
        self._last[kind] = now
        log.warning(line + (f" (and {unsaid} more since the last such line)" if unsaid else ""), *args,
                    exc_info=exc_info)
        return True


LIMIT_LOG = Throttled()  # one per process: a flood from many connections still makes few lines
