"""The asyncio helpers every stage uses: channels, cancel-and-wait, gather, deadlines."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lexperience._aio import (
    Channel,
    ChannelClosed,
    DeadlineExceeded,
    cancel_and_wait,
    gather_or_cancel,
    wait_for,
)


async def test_channel_is_bounded_and_ends_explicitly() -> None:
    chan: Channel[int] = Channel(2)
    await chan.send(1)
    await chan.send(2)
    assert chan.full()
    blocked = asyncio.ensure_future(chan.send(3))
    await asyncio.sleep(0)
    assert not blocked.done()  # back-pressure: the sender waits for room
    assert await chan.recv() == 1
    await blocked
    chan.close()
    assert [x async for x in chan] == [2, 3]  # a closed channel drains, then ends
    with pytest.raises(ChannelClosed):
        await chan.send(4)
    with pytest.raises(ChannelClosed):
        await chan.recv()


async def test_close_wakes_waiting_senders_and_receivers() -> None:
    full: Channel[int] = Channel(1)
    full.send_nowait(0)
    sender = asyncio.ensure_future(full.send(1))
    empty: Channel[int] = Channel(1)
    receiver = asyncio.ensure_future(empty.recv())
    await asyncio.sleep(0)
    full.close()
    empty.close()
    with pytest.raises(ChannelClosed):
        await sender
    with pytest.raises(ChannelClosed):
        await receiver


async def test_a_cancelled_receiver_does_not_lose_an_item() -> None:
    chan: Channel[str] = Channel(4)
    first = asyncio.ensure_future(chan.recv())
    second = asyncio.ensure_future(chan.recv())
    await asyncio.sleep(0)
    chan.send_nowait("x")
    first.cancel()  # woken and cancelled in the same step: the item must go to the other one
    assert await second == "x"
    with pytest.raises(asyncio.CancelledError):
        await first


def test_channel_refuses_to_be_unbounded() -> None:
    with pytest.raises(ValueError):
        Channel(0)


async def test_send_threadsafe_blocks_the_thread_until_there_is_room() -> None:
    chan: Channel[int] = Channel(1)
    loop = asyncio.get_running_loop()
    sent: list[bool] = []

    def produce() -> None:
        for i in range(5):
            sent.append(chan.send_threadsafe(i, loop))
        loop.call_soon_threadsafe(chan.close)

    thread = threading.Thread(target=produce)
    thread.start()
    received = []
    async for item in chan:
        assert len(chan) <= 1
        received.append(item)
        await asyncio.sleep(0.01)
    await asyncio.to_thread(thread.join)
    assert received == [0, 1, 2, 3, 4]
    assert sent == [True] * 5


async def test_send_threadsafe_gives_up_when_stopped_or_closed() -> None:
    chan: Channel[int] = Channel(1)
    chan.send_nowait(0)
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    result: list[bool] = []
    thread = threading.Thread(
        target=lambda: result.append(chan.send_threadsafe(1, loop, stop=stop))
    )
    thread.start()
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.to_thread(thread.join, 5)
    assert result == [False]
    chan.close()
    assert chan.send_threadsafe(2, loop) is False  # closed: refused at once, even on the loop
    open_chan: Channel[int] = Channel(1)
    await open_chan.send(0)
    with pytest.raises(RuntimeError):
        open_chan.send_threadsafe(1, loop)  # from the loop's own thread it would deadlock


async def test_cancel_and_wait_awaits_even_when_the_caller_is_cancelled() -> None:
    finished = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.05)  # cleanup that takes a while
            finished.set()

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(cancel_and_wait(task))
    await asyncio.sleep(0.01)
    waiter.cancel()  # the caller is cancelled mid-wait...
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert finished.is_set()  # ...yet it returned only after the task had finished
    assert task.done()


async def test_gather_or_cancel_cancels_the_rest_on_failure() -> None:
    cancelled: list[str] = []

    async def slow(name: str) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return name

    async def boom() -> str:
        await asyncio.sleep(0.01)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await gather_or_cancel([slow("a"), boom(), slow("b")])
    assert sorted(cancelled) == ["a", "b"]  # and they had finished before the error came out


async def test_gather_or_cancel_returns_results_in_order() -> None:
    async def value(v: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return v

    assert await gather_or_cancel([value(1, 0.02), value(2, 0.0)]) == [1, 2]
    assert await gather_or_cancel([]) == []


async def test_gather_or_cancel_prefers_the_earliest_failure() -> None:
    async def fail(exc: Exception) -> None:
        raise exc

    with pytest.raises(ValueError):
        await gather_or_cancel([fail(ValueError("upstream")), fail(KeyError("downstream"))])


async def test_wait_for_tells_its_deadline_from_a_backend_timeout() -> None:
    with pytest.raises(DeadlineExceeded):
        await wait_for(asyncio.sleep(1), 0.01)

    async def own_timeout() -> None:
        raise TimeoutError("the backend's own socket timeout")

    with pytest.raises(TimeoutError) as info:
        await wait_for(own_timeout(), 5)
    assert not isinstance(info.value, DeadlineExceeded)
    assert await wait_for(asyncio.sleep(0, "ok"), None) == "ok"


async def test_wait_for_keeps_the_callers_cancellation() -> None:
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.ensure_future(wait_for(work(), 5))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
