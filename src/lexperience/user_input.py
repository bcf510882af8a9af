"""What a turn accepts (:data:`UserInput`) and how it becomes text or one clip."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, Callable
from typing import Union

import numpy as np

from .errors import InvalidInputError
from .media import Audio, AudioChunk
from .options import TurnOptions

__all__ = ["UserInput", "collect", "to_input"]

UserInput = Union[str, Audio, "os.PathLike[str]", bytes, bytearray, AsyncIterable[AudioChunk]]
"""What a turn accepts: typed text (``str``), an :class:`Audio` clip, an audio file path
(``pathlib.Path``), encoded audio file bytes, or a live stream of microphone
:class:`AudioChunk` s (an async iterable that ends when the user stops speaking)."""


async def collect(chunks: AsyncIterable[AudioChunk], max_seconds: float) -> Audio:
    """Gather a live microphone stream into one clip, refusing it as soon as it runs past
    ``max_seconds``."""
    parts: list[Audio] = []
    seconds = 0.0
    async for chunk in chunks:
        if not isinstance(chunk, AudioChunk):
            raise InvalidInputError(
                f"a live audio stream must yield AudioChunk, got {type(chunk).__name__}"
            )
        parts.append(chunk.to_audio())
        seconds += chunk.duration
        if seconds > max_seconds:
            raise InvalidInputError(
                f"the audio stream ran past {max_seconds:.0f} s (TurnOptions.max_input_seconds)"
            )
    if not parts:
        raise InvalidInputError("the audio stream ended without any audio")
    return await asyncio.to_thread(Audio.concatenate, parts)


async def to_input(
    user_input: UserInput, options: TurnOptions, speech_ended: Callable[[], None]
) -> Audio | str:
    """The turn's input as text or one clip, within ``options``' limits. ``speech_ended`` is
    called when a live stream ends (the user stopped speaking: latencies count from there)."""
    if isinstance(user_input, (str, Audio)):
        return user_input
    if isinstance(user_input, (os.PathLike, bytes, bytearray)):
        # decoding (PyAV, up to minutes of audio) runs in a worker thread; an oversized file
        # fails on its size or its header, before it is read or decoded
        return await asyncio.to_thread(
            Audio.load,
            user_input,
            max_seconds=options.max_input_seconds,
            max_bytes=options.max_input_bytes,
        )
    if isinstance(user_input, AsyncIterable):
        clip = await collect(user_input, options.max_input_seconds)
        speech_ended()
        return clip
    if isinstance(user_input, np.ndarray):
        raise InvalidInputError(
            "a bare numpy array has no sample rate: wrap it as Audio.from_numpy(array, rate)"
        )
    raise InvalidInputError(
        f"cannot answer a {type(user_input).__name__}: pass text, Audio, a Path, bytes or an "
        "async stream of AudioChunk"
    )
