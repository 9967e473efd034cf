"""Bridges between blocking model code and the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
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


async def read_ahead(source: AsyncIterator[T], limit: int = 0) -> AsyncGenerator[T, None]:
    """The items of `source`, which a task of its own runs ahead of the consumer by up to `limit` items
    (0: no bound). The source's error is raised to the consumer as soon as it is reached; leaving early
    (a barge-in, an error) cancels the source at once."""
    queue: asyncio.Queue[tuple[bool, object]] = asyncio.Queue(maxsize=limit)

    async def produce() -> None:
        try:
            async for item in source:
                await queue.put((True, item))
        except Exception as error:  # handed to the consumer, raised there
            await queue.put((False, error))
            return
        await queue.put((False, _DONE))

    producer = asyncio.create_task(produce())
    try:
        while True:
            more, item = await queue.get()
            if more:
                yield item  # type: ignore[misc]
            elif item is _DONE:
                return
            else:
                raise item  # type: ignore[misc]
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
