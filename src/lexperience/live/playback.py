"""How much of a reply the listener has heard: :class:`PlaybackClock`.

A live session must know where playback is when the user barges in, so that the history keeps
only what was heard. Whoever plays the audio knows best: pass ``played(turn_id) -> seconds``, or
report positions as they come (:meth:`PlaybackClock.report`, what the WebSocket service does with
the client's ``played`` messages). Otherwise the clock assumes a player that starts each chunk as
soon as it is released, at real time, and waits (silently) when it runs dry.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PlaybackClock", "drain"]


def drain(queue: deque[tuple[int, np.ndarray]], played: dict[int, int], n: int) -> np.ndarray:
    """The next ``n`` loudspeaker samples from ``queue`` of ``(turn id, samples)`` (silence where
    it runs dry), counting each turn's samples played into ``played``."""
    out = np.zeros(n, dtype=np.float32)
    filled = 0
    while filled < n and queue:
        turn_id, samples = queue[0]
        take = min(n - filled, samples.shape[0])
        out[filled : filled + take] = samples[:take]
        played[turn_id] = played.get(turn_id, 0) + take
        filled += take
        if take == samples.shape[0]:
            queue.popleft()
        else:
            queue[0] = (turn_id, samples[take:])
    return out


@dataclass
class _Track:
    segments: list[list[float]] = field(default_factory=list)  # [start time, duration]
    released: float = 0.0
    end: float = 0.0  # session time the released audio finishes playing
    reported: tuple[float, float] | None = None  # (seconds played, session time of the report)


class PlaybackClock:
    """Per turn: the reply seconds released to the player and how many of them played.

    Args:
        played: the player's own answer, ``played(turn_id) -> seconds`` (capped at what was
            released); ``None`` to simulate real-time playback (or use :meth:`report`).
    """

    def __init__(self, played: Callable[[int], float] | None = None) -> None:
        self._external = played
        self._tracks: dict[int, _Track] = {}

    def released(self, turn_id: int, seconds: float, now: float) -> None:
        """``seconds`` more of ``turn_id``'s reply went to the player at session time ``now``."""
        track = self._tracks.setdefault(turn_id, _Track())
        start = max(now, track.end)
        if track.segments and abs(track.segments[-1][0] + track.segments[-1][1] - start) < 1e-9:
            track.segments[-1][1] += seconds
        else:
            track.segments.append([start, seconds])
        track.end = start + seconds
        track.released += seconds

    def report(self, turn_id: int, seconds: float, now: float) -> None:
        """The player says it has played ``seconds`` of ``turn_id``'s reply (at ``now``)."""
        track = self._tracks.setdefault(turn_id, _Track())
        track.reported = (max(0.0, seconds), now)

    def released_seconds(self, turn_id: int) -> float:
        track = self._tracks.get(turn_id)
        return track.released if track is not None else 0.0

    def played(self, turn_id: int, now: float) -> float:
        """Seconds of ``turn_id``'s reply heard by session time ``now``."""
        track = self._tracks.get(turn_id)
        if track is None:
            return 0.0
        if self._external is not None:
            return max(0.0, min(float(self._external(turn_id)), track.released))
        if track.reported is not None:
            seconds, at = track.reported
            return min(track.released, seconds + max(0.0, now - at))
        return sum(min(max(0.0, now - start), duration) for start, duration in track.segments)

    def playing(self, turn_id: int, now: float) -> bool:
        """Whether audio of ``turn_id`` is still to be heard."""
        track = self._tracks.get(turn_id)
        return track is not None and self.played(turn_id, now) < track.released - 1e-6

    def forget(self, turn_id: int) -> None:
        self._tracks.pop(turn_id, None)
