"""Bridges between blocking model code and the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(make_items: Callable[[], Iterable[T]]) -> AsyncIterator[T]:
    """Run a blocking generator in a worker thread and yield its items as they come.

    The thread stops at its next item once the consumer goes away (cancelled or closed early), so
    barge-in never waits for the rest of a synthesis.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def post(item: object) -> bool:
        """Hand an item to the loop; False once nobody is listening (consumer gone or loop closed)."""
        if stop.is_set():
            return False
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop has closed
            return False
        return True

    def produce() -> None:
        try:
            for item in make_items():
                if not post(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            post(error)
        finally:
            post(_DONE)

    worker = threading.Thread(target=produce, name="voicechat-worker", daemon=True)
    worker.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
