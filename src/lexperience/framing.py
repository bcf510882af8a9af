"""The frame accounting every avatar shares: cut a stream of audio into one slice per frame.

Frame ``i`` covers the audio from ``round(i * rate / fps)`` to ``round((i + 1) * rate / fps)``
(in samples of the first chunk's rate; later chunks are resampled to it) and is due as soon as
that audio has arrived. At the end of the stream the total is ``round(samples * fps / rate)``,
so a reply of ``d`` seconds gets ``round(d * fps)`` frames and audio and video never drift.
"""

from __future__ import annotations

import numpy as np

from .media import AudioChunk

__all__ = ["AudioFramer"]


class AudioFramer:
    """Turns audio chunks into ``(frame index, that frame's samples)`` pairs at ``fps``.

    ``push`` returns the frames whose audio is complete; ``finish`` returns the rest when the
    stream ends. Rounding leftovers go to the last frame ``finish`` returns; when it returns none
    (the tail after the last frame is under half a frame long), the tail belongs to no frame and
    is dropped: the frame count stays ``round(samples * fps / rate)``. No I/O, no threads.
    """

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.rate: int | None = None  # the first chunk's sample rate
        self._buf = np.zeros(0, dtype=np.float32)
        self._consumed = 0  # samples already given to frames
        self.index = 0  # the next frame

    @property
    def received(self) -> int:
        """Samples received so far (at :attr:`rate`)."""
        return self._consumed + int(self._buf.shape[0])

    @property
    def received_seconds(self) -> float:
        return self.received / self.rate if self.rate else 0.0

    def push(self, chunk: AudioChunk) -> list[tuple[int, np.ndarray]]:
        if chunk.samples.size == 0:
            return []
        if self.rate is None:
            self.rate = chunk.sample_rate
        samples = chunk.samples
        if chunk.sample_rate != self.rate:
            samples = chunk.to_audio().resample(self.rate).samples
        self._buf = np.concatenate([self._buf, samples]) if self._buf.size else samples
        return self._take(int(self.received * self.fps / self.rate))

    def finish(self) -> list[tuple[int, np.ndarray]]:
        if self.rate is None:
            return []
        frames = self._take(round(self.received * self.fps / self.rate))
        if frames and self._buf.size:
            index, samples = frames[-1]
            frames[-1] = (index, np.concatenate([samples, self._buf]))
        self._consumed += int(self._buf.shape[0])
        self._buf = self._buf[:0]
        return frames

    def _take(self, due: int) -> list[tuple[int, np.ndarray]]:
        assert self.rate is not None
        frames = []
        while self.index < due:
            end = round((self.index + 1) * self.rate / self.fps) - self._consumed
            end = max(0, min(end, int(self._buf.shape[0])))
            frames.append((self.index, self._buf[:end]))
            self._buf = self._buf[end:]
            self._consumed += end
            self.index += 1
        return frames
