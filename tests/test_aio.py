"""The thread bridge under blocking model code: order, errors, and stopping when the consumer leaves."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from voicechat.aio import iterate_in_thread


def test_items_arrive_in_order() -> None:
    async def collect() -> list[int]:
        return [item async for item in iterate_in_thread(lambda: iter(range(50)))]

    assert asyncio.run(collect()) == list(range(50))


def test_errors_in_the_thread_reach_the_consumer() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("model failed")

    async def collect() -> list[int]:
        return [item async for item in iterate_in_thread(broken)]

    with pytest.raises(ValueError, match="model failed"):
        asyncio.run(collect())


def test_worker_stops_soon_after_the_consumer_leaves() -> None:
    produced: list[int] = []
    finished = threading.Event()

    def slow() -> Iterator[int]:
        try:
            for n in range(1000):
                time.sleep(0.01)
                produced.append(n)
                yield n
        finally:
            finished.set()

    async def take_three() -> None:
        stream = iterate_in_thread(slow)
        async for item in stream:
            if item == 2:
                break
        await stream.aclose()

    asyncio.run(take_three())
    assert finished.wait(2.0), "the worker kept going after the consumer left"
    assert len(produced) < 20
