"""The few asyncio helpers the whole package uses (in the spirit of livekit-agents' ``utils.aio``).

* :class:`Channel`: a bounded async channel with an explicit end (:meth:`Channel.close`). It is the
  one end-of-stream convention between stages: no sentinels, no ``None`` markers. Senders wait
  while it is full (back-pressure); receivers get ``StopAsyncIteration`` once it is closed and
  drained. :meth:`Channel.send_threadsafe` lets a worker thread feed it with back-pressure too.
* :func:`cancel_and_wait`: cancel tasks and wait until they have really finished. It never
  swallows the caller's own cancellation and never leaves a task running.
* :func:`gather_or_cancel`: run awaitables concurrently; on the first failure cancel the others,
  wait for them, and raise that failure as it is (no ``ExceptionGroup``; also on Python 3.10).
* :class:`CrossLoopLock` and :class:`CrossLoopEvent`: a FIFO mutex and an event that coroutines on
  *any* event loop, in any thread, can await (one conversation is driven from its own background
  loop by ``reply()`` and from the caller's loop by ``areply()``; it runs one turn at a time).
* :func:`wait_for`: await with a deadline. A missed deadline raises :class:`DeadlineExceeded`,
  which is *not* a ``TimeoutError``: a backend's own ``TimeoutError`` stays distinguishable from
  the pipeline's stage timeout (on 3.11+ ``asyncio.TimeoutError is TimeoutError``). The caller's
  cancellation is never lost (Python 3.10's ``asyncio.wait_for`` can drop it).

Everything here is private to lexperience.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, Generic, TypeVar, cast

__all__ = [
    "Channel",
    "ChannelClosed",
    "CrossLoopEvent",
    "CrossLoopLock",
    "DeadlineExceeded",
    "cancel_and_wait",
    "gather_or_cancel",
    "wait_for",
]

T = TypeVar("T")


class ChannelClosed(Exception):
    """Raised by :meth:`Channel.send` on a closed channel and by :meth:`Channel.recv` once a closed
    channel is drained."""


class DeadlineExceeded(Exception):
    """:func:`wait_for` ran out of time (deliberately not a ``TimeoutError``)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no result within {timeout:g} s")
        self.timeout = timeout


class Channel(Generic[T]):
    """A bounded FIFO between coroutines (and threads) with an explicit end.

    Args:
        maxsize: how many items it holds before :meth:`send` waits (at least 1).
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a Channel must be bounded: maxsize >= 1")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._closed = False
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Channel({len(self._items)}/{self.maxsize}, {state})"

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    # -- waking -------------------------------------------------------------------------------
    @staticmethod
    def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @staticmethod
    def _wake_all(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def _park(self, waiters: deque[asyncio.Future[None]], other: deque[Any]) -> None:
        waiter = self._bind().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()
            with _suppress_value_error():
                waiters.remove(waiter)
            # we were woken but will not act on it: pass the turn on
            if waiters is self._putters and not self.full():
                self._wake_one(self._putters)
            elif waiters is self._getters and self._items:
                self._wake_one(self._getters)
            raise

    # -- sending ------------------------------------------------------------------------------
    async def send(self, item: T) -> None:
        """Append ``item``, waiting while the channel is full.

        ``send`` always yields to the event loop once (a checkpoint), even when there is room: a
        producer that makes items without awaiting anything else (frames from a fast avatar)
        must not hold the loop for a whole burst.

        Raises:
            ChannelClosed: the channel is (or got) closed; ``item`` was not added.
        """
        while self.full() and not self._closed:
            await self._park(self._putters, self._getters)
        self.send_nowait(item)
        await asyncio.sleep(0)

    def send_nowait(self, item: T) -> None:
        """Append ``item`` now. Raises ``asyncio.QueueFull`` when full, ChannelClosed when closed."""
        if self._closed:
            raise ChannelClosed("the channel is closed")
        if self.full():
            raise asyncio.QueueFull
        self._items.append(item)
        self._wake_one(self._getters)

    def send_threadsafe(
        self,
        item: T,
        loop: asyncio.AbstractEventLoop,
        *,
        stop: threading.Event | None = None,
        poll: float = 0.1,
    ) -> bool:
        """From a worker thread: append ``item`` on ``loop``, blocking while the channel is full.

        Returns ``False`` (the item is dropped) when the channel is closed, ``stop`` is set, or the
        loop is gone, so a producer thread can simply stop producing. Never call it from the
        loop's own thread (it would wait on itself): that raises ``RuntimeError``.
        """
        if self._closed or (stop is not None and stop.is_set()):
            return False
        if _running_loop() is loop:
            raise RuntimeError("send_threadsafe() was called from the channel's own event loop")
        try:
            future = asyncio.run_coroutine_threadsafe(self.send(item), loop)
        except RuntimeError:  # the loop is closed
            return False
        while True:
            try:
                future.result(timeout=poll)
                return True
            except concurrent.futures.TimeoutError:
                if (stop is not None and stop.is_set()) or loop.is_closed():
                    future.cancel()
                    return False
            except (ChannelClosed, concurrent.futures.CancelledError):
                return False

    def close(self) -> None:
        """End the stream: receivers drain what is queued, then stop; waiting senders fail.

        Idempotent and non-blocking; call it from the loop that uses the channel (use
        ``loop.call_soon_threadsafe(channel.close)`` from a thread).
        """
        if self._closed:
            return
        self._closed = True
        self._wake_all(self._getters)
        self._wake_all(self._putters)

    # -- receiving ----------------------------------------------------------------------------
    async def recv(self) -> T:
        """The next item, waiting for one. Raises :class:`ChannelClosed` once closed and empty."""
        while not self._items:
            if self._closed:
                raise ChannelClosed("the channel is closed")
            await self._park(self._getters, self._putters)
        return self.recv_nowait()

    def recv_nowait(self) -> T:
        """The next item now. Raises ``asyncio.QueueEmpty``, or ChannelClosed if closed and empty."""
        if not self._items:
            if self._closed:
                raise ChannelClosed("the channel is closed")
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        self._wake_one(self._putters)
        return item

    def drain(self) -> list[T]:
        """Remove and return everything queued now (e.g. to drop a stale backlog)."""
        items = list(self._items)
        self._items.clear()
        self._wake_all(self._putters)
        return items

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.recv()
        except ChannelClosed:
            raise StopAsyncIteration from None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _suppress_value_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        return exc_type is ValueError


def _call_in(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> bool:
    """Schedule ``fn(*args)`` on ``loop`` (from any thread); False if that loop is closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # closed
        return False
    return True


class CrossLoopLock:
    """A FIFO mutex for coroutines on any event loop and in any thread.

    ``asyncio.Lock`` belongs to one loop; this one hands ownership from the releasing side to the
    oldest waiter on whichever loop it waits. A waiter cancelled while the lock was being handed
    to it passes it on, so the lock is never lost.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locked = False
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    def __repr__(self) -> str:
        return (
            f"CrossLoopLock({'locked' if self._locked else 'free'}, {len(self._waiters)} waiting)"
        )

    def locked(self) -> bool:
        return self._locked

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now (no waiting); whether it was taken."""
        with self._mutex:
            if self._locked:
                return False
            self._locked = True
            return True

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._locked:
                self._locked = True
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except BaseException:
            with self._mutex:
                owned = waiter.done() and not waiter.cancelled()
                if not owned:
                    with _suppress_value_error():
                        self._waiters.remove((loop, waiter))
            if owned:  # it was handed to us as we were cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Release the lock (from any thread); the oldest waiter gets it next."""
        with self._mutex:
            if not self._locked:
                raise RuntimeError("CrossLoopLock.release() of an unlocked lock")
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                if not waiter.done() and _call_in(loop, self._grant, waiter):
                    return  # still locked: ownership moves to that waiter
            self._locked = False

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # cancelled before the hand-over arrived
            self.release()
        else:
            waiter.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class CrossLoopEvent:
    """A one-shot flag that coroutines on any loop can await, set from any thread."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._set = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._mutex:
            if self._set:
                return
            self._set = True
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            _call_in(loop, _resolve, waiter)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if self._set:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        finally:
            with self._mutex, _suppress_value_error():
                self._waiters.remove((loop, waiter))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def cancel_and_wait(*futures: asyncio.Future[Any]) -> None:
    """Cancel ``futures`` and return once every one of them has finished.

    Their own errors are retrieved and dropped (the caller decides what matters). If the caller is
    cancelled while waiting, it keeps waiting until they are done, then re-raises that
    cancellation: nothing is ever left running behind a cancelled caller.
    """
    pending = [f for f in futures if not f.done()]
    for future in pending:
        future.cancel()
    interrupted = False
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            interrupted = True
        pending = [f for f in pending if not f.done()]
    for future in futures:
        if not future.cancelled():
            future.exception()  # mark it retrieved: no "exception was never retrieved" noise
    if interrupted:
        raise asyncio.CancelledError


async def gather_or_cancel(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``aws`` concurrently and return their results in order.

    On the first failure the others are cancelled and awaited, then the failure is raised as it is;
    when several failed, the earliest in ``aws`` order wins (an upstream stage's error over its
    knock-on effects). A cancellation of the caller cancels and awaits them all.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await cancel_and_wait(*tasks)
        raise
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    if failed:
        await cancel_and_wait(*tasks)
        raise cast(BaseException, failed[0].exception())
    if any(t.cancelled() for t in tasks):  # a child was cancelled from outside
        await cancel_and_wait(*tasks)
        raise asyncio.CancelledError
    return [t.result() for t in tasks]


if sys.version_info >= (3, 11):

    async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
        """Await ``awaitable``; raise :class:`DeadlineExceeded` after ``timeout`` seconds."""
        if timeout is None:
            return await awaitable
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():
                raise DeadlineExceeded(timeout) from None
            raise  # the awaitable's own TimeoutError

else:  # pragma: no cover - Python 3.10

    async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
        """Await ``awaitable``; raise :class:`DeadlineExceeded` after ``timeout`` seconds."""
        if timeout is None:
            return await awaitable
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            await cancel_and_wait(task)
            raise
        if not done:
            await cancel_and_wait(task)
            raise DeadlineExceeded(timeout)
        return task.result()
