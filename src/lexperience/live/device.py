"""Microphone and loudspeaker through ``sounddevice`` (PortAudio): :class:`SoundDevice`.

One full-duplex stream: each audio callback records a block and plays a block, so the session
gets every microphone block together with exactly what the loudspeaker played meanwhile (a
:class:`~lexperience.live.DuplexChunk`, the echo reference). Needs ``pip install
"lexperience[live]"`` and, on Linux, the PortAudio library (``apt install libportaudio2``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from .._optional import require
from ..errors import ConfigurationError
from ..events import AudioEvent, Event, TurnInterrupted
from ..media import AudioChunk
from .input import DuplexChunk, StreamResampler
from .playback import drain

__all__ = ["SoundDevice", "no_device_message"]

log = logging.getLogger(__name__)


def no_device_message(detail: str) -> str:
    return (
        f"no audio device: {detail}. `lexperience live` needs a microphone and a loudspeaker "
        "(on Linux the PortAudio library too: apt install libportaudio2); "
        "list them with `lexperience live --list-devices`, pick one with --input-device / "
        "--output-device, or stream audio to the service instead (`lexperience serve`, "
        "WebSocket live_start)"
    )


def _sounddevice() -> Any:
    try:
        return require("sounddevice", "live", feature="the microphone and loudspeaker")
    except OSError as exc:  # the wheel is there, the PortAudio library is not
        detail = f"PortAudio could not be loaded ({exc})"
        raise ConfigurationError(no_device_message(detail)) from exc


class SoundDevice:
    """The default (or a chosen) microphone and loudspeaker, as one full-duplex stream.

    Args:
        sample_rate: the stream's rate (PortAudio converts from the hardware's).
        block_seconds: the callback block length (latency of each direction).
        input_device: the microphone's device number or name (default: the system's).
        output_device: the loudspeaker's (default: the system's).
        backlog: microphone blocks held while the session is busy before the oldest is dropped.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16_000,
        block_seconds: float = 0.02,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        backlog: int = 500,
    ) -> None:
        self.sd = _sounddevice()
        self.rate = sample_rate
        self.block = max(1, round(block_seconds * sample_rate))
        self.device = (input_device, output_device)
        self._check()
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, np.ndarray]] = deque()  # (turn id, samples) to play
        self._played: dict[int, int] = {}
        self._blocks: deque[DuplexChunk] = deque(maxlen=backlog)
        self._ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resamplers: dict[int, StreamResampler] = {}
        self.dropped = 0

    @staticmethod
    def list_devices() -> str:
        """The devices PortAudio sees (what ``--list-devices`` prints)."""
        devices = _sounddevice().query_devices()
        if len(devices) == 0:
            return "no audio devices: PortAudio lists none (a server or a container without sound)"
        return str(devices)

    def _check(self) -> None:
        sd = self.sd
        try:
            devices = sd.query_devices()
        except Exception as exc:
            detail = f"PortAudio found no devices ({exc})"
            raise ConfigurationError(no_device_message(detail)) from exc
        if len(devices) == 0:
            raise ConfigurationError(no_device_message("PortAudio lists no devices"))
        try:
            sd.check_input_settings(device=self.device[0], channels=1, samplerate=self.rate)
            sd.check_output_settings(device=self.device[1], channels=1, samplerate=self.rate)
        except Exception as exc:
            raise ConfigurationError(no_device_message(str(exc))) from exc

    # -- the loudspeaker ------------------------------------------------------------------------
    def hear(self, event: Event) -> None:
        """Queue a reply's audio; an interruption drops what is left of that turn."""
        if isinstance(event, AudioEvent):
            chunk = event.chunk
            samples = chunk.samples
            if chunk.sample_rate != self.rate:
                resampler = self._resamplers.get(event.turn_id)
                if resampler is None or resampler.from_rate != chunk.sample_rate:
                    resampler = self._resamplers[event.turn_id] = StreamResampler(
                        chunk.sample_rate, self.rate
                    )
                samples = resampler.push(samples)
            with self._lock:
                self._queue.append((event.turn_id, samples.astype(np.float32)))
        elif isinstance(event, TurnInterrupted):
            with self._lock:
                self._queue = deque(item for item in self._queue if item[0] != event.turn_id)

    def played(self, turn_id: int) -> float:
        """Seconds of ``turn_id``'s reply the loudspeaker has played."""
        with self._lock:
            return self._played.get(turn_id, 0) / self.rate

    def _play(self, n: int) -> np.ndarray:
        with self._lock:
            return drain(self._queue, self._played, n)

    # -- the stream -----------------------------------------------------------------------------
    def _callback(self, indata: Any, outdata: Any, frames: int, when: Any, status: Any) -> None:
        if status:
            log.debug("audio stream: %s", status)
        speaker = self._play(frames)
        outdata[:, 0] = speaker
        item = DuplexChunk(
            AudioChunk(np.array(indata[:, 0], dtype=np.float32), self.rate),
            AudioChunk(speaker, self.rate),
        )
        if len(self._blocks) == self._blocks.maxlen:
            self.dropped += 1
        self._blocks.append(item)
        loop, ready = self._loop, self._ready
        if loop is not None and ready is not None:
            try:
                loop.call_soon_threadsafe(ready.set)
            except RuntimeError:  # the loop is closed
                pass

    async def microphone(self) -> AsyncIterator[DuplexChunk]:
        """Microphone blocks with the loudspeaker's, as they are recorded, until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        stream = self.sd.Stream(
            samplerate=self.rate, blocksize=self.block, channels=1, dtype="float32",
            device=self.device, callback=self._callback,
        )  # fmt: skip
        with stream:
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._blocks:
                    yield self._blocks.popleft()
