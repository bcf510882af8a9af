"""Speech-like test signals and small helpers of the dreamtalk avatar tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from lexperience.media import AudioChunk

RATE = 16_000


def tone(seconds: float, rate: int = RATE, *, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


def gated(frames_on: list[tuple[int, int]], total_frames: int, rate: int = RATE) -> np.ndarray:
    """A tone that sounds only in the given frame ranges ``[start, end)`` (25 fps), else silence."""
    per_frame = rate / 25
    out = np.zeros(round(total_frames * per_frame), dtype=np.float32)
    full = tone(total_frames / 25, rate)
    for start, end in frames_on:
        a, b = round(start * per_frame), round(end * per_frame)
        out[a:b] = full[a:b]
    return out


def chunks_of(samples: np.ndarray, rate: int, *, size: int, sentence: int = 0) -> list[AudioChunk]:
    return [
        AudioChunk(samples[i : i + size], rate, sentence_index=sentence)
        for i in range(0, samples.shape[0], size)
    ]


async def stream(chunks: list[AudioChunk]) -> AsyncIterator[AudioChunk]:
    for chunk in chunks:
        yield chunk


async def collect(avatar: Any, chunks: list[AudioChunk]) -> list[Any]:
    return [frame async for frame in avatar.animate(stream(chunks))]
