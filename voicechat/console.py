"""The two Rich consoles: messages on stderr (stdout may carry audio or transcripts), results on stdout."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def err() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@lru_cache(maxsize=1)
def out() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def fail(message: str) -> None:
    """One line on stderr for a failure; the caller picks the exit code."""
    err().print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
