"""A simulated room for testing live apps: :class:`SimulatedRoom`.

A scripted user (a 16 kHz track of speech, silences and noises) talks into a microphone while a
loudspeaker plays the host's replies as the session releases them; the loudspeaker's sound may
come back into the microphone (an echo path: a delay, a gain and a few reflections). The room
runs on its own clock, one microphone chunk at a time, as fast as you like (``speed`` times real
time), so a test measures latencies in microphone time, not on a loaded machine's wall clock::

    room = SimulatedRoom(track, echo_gain=0.5)
    async for event in conversation.live(room.microphone(), played=room.played):
        room.hear(event)            # the loudspeaker queues audio, drops it on interruption

It is also the benchmarks' device (``speed=1.0`` is real time).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence

import numpy as np

from ..events import AudioEvent, Event, TurnInterrupted
from ..media import Audio, AudioChunk
from .input import DuplexChunk
from .playback import drain

__all__ = ["SimulatedRoom", "Track"]

RATE = 16_000


class Track:
    """A user's side of a session, built piece by piece; remembers where each speech lies."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self.length = 0
        self.marks: list[tuple[str, float, float]] = []  # (label, start, end) of sounds
        self.cues: list[tuple[int, float]] = []  # (sample, loudspeaker seconds to wait for)

    def silence(self, seconds: float) -> Track:
        self._parts.append(np.zeros(round(seconds * RATE), dtype=np.float32))
        self.length += round(seconds * RATE)
        return self

    def add(
        self, sound: Audio | np.ndarray, label: str = "speech", *, after_played: float | None = None
    ) -> tuple[float, float]:
        """Append a sound; returns where it is audible (first and last sample above -40 dBFS).

        ``after_played``: the user waits (the room inserts silence) until the loudspeaker has
        played this many seconds in all, so that a test does not depend on how fast the
        backends are; :meth:`SimulatedRoom.room_time` maps track positions to room time."""
        if after_played is not None:
            self.cues.append((self.length, after_played))
        samples = sound.resample(RATE).samples if isinstance(sound, Audio) else sound
        samples = np.asarray(samples, dtype=np.float32)
        loud = np.nonzero(np.abs(samples) > 0.01)[0]
        first = loud[0] if loud.size else 0
        last = loud[-1] + 1 if loud.size else samples.shape[0]
        start, end = (self.length + first) / RATE, (self.length + last) / RATE
        self._parts.append(samples)
        self.length += samples.shape[0]
        self.marks.append((label, start, end))
        return start, end

    @property
    def seconds(self) -> float:
        return self.length / RATE

    def audio(self, noise_dbfs: float | None = None, seed: int = 0) -> Audio:
        samples = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        if noise_dbfs is not None:
            rng = np.random.default_rng(seed)
            level = 10 ** (noise_dbfs / 20)
            samples = samples + (rng.standard_normal(samples.shape[0]) * level).astype(np.float32)
        return Audio(samples.astype(np.float32), RATE)


class SimulatedRoom:
    """A microphone and a loudspeaker on one clock (see the module docstring).

    Args:
        user: what the user says, at 16 kHz (a :class:`Track`'s audio).
        chunk_seconds: microphone chunk length.
        speed: how many times faster than real time the microphone delivers (``None``: as fast
            as the session reads, letting the event loop run ``settle`` steps between chunks,
            so that work without real waits, such as fake backends, keeps pace exactly).
        settle: event-loop steps between chunks when ``speed`` is ``None``.
        echo_gain: how loud the loudspeaker comes back into the microphone (0: headphones).
        echo_delay: seconds from the loudspeaker to the microphone.
        reflections: extra ``(delay seconds, gain)`` echoes of the room.
        reference: give the session the loudspeaker signal (:class:`DuplexChunk`).
        tail_seconds: silence after the track, so the last reply can be heard.
        max_wait: the longest a :meth:`Track.add` ``after_played`` cue waits, in room seconds.
    """

    def __init__(
        self,
        user: Audio | Track,
        *,
        chunk_seconds: float = 0.02,
        speed: float | None = 20.0,
        settle: int = 50,
        echo_gain: float = 0.0,
        echo_delay: float = 0.05,
        reflections: Sequence[tuple[float, float]] = ((0.005, 0.35), (0.018, -0.15)),
        reference: bool = True,
        tail_seconds: float = 3.0,
        max_wait: float = 60.0,
    ) -> None:
        self.max_wait = max_wait
        self.cues = list(user.cues) if isinstance(user, Track) else []
        self.user = (user.audio() if isinstance(user, Track) else user).resample(RATE).samples
        self._track = 0  # the next track sample to say
        self.inserted: list[tuple[int, int]] = []  # (track sample, silence inserted before it)
        self.chunk = max(1, round(chunk_seconds * RATE))
        self.speed = speed
        self.settle = settle
        self.echo_gain = echo_gain
        taps = [(0.0, 1.0), *reflections]
        self._ir = np.zeros(round(max(d for d, _ in taps) * RATE) + 1, dtype=np.float32)
        for d, g in taps:
            self._ir[round(d * RATE)] += g
        self._delay = round(echo_delay * RATE)
        self.reference = reference
        self.tail = round(tail_seconds * RATE)
        self.position = 0  # samples delivered
        self._queue: deque[tuple[int, np.ndarray]] = deque()  # (turn id, samples) to play
        self._played: dict[int, int] = {}
        self._history = np.zeros(self._delay + self._ir.shape[0] + self.chunk, dtype=np.float32)
        self.loudspeaker: list[np.ndarray] = []  # everything played, chunk by chunk
        self.closed = False

    @property
    def now(self) -> float:
        """Room time: seconds of microphone audio delivered."""
        return self.position / RATE

    def hear(self, event: Event) -> None:
        """Pass every session event: audio is queued on the loudspeaker, an interruption drops
        that turn's queued audio."""
        if isinstance(event, AudioEvent):
            self._queue.append((event.turn_id, event.chunk.to_audio().resample(RATE).samples))
        elif isinstance(event, TurnInterrupted):
            self._queue = deque(item for item in self._queue if item[0] != event.turn_id)

    def played(self, turn_id: int) -> float:
        """Seconds of ``turn_id``'s reply the loudspeaker has played."""
        return self._played.get(turn_id, 0) / RATE

    def room_time(self, track_seconds: float) -> float:
        """Where a track position ended up on the room's clock (after inserted waits)."""
        sample = round(track_seconds * RATE)
        return (sample + sum(n for at, n in self.inserted if at <= sample)) / RATE

    def queued_seconds(self) -> float:
        return float(sum(s.shape[0] for _, s in self._queue)) / RATE

    def _play(self, n: int) -> np.ndarray:
        return drain(self._queue, self._played, n)

    async def microphone(self) -> AsyncIterator[AudioChunk | DuplexChunk]:
        """The microphone stream (the user's track, then ``tail_seconds`` of silence)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        tail = 0
        while (self._track < self.user.shape[0] or tail < self.tail) and not self.closed:
            n = self.chunk
            if self._track >= self.user.shape[0]:
                n = min(n, self.tail - tail)
                tail += n
            if self.speed is not None:  # a device's clock: a chunk is there once recorded
                due = start + (self.position + n) / RATE / self.speed
                await asyncio.sleep(max(0.0, due - loop.time()))
            mic = np.zeros(n, dtype=np.float32)
            take = n
            if self.cues and self._track + n > self.cues[0][0]:
                at, wait = self.cues[0]
                waited = self.inserted[-1][1] if self.inserted and self.inserted[-1][0] == at else 0
                played = sum(self._played.values()) / RATE
                if played < wait and waited < self.max_wait * RATE:  # the user waits for it
                    take = at - self._track
                    gap = n - take
                    if self.inserted and self.inserted[-1][0] == at:
                        self.inserted[-1] = (at, self.inserted[-1][1] + gap)
                    else:
                        self.inserted.append((at, gap))
                else:
                    self.cues.pop(0)
            voice = self.user[self._track : self._track + take]
            mic[: voice.shape[0]] = voice
            self._track += take
            speaker = self._play(n)
            self.loudspeaker.append(speaker)
            self._history = np.concatenate([self._history[n:], speaker])
            if self.echo_gain:
                # echo[t] = sum_k ir[k] * played[t - delay - k], for the n samples of this chunk
                size = self._history.shape[0]
                span = self._history[
                    size - (n + self._delay + self._ir.shape[0] - 1) : size - self._delay
                ]
                echo = np.convolve(span, self._ir, mode="valid")[:n]
                mic = mic + self.echo_gain * echo.astype(np.float32)
            self.position += n
            chunk = AudioChunk(np.clip(mic, -1.0, 1.0), RATE)
            if self.reference:
                yield DuplexChunk(chunk, AudioChunk(speaker, RATE))
            else:
                yield chunk
            if self.speed is None:
                for _ in range(max(1, self.settle)):
                    await asyncio.sleep(0)
