"""One SDK client per event loop, closed on the loop it belongs to (private to the backends).

HTTP connection pools belong to the loop that opened them, and :meth:`Conversation.reply` runs turns
on its own background loop, so a cloud backend builds its client lazily for the loop it is used
on (:meth:`LoopLocal.get`). A client is never leaked:

* used from another loop, the backend builds a new client and retires the old one: closed on its
  own loop when that loop still runs (another thread; thread-safe scheduling, awaited by
  :meth:`LoopLocal.aclose`), or released when the loop is gone (nothing left to run it on);
* a loop that ends through ``asyncio.run`` or an ``asyncio.Runner`` closes its client itself
  before it closes: each client is tied to a small async generator registered with its loop, and
  such loops finalize their async generators (``loop.shutdown_asyncgens()``) first;
* :meth:`LoopLocal.aclose` closes the current client, waits for retired ones, and is idempotent.

The threading lock only guards swapping references (no I/O, no factory call, no await under it),
so :meth:`LoopLocal.aclose` never blocks its loop behind another thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["LoopLocal"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long :meth:`LoopLocal.aclose` waits for another loop to close a retired client.
_RETIRE_WAIT = 5.0


def _step(awaitable: Awaitable[object]) -> None:
    """Run an awaitable that does not suspend (an async generator step) to its end, now."""
    step = awaitable.__await__()
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()  # it tried to suspend: nothing to wait for here (never happens by design)


class _Entry(Generic[T]):
    """One client and the loop it belongs to."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        value: T,
        closer: Callable[[T], Awaitable[object]] | None,
    ) -> None:
        self.loop = loop
        self.value: T | None = value
        self.closed = False
        self._closer = closer
        self._keeper = self._keep()
        # The first step registers the generator with the running loop (its "firstiter" hook), so
        # the loop finalizes it, and closes the client, before it closes.
        _step(self._keeper.asend(None))

    def get(self) -> T:
        assert self.value is not None
        return self.value

    async def _keep(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self._close()

    async def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        value, self.value = self.value, None
        if value is None or self._closer is None:
            return
        try:
            await self._closer(value)
        except Exception as exc:  # closing is best effort; the error says nothing secret
            log.debug("closing a %s failed (%s)", type(value).__name__, type(exc).__name__)
        else:
            log.debug("closed a %s", type(value).__name__)

    async def aclose(self) -> None:
        """Close the client (call on :attr:`loop`)."""
        await self._keeper.aclose()

    def release(self) -> None:
        """Drop the client of a loop that can no longer run anything (closed)."""
        self.closed = True
        value, self.value = self.value, None
        _step(self._keeper.aclose())  # its ``finally`` finds it closed and awaits nothing
        if value is not None:
            log.debug("released a %s built on a closed event loop", type(value).__name__)


class LoopLocal(Generic[T]):
    """Builds an SDK client lazily, one per running event loop, and closes it on that loop.

    Args:
        factory: builds a client (called on the loop that will use it).
        closer: closes a client (awaited on the loop that built it).
    """

    def __init__(
        self,
        factory: Callable[[], T],
        closer: Callable[[T], Awaitable[object]] | None = None,
    ) -> None:
        self._factory = factory
        self._closer = closer
        self._entry: _Entry[T] | None = None
        self._retiring: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LoopLocal({'open' if self._entry is not None else 'idle'})"

    def get(self) -> T:
        """The client of the running loop, built on first use (the previous loop's is retired)."""
        loop = asyncio.get_running_loop()
        entry = self._entry
        if entry is not None and entry.loop is loop and not entry.closed:
            return entry.get()
        new = _Entry(loop, self._factory(), self._closer)
        with self._lock:
            old, self._entry = self._entry, new
        if old is not None and not old.closed:
            self._retire(old)
        return new.get()

    def _retire(self, entry: _Entry[T]) -> None:
        """Close ``entry`` on its own loop if it still runs, else release it."""
        loop = entry.loop
        if loop.is_closed():
            entry.release()
            return
        if not loop.is_running():
            # A stopped loop may run again: drop our reference and let its own async-generator
            # finalizer close the client there (or the GC release it if the loop is closed).
            log.debug("left a client to its stopped event loop")
            return
        try:
            future = asyncio.run_coroutine_threadsafe(entry.aclose(), loop)
        except RuntimeError:  # closed in between
            entry.release()
            return
        with self._lock:
            self._retiring.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._retiring.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.debug("closing a retired client failed (%s)", type(future.exception()).__name__)

    async def aclose(self) -> None:
        """Close the client (on its own loop) and wait for retired ones; idempotent."""
        with self._lock:
            entry, self._entry = self._entry, None
        if entry is not None:
            if entry.loop is asyncio.get_running_loop():
                await entry.aclose()
            else:
                self._retire(entry)
        with self._lock:
            retiring = list(self._retiring)
        if retiring:
            await asyncio.wait([asyncio.wrap_future(f) for f in retiring], timeout=_RETIRE_WAIT)
