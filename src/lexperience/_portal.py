"""Run coroutines from synchronous code, also inside a running event loop (Jupyter).

A conversation's sync methods submit their coroutine to one long-lived background event loop
thread. Calling ``asyncio.run`` per call instead would break backends that hold loop-bound
clients (HTTP connection pools), and it cannot run at all inside a notebook's running loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from ._aio import cancel_and_wait

T = TypeVar("T")

__all__ = ["Portal"]

log = logging.getLogger(__name__)

#: Seconds :meth:`Portal.close` waits for the loop's tasks to finish after cancelling them.
_SHUTDOWN_TIMEOUT = 10.0


class Portal:
    """A daemon thread running an event loop; :meth:`call` runs a coroutine there and waits."""

    def __init__(self, name: str = "lexperience-sync") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name=self._name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the portal loop and return a concurrent future."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal loop and block until it returns (Ctrl-C cancels it)."""
        fut = self.submit(coro)
        try:
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()
            raise

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def in_portal_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def close(self) -> None:
        """Cancel the loop's tasks and wait for them, close its async generators, then stop and
        close the loop (from any thread but the portal's own)."""
        if self.in_portal_thread():
            raise RuntimeError("Portal.close() was called from the portal's own thread")
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread.is_alive() and not loop.is_closed():
            done = asyncio.run_coroutine_threadsafe(_shutdown(), loop)
            try:
                done.result(timeout=_SHUTDOWN_TIMEOUT)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                log.warning("the portal's tasks did not finish within %.0f s", _SHUTDOWN_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()


async def _shutdown() -> None:
    """Cancel every other task of the running loop and wait until they have ended."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    await cancel_and_wait(*tasks)
    await asyncio.get_running_loop().shutdown_asyncgens()
