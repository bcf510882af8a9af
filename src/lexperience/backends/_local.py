"""Helpers shared by the offline backends (faster-whisper, llama.cpp, Piper, espeak-ng).

* :func:`thread_stream` runs a blocking producer in its own thread and hands its items to the event
  loop through a bounded :class:`~lexperience._aio.Channel` (the producer waits when the consumer
  falls behind). Closing or cancelling the async iterator sets a stop flag that the producer checks
  between items, so an abandoned stream's thread ends after its current step and leaves no work
  running.
* :class:`VisemeTrack` turns timed phoneme boundaries (sample positions) into the per-chunk
  :class:`~lexperience.visemes.VisemeCue` s that :class:`~lexperience.media.AudioChunk` carries.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from .._aio import Channel
from ..errors import InvalidInputError
from ..visemes import VisemeCue, merge_cues

__all__ = ["Emit", "VisemeTrack", "check_text", "thread_stream"]

T = TypeVar("T")

#: What a producer calls to hand one item to the consumer.
Emit = Callable[[T], None]


async def thread_stream(
    produce: Callable[[Emit[T], threading.Event], None],
    *,
    name: str,
    maxsize: int = 16,
) -> AsyncGenerator[T, None]:
    """Run ``produce(emit, stop)`` in a new daemon thread and yield what it emits.

    ``produce`` must return soon after ``stop`` is set (check it between items). ``emit`` hands an
    item over through a bounded channel of ``maxsize`` items: when the consumer falls behind, the
    producer thread waits (back-pressure, so a fast producer never piles up memory). An exception
    ``produce`` raises is re-raised here, in the consumer. When the consumer stops early
    (``aclose()``, ``break`` or cancellation), ``stop`` is set and the thread ends by itself after
    its current step (one token, one sentence); whatever it emits after that is dropped.

    Closing never suspends (no ``await`` in the ``finally``): a cancellation that arrived while a
    closing generator awaited could be swallowed by a caller that guards ``aclose()``, and
    interrupting a turn must also be instant.
    """
    loop = asyncio.get_running_loop()
    channel: Channel[T] = Channel(maxsize)
    stop = threading.Event()
    failure: list[BaseException] = []

    def emit(item: T) -> None:
        if not stop.is_set() and not channel.send_threadsafe(item, loop, stop=stop):
            stop.set()  # the consumer is gone: tell the producer to end

    def run() -> None:
        try:
            produce(emit, stop)
        except BaseException as exc:  # handed to the consumer, never lost in the thread
            failure.append(exc)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop was closed under an abandoned stream
                loop.call_soon_threadsafe(channel.close)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        async for item in channel:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        channel.close()  # a producer blocked on a full channel is released at once


def check_text(text: object, *, backend: str) -> str:
    """The text to speak, stripped; :class:`InvalidInputError` if it is not text or is empty."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{backend} speaks text (str), got {type(text).__name__}")
    cleaned = text.replace("\x00", "").strip()
    if not cleaned:
        raise InvalidInputError(f"{backend} was asked to speak an empty text")
    return cleaned


class VisemeTrack:
    """Mouth shapes on a sample timeline: each boundary ``(sample, viseme)`` holds until the next.

    Boundaries may be added as they become known (in any order); :meth:`cues` cuts the track into
    the cues of one audio chunk, with times relative to the chunk's start.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._samples: list[int] = []
        self._visemes: list[str] = []

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, sample: int, viseme: str) -> None:
        """Start ``viseme`` at ``sample`` (a later boundary at the same sample replaces it)."""
        i = bisect.bisect_right(self._samples, sample)
        if i and self._samples[i - 1] == sample:
            self._visemes[i - 1] = viseme
            return
        self._samples.insert(i, sample)
        self._visemes.insert(i, viseme)

    def cues(self, start: int, end: int) -> tuple[VisemeCue, ...]:
        """The cues covering samples ``[start, end)``, in seconds from ``start``, merged and ordered.

        Before the first boundary the mouth is closed (``sil``).
        """
        if end <= start:
            return ()
        rate = float(self.sample_rate)
        i = bisect.bisect_right(self._samples, start)
        current = self._visemes[i - 1] if i else "sil"
        at = start
        out: list[VisemeCue] = []
        while i < len(self._samples) and self._samples[i] < end:
            if self._samples[i] > at:
                out.append(
                    VisemeCue((at - start) / rate, (self._samples[i] - start) / rate, current)
                )
                at = self._samples[i]
            current = self._visemes[i]
            i += 1
        out.append(VisemeCue((at - start) / rate, (end - start) / rate, current))
        return tuple(merge_cues(out))

    def forget_before(self, sample: int) -> None:
        """Drop boundaries no longer needed for chunks starting at or after ``sample``."""
        i = bisect.bisect_right(self._samples, sample)
        if i > 1:
            del self._samples[: i - 1]
            del self._visemes[: i - 1]
