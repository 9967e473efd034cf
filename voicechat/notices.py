"""One-line facts for the user from code that must not print (model resolution, downloads): lower layers
call `notify`, and the program in charge (the CLI, a server) decides where the lines go."""

from __future__ import annotations

import logging
from collections.abc import Callable

_log = logging.getLogger("voicechat.notices")
_sink: Callable[[str], None] = _log.warning


def notify(text: str) -> None:
    _sink(text)


def send_to(sink: Callable[[str], None]) -> None:
    """Where notices go from now on (the CLI: stderr; the default: the log)."""
    global _sink
    _sink = sink
