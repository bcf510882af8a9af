"""Run coroutines from synchronous code, also inside a running event loop (Jupyter).

A conversation's sync methods submit their coroutine to one long-lived background event loop
thread. Calling ``asyncio.run`` per call instead would break backends that hold loop-bound
clients (HTTP connection pools), and it cannot run at all inside a notebook's running loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["Portal"]


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
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
