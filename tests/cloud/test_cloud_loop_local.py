"""``LoopLocal``: one client per event loop, never leaked: reused on its loop, closed on its own
loop when replaced or closed, released when its loop is gone, and ``aclose()`` idempotent and
safe from any loop."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
import weakref
from collections.abc import Iterator

import pytest

from lexperience.backends._cloud import LoopLocal

pytestmark = pytest.mark.cloud


class Client:
    """A stand-in SDK client that records where it was built and closed."""

    def __init__(self) -> None:
        self.built_on = asyncio.get_running_loop()
        self.closed_on: list[asyncio.AbstractEventLoop] = []
        self.closed = threading.Event()


async def close(client: Client) -> None:
    await asyncio.sleep(0)  # a real close awaits its transports
    client.closed_on.append(asyncio.get_running_loop())
    client.closed.set()


class LoopThread:
    """An event loop running in a thread of its own (like Conversation.reply()'s)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def other() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


async def get(local: LoopLocal[Client]) -> Client:
    return local.get()


async def test_one_client_per_loop_reused_then_closed_on_its_loop() -> None:
    local: LoopLocal[Client] = LoopLocal(Client, close)
    first = local.get()
    assert local.get() is first  # reused on the same loop
    await local.aclose()
    assert first.closed_on == [asyncio.get_running_loop()]
    await local.aclose()  # twice: nothing more happens
    assert len(first.closed_on) == 1
    again = local.get()  # usable after aclose: a fresh client
    assert again is not first
    await local.aclose()


async def test_a_client_replaced_on_a_new_loop_is_closed_on_its_own_running_loop(
    other: LoopThread,
) -> None:
    local: LoopLocal[Client] = LoopLocal(Client, close)
    old = other.run(get(local))
    assert isinstance(old, Client) and old.built_on is other.loop
    new = local.get()  # this loop takes over
    assert new is not old and new.built_on is asyncio.get_running_loop()
    await asyncio.wait_for(asyncio.to_thread(old.closed.wait, 10), 10)
    assert old.closed_on == [other.loop]  # closed there, not here
    await local.aclose()
    assert new.closed_on == [asyncio.get_running_loop()]


async def test_aclose_from_another_loop_closes_on_the_client_loop(other: LoopThread) -> None:
    local: LoopLocal[Client] = LoopLocal(Client, close)
    client = other.run(get(local))
    assert isinstance(client, Client)
    await local.aclose()  # from this loop; it waits until the other loop has closed it
    assert client.closed_on == [other.loop]
    await local.aclose()
    assert client.closed_on == [other.loop]


def test_a_loop_run_by_asyncio_run_closes_its_client_before_it_ends() -> None:
    local: LoopLocal[Client] = LoopLocal(Client, close)
    seen: list[Client] = []

    async def use() -> None:
        seen.append(local.get())

    asyncio.run(use())  # no aclose(): the loop's async-generator shutdown closes it
    (client,) = seen
    assert client.closed_on == [client.built_on]


def test_a_client_of_a_closed_loop_is_released_without_leaking() -> None:
    local: LoopLocal[Client] = LoopLocal(Client, close)
    loop = asyncio.new_event_loop()
    client = loop.run_until_complete(get(local))
    loop.close()  # closed without shutting down its async generators: nothing can run there
    gone = weakref.ref(client)
    del client
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        async def take_over() -> Client:
            return local.get()

        replacement = asyncio.run(take_over())
        gc.collect()
    assert gone() is None  # no reference kept
    assert replacement.closed_on == [replacement.built_on]
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_aclose_does_not_wait_for_a_client_being_built_in_another_thread(
    other: LoopThread,
) -> None:
    building = threading.Event()
    release = threading.Event()

    def slow_factory() -> Client:
        if threading.current_thread() is other.thread:
            building.set()
            release.wait(10)
        return Client()

    local: LoopLocal[Client] = LoopLocal(slow_factory, close)
    mine = local.get()
    pending = asyncio.run_coroutine_threadsafe(get(local), other.loop)
    await asyncio.to_thread(building.wait, 10)
    heartbeat = 0

    async def beat() -> None:
        nonlocal heartbeat
        while True:
            heartbeat += 1
            await asyncio.sleep(0)

    beater = asyncio.ensure_future(beat())
    await asyncio.wait_for(local.aclose(), 5)  # returns while the other thread still builds
    assert mine.closed_on == [asyncio.get_running_loop()] and heartbeat > 0
    beater.cancel()
    release.set()
    theirs = await asyncio.wrap_future(pending)
    assert isinstance(theirs, Client)
    other.run(local.aclose())
    assert theirs.closed_on == [other.loop]
