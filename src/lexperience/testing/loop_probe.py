"""Find what blocks an event loop: :class:`LoopProbe` times every callback the loop runs.

A callback (one step of a task, a ``call_soon`` function) that runs long stalls every other
coroutine on the loop: audio playback stutters, a server stops answering. The probe measures
each step in *thread CPU time* as well as wall time. CPU time is what the step's own code cost;
it barely changes when other processes load the machine, so a test can assert on it without
flaking on a busy CI runner, while wall time tells how long the loop really waited.

>>> with LoopProbe() as probe:            # doctest: +SKIP
...     await conv.areply(question)
>>> probe.worst(3)                         # the three longest steps, CPU time first
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = ["LoopProbe", "Step"]


@dataclass(frozen=True)
class Step:
    """One callback the loop ran: its cost in CPU and wall seconds, and what it was."""

    cpu: float
    wall: float
    what: str


def _describe(callback: Any) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        name = getattr(coro, "__qualname__", None) or repr(coro)
        return f"task {owner.get_name()} ({name})"
    return getattr(callback, "__qualname__", None) or repr(callback)


class LoopProbe:
    """Record the CPU and wall time of every callback run by the current thread's event loop.

    Use it as a context manager (sync or async) inside a running loop. It patches
    ``asyncio.Handle._run`` while active, so use one probe at a time.

    Args:
        keep: how many of the longest steps to remember.
    """

    def __init__(self, *, keep: int = 20) -> None:
        self.keep = keep
        self.steps = 0
        self._worst: list[Step] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._original: Any = None

    def worst(self, n: int = 5) -> list[Step]:
        """The ``n`` steps that used the most CPU time, longest first."""
        return sorted(self._worst, key=lambda s: s.cpu, reverse=True)[:n]

    @property
    def max_cpu(self) -> float:
        """CPU seconds of the costliest step (0 when none ran)."""
        return max((s.cpu for s in self._worst), default=0.0)

    @property
    def max_wall(self) -> float:
        """Wall seconds of the longest step (0 when none ran)."""
        return max((s.wall for s in self._worst), default=0.0)

    def _record(self, step: Step) -> None:
        self.steps += 1
        if len(self._worst) < self.keep:
            self._worst.append(step)
            return
        cheapest = min(range(len(self._worst)), key=lambda i: self._worst[i].cpu)
        if step.cpu > self._worst[cheapest].cpu:
            self._worst[cheapest] = step

    def __enter__(self) -> LoopProbe:
        if self._original is not None:
            raise RuntimeError("this LoopProbe is already active")
        self._loop = asyncio.get_running_loop()
        original = asyncio.Handle._run
        probe, loop = self, self._loop

        def timed_run(handle: asyncio.Handle) -> None:
            if getattr(handle, "_loop", None) is not loop:
                original(handle)
                return
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            try:
                original(handle)
            finally:
                cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
                probe._record(Step(cpu, wall, _describe(getattr(handle, "_callback", None))))

        self._original = original
        asyncio.Handle._run = timed_run  # type: ignore[method-assign,assignment]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._original is not None:
            asyncio.Handle._run = self._original  # type: ignore[method-assign]
            self._original = None

    async def __aenter__(self) -> LoopProbe:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
