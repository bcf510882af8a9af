"""The microphone side of a live session: :class:`Frontend` turns input items (any rate,
optionally with the loudspeaker's signal) into 16 kHz frames with their speech probability, the
echo removed, and keeps the recent audio for STT."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import numpy as np

from ..media import Audio
from .echo import EchoCanceller
from .input import StreamResampler, split_input
from .options import LiveOptions
from .vad import VAD

__all__ = ["RATE", "Frontend"]

RATE = 16_000


class Frontend:
    """Resampling, echo cancellation, VAD framing and the audio ring of one live session."""

    def __init__(self, vad: VAD, options: LiveOptions) -> None:
        if vad.sample_rate != RATE:
            raise ValueError(f"the voice activity detector must run at {RATE} Hz")
        self.vad = vad
        self.options = options
        self.frame = vad.frame_samples
        self._frames: deque[np.ndarray] = deque()
        self._base = 0  # index of the oldest frame kept
        self.count = 0  # frames so far
        self._pending = np.zeros(0, dtype=np.float32)
        self._mic: StreamResampler | None = None
        self._ref: StreamResampler | None = None
        self.echo: EchoCanceller | None = None

    @property
    def seconds(self) -> float:
        """Microphone audio consumed, in seconds (the session time)."""
        return self.count * self.frame / RATE

    async def push(self, item: Any) -> list[float]:
        """The speech probability of each frame this item completes (0 where the echo
        dominates); the frames are kept for :meth:`audio`."""
        mic, ref = split_input(item)
        samples = self._resample(mic.samples, mic.sample_rate)
        if (ref is not None or self.echo is not None) and self.options.echo_cancel:
            samples = self._cancel_echo(samples, self._reference(ref, samples.shape[0]))
        self._pending = np.concatenate([self._pending, samples])
        n = self._pending.shape[0] // self.frame
        if n == 0:
            return []
        block = self._pending[: n * self.frame]
        self._pending = self._pending[n * self.frame :]
        probs = await asyncio.to_thread(self.vad.probabilities, block)  # blocking model work
        out: list[float] = []
        blocks_per_frame = self.frame // 256
        for i in range(n):
            self._keep(block[i * self.frame : (i + 1) * self.frame])
            dominant = self.echo is None or self.echo.user_dominant(
                blocks_per_frame * i, blocks_per_frame, self.options.echo_margin_db
            )
            out.append(float(probs[i]) if dominant else 0.0)
        if self.echo is not None:
            self.echo.forget(blocks_per_frame * n)
        return out

    def audio(self, start: float, end: float) -> Audio:
        """The microphone audio (echo removed) from ``start`` to ``end`` seconds."""
        first = max(self._base, int(start * RATE) // self.frame)
        last = min(self.count, -(-int(end * RATE) // self.frame))
        pieces = [self._frames[i - self._base] for i in range(first, last)]
        if not pieces:
            return Audio(np.zeros(self.frame, dtype=np.float32), RATE)
        return Audio(np.concatenate(pieces), RATE)

    def _keep(self, piece: np.ndarray) -> None:
        self._frames.append(piece)
        self.count += 1
        limit = int((self.options.max_turn_seconds + self.options.pre_roll + 5) * RATE / self.frame)
        while len(self._frames) > limit:
            self._frames.popleft()
            self._base += 1

    def _resample(self, samples: np.ndarray, rate: int) -> np.ndarray:
        if rate == RATE:
            return samples
        if self._mic is None or self._mic.from_rate != rate:
            self._mic = StreamResampler(rate, RATE)
        return self._mic.push(samples)

    def _reference(self, ref: Any, length: int) -> np.ndarray:
        if ref is None:
            return np.zeros(length, dtype=np.float32)
        if ref.sample_rate != RATE:
            if self._ref is None or self._ref.from_rate != ref.sample_rate:
                self._ref = StreamResampler(ref.sample_rate, RATE)
            out = self._ref.push(ref.samples)
        else:
            out = ref.samples
        if out.shape[0] < length:  # the two streams drift by a sample or two: pad, or trim
            out = np.concatenate([out, np.zeros(length - out.shape[0], dtype=np.float32)])
        return np.asarray(out[:length], dtype=np.float32)

    def _cancel_echo(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        if self.echo is None:
            opts = self.options
            self.echo = EchoCanceller(
                RATE, filter_seconds=opts.echo_filter_seconds, max_delay=opts.echo_max_delay
            )
        return self.echo.process(mic, reference)
