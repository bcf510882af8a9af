"""Long audio as a stream of 16 kHz mono blocks, and cutting it into pieces at quiet moments.

An episode's audio can be hours long: decoding a 3-hour MP3 into float32 at its own rate would
take ~2 GB, so a file is decoded incrementally with PyAV (the ``media`` extra) and resampled to
16 kHz on the way; only WAV files are read without it (whole, through :meth:`Audio.load`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import is_installed, require
from ..errors import InvalidInputError
from ..media import Audio

__all__ = ["RATE", "AudioStream", "Chunker"]

#: The rate pieces are cut and transcribed at (what Whisper-class models expect).
RATE = 16_000
_BLOCK = RATE * 10  # samples per decoded block handed on
_FRAME = RATE // 50  # 20 ms: the window of the quiet-moment search


class AudioStream:
    """An episode's audio, readable block by block at :data:`RATE` (blocking calls)."""

    def __init__(self, source: Audio | str | os.PathLike[str]) -> None:
        self.audio: Audio | None = None
        self.path: Path | None = None
        if isinstance(source, Audio):
            if len(source) == 0:
                raise InvalidInputError("the episode audio is empty (0 samples)")
            self.audio = source
        elif isinstance(source, (str, os.PathLike)):
            self.path = Path(source)
            if not self.path.is_file():
                raise InvalidInputError(f"audio file not found: {self.path}")
            if self.path.stat().st_size == 0:
                raise InvalidInputError(f"{self.path} is empty (0 bytes)")
        else:
            raise InvalidInputError(
                f"cannot transcribe a {type(source).__name__}: pass an audio file path or Audio"
            )

    def fingerprint(self) -> str:
        """A short hash that tells this audio from other audio (checkpoints check it)."""
        digest = hashlib.sha256()
        if self.audio is not None:
            digest.update(str(self.audio.sample_rate).encode())
            digest.update(self.audio.samples.tobytes())
        else:
            assert self.path is not None
            size = self.path.stat().st_size
            digest.update(str(size).encode())
            with self.path.open("rb") as fh:
                digest.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                digest.update(fh.read(1 << 20))
        return digest.hexdigest()[:32]

    def duration(self) -> float | None:
        """Seconds of audio, when the container says (``None`` when unknown)."""
        if self.audio is not None:
            return self.audio.duration
        assert self.path is not None
        if _is_wav(self.path) or not is_installed("av"):
            return None
        av = require("av", "media", feature="reading episode audio")
        try:
            with av.open(str(self.path)) as container:
                if container.duration:
                    return float(container.duration) / 1_000_000
        except (av.error.FFmpegError, OSError, ValueError):
            return None
        return None

    def blocks(self) -> Iterator[np.ndarray]:
        """Float32 mono blocks at :data:`RATE`, in order, until the end of the audio."""
        if self.audio is not None:
            samples = self.audio.resample(RATE).samples
            for i in range(0, len(samples), _BLOCK):
                yield samples[i : i + _BLOCK]
            return
        assert self.path is not None
        if _is_wav(self.path) and not is_installed("av"):
            yield from AudioStream(Audio.load(self.path)).blocks()
            return
        yield from _decode_blocks(self.path)


def _is_wav(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(12)
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _decode_blocks(path: Path) -> Iterator[np.ndarray]:
    av = require("av", "media", feature=f"reading {path.suffix or 'this'} audio")
    try:
        container: Any = av.open(str(path), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise InvalidInputError(f"{path} is not audio that can be decoded ({exc})") from exc
    produced = 0
    with container:
        if not container.streams.audio:
            raise InvalidInputError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        pending: list[np.ndarray] = []
        size = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    pending.append(arr)
                    size += len(arr)
                if size >= _BLOCK:
                    block = np.concatenate(pending)
                    pending, size = [], 0
                    produced += len(block)
                    yield _finite(block, path)
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        except av.error.FFmpegError as exc:
            raise InvalidInputError(f"{path} is corrupt audio ({exc})") from exc
        if pending:
            block = np.concatenate(pending)
            produced += len(block)
            yield _finite(block, path)
    if produced == 0:
        raise InvalidInputError(f"{path} holds no audio samples")


def _finite(block: np.ndarray, path: Path) -> np.ndarray:
    if not np.isfinite(block).all():
        raise InvalidInputError(f"{path} contains NaN or infinite samples")
    return block


class Chunker:
    """Cuts a stream of samples into pieces of about ``chunk_seconds``, each ending at the
    quietest 20 ms in its last ``search_seconds`` (so that a cut rarely splits a word).

    Deterministic: the same samples give the same cuts, which is what lets a transcription
    resume from a checkpoint exactly where an uninterrupted run would have cut.
    """

    def __init__(self, chunk_seconds: float, *, offset: int = 0) -> None:
        self.size = int(chunk_seconds * RATE)
        self.search = max(_FRAME, min(int(5 * RATE), self.size // 4))
        self.offset = offset  # absolute sample index of the buffer's first sample
        self._buffer = np.zeros(0, dtype=np.float32)

    def push(self, block: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Add samples; yield ``(first sample index, samples)`` for every piece now complete."""
        self._buffer = np.concatenate([self._buffer, block])
        while len(self._buffer) >= self.size:
            cut = self._quiet_cut(self._buffer[: self.size])
            piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
            yield self.offset, piece
            self.offset += cut

    def flush(self) -> Iterator[tuple[int, np.ndarray]]:
        """The last, shorter piece."""
        if len(self._buffer):
            yield self.offset, self._buffer
            self.offset += len(self._buffer)
            self._buffer = np.zeros(0, dtype=np.float32)

    def _quiet_cut(self, window: np.ndarray) -> int:
        tail = window[len(window) - self.search :]
        n = len(tail) // _FRAME
        frames = tail[: n * _FRAME].reshape(n, _FRAME).astype(np.float64)
        energy = np.mean(frames**2, axis=1)
        quietest = int(np.argmin(energy[::-1]))  # the latest of equally quiet frames
        frame = n - 1 - quietest
        return len(window) - self.search + frame * _FRAME + _FRAME // 2
