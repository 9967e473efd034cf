"""The thread bridge under blocking model code: order, errors, and stopping when the consumer leaves."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

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


def test_read_ahead_runs_at_most_its_limit_ahead_and_stops_when_the_consumer_leaves() -> None:
    from voicechat.aio import read_ahead

    made: list[int] = []
    stopped: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for number in range(100):
                made.append(number)
                yield number
        finally:
            stopped.append(True)

    async def consume() -> list[int]:
        taken = []
        async for number in read_ahead(numbers(), limit=3):
            taken.append(number)
            await asyncio.sleep(0.01)
            assert len(made) <= len(taken) + 4  # never more than the limit in hand (plus one being put)
            if number == 5:
                break
        await asyncio.sleep(0.05)
        return taken

    assert asyncio.run(consume()) == [0, 1, 2, 3, 4, 5]
    assert stopped == [True] and len(made) < 12


def test_read_ahead_raises_the_sources_error_to_the_consumer() -> None:
    from voicechat.aio import read_ahead

    async def failing() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("source broke")

    async def consume() -> list[int]:
        return [number async for number in read_ahead(failing(), limit=2)]

    with pytest.raises(RuntimeError, match="source broke"):
        asyncio.run(consume())
