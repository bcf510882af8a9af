"""What a live session reads: microphone chunks, optionally with the loudspeaker signal
(:class:`DuplexChunk`), at any rate, turned into one 16 kHz stream (:class:`StreamResampler`
keeps the resampling seamless across chunk boundaries)."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np

from ..errors import InvalidInputError
from ..media import AudioChunk
from ..resample import _HALF_TAPS, _kernel, _phase_table

__all__ = ["DuplexChunk", "StreamResampler", "split_input"]


@dataclass(frozen=True, eq=False)
class DuplexChunk:
    """A microphone chunk and what the loudspeaker played while it was recorded (the echo
    reference), e.g. the input and output blocks of one full-duplex audio callback.

    The two may have different rates; ``playback`` may be ``None`` (nothing played) and is
    taken as covering the same time span as ``mic``.
    """

    mic: AudioChunk
    playback: AudioChunk | None = None


class StreamResampler:
    """Band-limited resampling of a stream delivered in pieces (the same windowed-sinc kernels
    as :func:`lexperience.resample.resample`, with the neighbouring samples of the previous
    piece, so chunk edges leave no clicks). Output lags input by ``half`` input samples."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        g = gcd(from_rate, to_rate)
        self.up, self.down = to_rate // g, from_rate // g
        ratio = to_rate / from_rate
        self.cutoff = min(1.0, ratio) * 0.97
        self.half = int(np.ceil(_HALF_TAPS / min(1.0, ratio)))
        self.table = _phase_table(self.up, self.cutoff, self.half) if self.up <= 4096 else None
        self.offsets = np.arange(-self.half + 1, self.half + 1)
        # the buffer starts with ``half`` zeros before input sample 0, as the batch version pads
        self._buf = np.zeros(self.half, dtype=np.float32)
        self._buf_start = -self.half  # input index of self._buf[0]
        self._next = 0  # next output index

    def push(self, samples: np.ndarray) -> np.ndarray:
        if self.from_rate == self.to_rate:
            return np.asarray(samples, dtype=np.float32)
        self._buf = np.concatenate([self._buf, np.asarray(samples, dtype=np.float32)])
        end = self._buf_start + self._buf.shape[0]  # one past the last input index held
        # output n needs input up to floor(n * down / up) + half
        last = ((end - self.half - 1) * self.up) // self.down
        if last < self._next:
            return np.zeros(0, dtype=np.float32)
        n = np.arange(self._next, last + 1, dtype=np.int64)
        base = (n * self.down) // self.up
        idx = base[:, None] + self.offsets[None, :] - self._buf_start
        if self.table is not None:
            kernel = self.table[(n * self.down) % self.up]
        else:
            frac = (n * self.down) / self.up - base
            kernel = _kernel(frac[:, None] - self.offsets[None, :], self.cutoff, self.half)
        out: np.ndarray = np.einsum("ij,ij->i", self._buf[idx], kernel.astype(np.float32))
        out = out.astype(np.float32)
        self._next = last + 1
        keep_from = (self._next * self.down) // self.up - self.half + 1  # oldest index needed
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return out


def split_input(item: object) -> tuple[AudioChunk, AudioChunk | None]:
    """The microphone chunk and the optional loudspeaker chunk of one input item."""
    if isinstance(item, AudioChunk):
        return item, None
    if isinstance(item, DuplexChunk):
        if not isinstance(item.mic, AudioChunk) or not (
            item.playback is None or isinstance(item.playback, AudioChunk)
        ):
            raise InvalidInputError("a DuplexChunk holds AudioChunks")
        return item.mic, item.playback
    raise InvalidInputError(
        f"a live audio stream yields AudioChunk or DuplexChunk, got {type(item).__name__}"
    )
