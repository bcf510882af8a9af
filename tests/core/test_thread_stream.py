"""The bridge from a blocking producer thread (llama.cpp, Piper, espeak-ng) to the event loop is
bounded: a fast producer waits for a slow consumer instead of piling up memory."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from lexperience.backends._local import Emit, thread_stream


async def test_a_fast_producer_waits_for_a_slow_consumer() -> None:
    produced = 0
    lock = threading.Lock()

    def produce(emit: Emit[int], stop: threading.Event) -> None:
        nonlocal produced
        for i in range(200):
            if stop.is_set():
                return
            emit(i)
            with lock:
                produced += 1

    seen: list[int] = []
    most_ahead = 0
    async with contextlib.aclosing(thread_stream(produce, name="t", maxsize=4)) as items:
        async for item in items:
            seen.append(item)
            await asyncio.sleep(0.001)
            with lock:
                most_ahead = max(most_ahead, produced - len(seen))
    assert seen == list(range(200))
    assert most_ahead <= 4 + 1  # the channel, plus the one item being handed over


async def test_closing_early_stops_the_producer_thread() -> None:
    ended = threading.Event()
    emitted = 0

    def produce(emit: Emit[int], stop: threading.Event) -> None:
        nonlocal emitted
        try:
            while not stop.is_set():
                emit(emitted)
                emitted += 1
        finally:
            ended.set()

    async with contextlib.aclosing(thread_stream(produce, name="t", maxsize=2)) as items:
        async for item in items:
            if item == 3:
                break
    assert await asyncio.to_thread(ended.wait, 5)
    assert emitted <= 3 + 2 + 2  # it stopped right after the consumer left


async def test_a_producer_error_reaches_the_consumer() -> None:
    def produce(emit: Emit[int], stop: threading.Event) -> None:
        emit(1)
        raise OSError("device lost")

    got: list[int] = []
    with pytest.raises(OSError, match="device lost"):
        async for item in thread_stream(produce, name="t"):
            got.append(item)
    assert got == [1]
