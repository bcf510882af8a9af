"""The events a live session hands to its caller, in one queue with two lanes.

Session events (speech started/ended, transcripts, false interruptions) are few and must never
wait: the microphone task sends them without blocking and they go out first. Turn events (text,
audio, frames) are many: their lane is bounded, so a caller that reads slowly slows the reply's
pipeline, not the microphone. When a reply is cut (barge-in), its queued media are dropped at
once and any that still arrive are refused; only its closing event goes through, so no old audio
reaches the player after the interruption. (A :class:`~lexperience._aio.Channel` has one lane
and no selective drop, hence this small queue.)
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..events import ErrorEvent, Event, TurnDone, TurnInterrupted

__all__ = ["Outbox"]

_CLOSING = (TurnDone, TurnInterrupted, ErrorEvent)


class Outbox:
    def __init__(self, turn_capacity: int) -> None:
        self.capacity = turn_capacity
        self._session: deque[Event] = deque()
        self._turn: deque[Event] = deque()
        self._cut: set[int] = set()
        self._closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def _update(self) -> None:
        if self._session or self._turn or self._closed:
            self._readable.set()
        else:
            self._readable.clear()
        if len(self._turn) < self.capacity or self._closed:
            self._writable.set()
        else:
            self._writable.clear()

    def put_session(self, event: Event) -> None:
        """Queue a session event (never waits)."""
        if not self._closed:
            self._session.append(event)
            self._update()

    async def put_turn(self, event: Event) -> None:
        """Queue a turn event, waiting while the turn lane is full; a cut turn's media are
        dropped."""
        if event.turn_id in self._cut and not isinstance(event, _CLOSING):
            return
        while not self._writable.is_set():
            await self._writable.wait()
            if event.turn_id in self._cut and not isinstance(event, _CLOSING):
                return
        if not self._closed:
            self._turn.append(event)
            self._update()

    def cut(self, turn_id: int) -> None:
        """Drop the queued events of ``turn_id`` but its closing one, and refuse later ones."""
        self._cut.add(turn_id)
        kept = [e for e in self._turn if e.turn_id != turn_id or isinstance(e, _CLOSING)]
        self._turn = deque(kept)
        self._update()

    async def get(self) -> Event | None:
        """The next event (session lane first); ``None`` once closed and empty."""
        while True:
            if self._session:
                event = self._session.popleft()
            elif self._turn:
                event = self._turn.popleft()
            elif self._closed:
                return None
            else:
                await self._readable.wait()
                continue
            self._update()
            return event

    def close(self) -> None:
        self._closed = True
        self._update()
