"""Admission control and rate limits of the service.

* :class:`Admission`: at most ``slots`` turns compute at once (the CPU cores, by default) and at
  most ``queue`` wait for a slot; beyond that a turn is refused at once with
  :class:`ServerBusy` (HTTP 503 + ``Retry-After``), so a full process answers "come back in a few
  seconds" instead of making everyone slow.
* :class:`RateLimiter`: a token bucket per client (its token, or its address): ``burst`` turns at
  once, then ``per_minute``; beyond that :class:`RateLimited` (HTTP 429 + ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["Admission", "RateLimited", "RateLimiter", "ServerBusy"]


class ServerBusy(Exception):
    """Every turn slot is taken and the queue is full."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("the service is at capacity; try again shortly")
        self.retry_after = retry_after


class RateLimited(Exception):
    """This client started turns faster than its rate allows."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many turns; slow down")
        self.retry_after = retry_after


class Admission:
    """``slots`` turns at once, ``queue`` more waiting, the rest refused."""

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self._semaphore = asyncio.Semaphore(slots)
        self.running = 0
        self.waiting = 0
        self.refused = 0
        self._recent: list[float] = []  # durations of the last turns, for Retry-After

    def retry_after(self) -> float:
        typical = sorted(self._recent)[len(self._recent) // 2] if self._recent else 2.0
        return max(1.0, round(typical * (1 + self.waiting / max(1, self.slots)), 1))

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a turn slot for the block; raise :class:`ServerBusy` when none can be had."""
        if self.running >= self.slots and self.waiting >= self.queue:
            self.refused += 1
            raise ServerBusy(self.retry_after())
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.monotonic()
        try:
            yield
        finally:
            self.running -= 1
            self._semaphore.release()
            self._recent = [*self._recent[-31:], time.monotonic() - started]


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


class RateLimiter:
    """A token bucket per client key."""

    def __init__(self, per_minute: float, burst: int, *, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> None:
        """Spend one turn of ``key``'s budget, or raise :class:`RateLimited`."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            raise RateLimited(round((1.0 - bucket.tokens) / self.rate, 1))
        bucket.tokens -= 1.0

    def _forget_idle(self, now: float) -> None:
        full = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated > full]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_clients:  # still full: drop the oldest
            oldest = min(self._buckets, key=lambda k: self._buckets[k].updated)
            del self._buckets[oldest]
