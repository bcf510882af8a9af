"""Audio and video data: :class:`Audio`, :class:`AudioChunk`, :class:`VideoFrame`.

Audio is always mono float32 PCM in [-1, 1] plus a sample rate. Conversion from other dtypes, channel
layouts and containers happens at the edges (:meth:`Audio.from_numpy`, :meth:`Audio.load`), so that
every stage of the pipeline can rely on one representation.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from .errors import InvalidInputError
from .resample import resample as _resample
from .visemes import VisemeCue

__all__ = ["Audio", "AudioChunk", "AudioSource", "VideoFrame"]

#: Anything :meth:`Audio.load` accepts.
AudioSource = Union[str, "os.PathLike[str]", bytes, bytearray, BinaryIO]

#: The largest audio file :meth:`Audio.load` reads by default (256 MiB).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000


def _check_rate(sample_rate: int) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise InvalidInputError(f"sample_rate must be an integer number of Hz, got {sample_rate!r}")
    rate = int(sample_rate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InvalidInputError(
            f"sample_rate {rate} Hz is outside the supported range "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    return rate


def _to_float32_mono(array: np.ndarray) -> np.ndarray:
    """Convert PCM of any common dtype and layout into mono float32 in [-1, 1]."""
    arr = np.asarray(array)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise InvalidInputError(f"audio samples must be numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        # Accept (frames, channels) and (channels, frames); channels are the short axis.
        if arr.shape[0] <= 8 and arr.shape[1] > arr.shape[0]:
            arr = arr.T
        if arr.shape[1] > 8:
            raise InvalidInputError(f"audio array of shape {arr.shape} does not look like PCM")
    elif arr.ndim != 1:
        raise InvalidInputError(f"audio must be a 1-D (mono) or 2-D array, got {arr.ndim}-D")
    if arr.dtype.kind == "f":
        out = arr.astype(np.float32, copy=False)
        if out.size and not np.isfinite(out).all():
            raise InvalidInputError("audio contains NaN or infinite samples")
    elif arr.dtype.kind == "u":
        bits = arr.dtype.itemsize * 8
        offset = 2 ** (bits - 1)
        out = ((arr.astype(np.float64) - offset) / offset).astype(np.float32)
    else:
        bits = arr.dtype.itemsize * 8
        out = (arr.astype(np.float64) / float(2 ** (bits - 1))).astype(np.float32)
    if out.ndim == 2:
        out = out.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Audio:
    """A mono clip: float32 samples in [-1, 1] and a sample rate in Hz.

    Build one with :meth:`from_numpy`, :meth:`load` (WAV always; mp3/m4a/ogg/webm/flac with the
    ``media`` extra) or :meth:`silence`. Instances are immutable; methods return new clips.
    """

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        rate = _check_rate(self.sample_rate)
        samples = self.samples
        if not (
            isinstance(samples, np.ndarray) and samples.dtype == np.float32 and samples.ndim == 1
        ):
            samples = _to_float32_mono(samples)
        elif samples.size and not np.isfinite(samples).all():
            raise InvalidInputError("audio contains NaN or infinite samples")
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "sample_rate", rate)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, array: np.ndarray | Sequence[float], sample_rate: int) -> Audio:
        """Wrap PCM samples of any integer or float dtype, mono or multi-channel (mixed down)."""
        return cls(_to_float32_mono(np.asarray(array)), sample_rate)

    @classmethod
    def silence(cls, seconds: float, sample_rate: int = 16_000) -> Audio:
        """A clip of ``seconds`` of digital silence."""
        return cls(np.zeros(round(seconds * sample_rate), dtype=np.float32), sample_rate)

    @classmethod
    def load(
        cls,
        source: AudioSource,
        *,
        max_seconds: float | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> Audio:
        """Read a file path, raw bytes or a binary file object.

        WAV (PCM 8/16/24/32-bit and float) is read without extra packages. Other containers
        (mp3, m4a/aac, ogg/opus, webm, flac) are decoded with PyAV from the ``media`` extra.
        Decoding is CPU work: from async code call it in a worker thread
        (``await asyncio.to_thread(Audio.load, path)``), as :class:`Conversation` does.

        Raises:
            InvalidInputError: the data is empty, not audio, corrupt, larger than ``max_bytes``
                (checked before reading: a file's size, or reading one byte past the cap from a
                file object) or longer than ``max_seconds`` (checked before decoding
                everything, so a 2-hour file fails fast).
            MissingDependencyError: the format needs the ``media`` extra.
        """
        from .audio_io import decode

        def too_big(size: str, name: str) -> InvalidInputError:
            return InvalidInputError(
                f"{name} is {size}; the limit is {max_bytes} bytes (max_bytes / "
                "TurnOptions.max_input_bytes)"
            )

        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise InvalidInputError(f"audio file not found: {path}")
            size = path.stat().st_size
            if max_bytes is not None and size > max_bytes:
                raise too_big(f"{size} bytes", str(path))
            data = path.read_bytes()
            name = str(path)
        elif isinstance(source, (bytes, bytearray)):
            if max_bytes is not None and len(source) > max_bytes:
                raise too_big(f"{len(source)} bytes", "the audio data")
            data, name = bytes(source), "<bytes>"
        elif hasattr(source, "read"):
            name = getattr(source, "name", "<file>")
            data = source.read() if max_bytes is None else source.read(max_bytes + 1)
            if max_bytes is not None and len(data) > max_bytes:
                raise too_big(f"more than {max_bytes} bytes", str(name))
        else:
            raise InvalidInputError(
                f"cannot read audio from {type(source).__name__}; pass a path, bytes or a file"
            )
        samples, rate = decode(data, name=name, max_seconds=max_seconds)
        return cls(samples, rate)

    @staticmethod
    def concatenate(clips: Iterable[Audio], sample_rate: int | None = None) -> Audio:
        """Join clips end to end, resampling each to ``sample_rate`` (default: the first one's)."""
        parts = list(clips)
        if not parts:
            if sample_rate is None:
                raise InvalidInputError("cannot concatenate zero clips without a sample_rate")
            return Audio(np.zeros(0, dtype=np.float32), sample_rate)
        rate = sample_rate or parts[0].sample_rate
        arrays = [p.resample(rate).samples for p in parts]
        return Audio(np.concatenate(arrays).astype(np.float32, copy=False), rate)

    # -- properties ---------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        """Length in seconds."""
        return int(self.samples.shape[0]) / self.sample_rate

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    def __repr__(self) -> str:
        return f"Audio({self.duration:.3f} s @ {self.sample_rate} Hz)"

    def rms_dbfs(self) -> float:
        """Root-mean-square level in dBFS (-inf for digital silence or an empty clip)."""
        if self.samples.size == 0:
            return float("-inf")
        rms = float(np.sqrt(np.mean(np.square(self.samples, dtype=np.float64))))
        return float(20.0 * np.log10(rms)) if rms > 0 else float("-inf")

    def peak_dbfs(self) -> float:
        """Peak level in dBFS (-inf for digital silence or an empty clip)."""
        if self.samples.size == 0:
            return float("-inf")
        peak = float(np.max(np.abs(self.samples)))
        return float(20.0 * np.log10(peak)) if peak > 0 else float("-inf")

    def is_silent(self, threshold_dbfs: float = -55.0) -> bool:
        """True when the loudest 20 ms window stays below ``threshold_dbfs``."""
        if self.samples.size == 0:
            return True
        win = max(1, self.sample_rate // 50)
        n = self.samples.shape[0] // win
        if n == 0:
            return self.rms_dbfs() < threshold_dbfs
        frames = self.samples[: n * win].reshape(n, win).astype(np.float64)
        loudest = float(np.sqrt(np.mean(frames**2, axis=1)).max())
        return loudest <= 0 or 20.0 * np.log10(loudest) < threshold_dbfs

    # -- conversion ---------------------------------------------------------------------------
    def resample(self, sample_rate: int) -> Audio:
        """Band-limited resampling to ``sample_rate`` (returns ``self`` when it already matches)."""
        rate = _check_rate(sample_rate)
        if rate == self.sample_rate:
            return self
        return Audio(_resample(self.samples, self.sample_rate, rate), rate)

    def slice(self, start: float = 0.0, end: float | None = None) -> Audio:
        """The part between ``start`` and ``end`` seconds."""
        a = max(0, round(start * self.sample_rate))
        b = self.samples.shape[0] if end is None else max(a, round(end * self.sample_rate))
        return Audio(self.samples[a:b], self.sample_rate)

    def to_pcm16(self) -> bytes:
        """Little-endian signed 16-bit PCM bytes."""
        clipped = np.clip(self.samples, -1.0, 1.0)
        return bytes((np.round(clipped * 32767.0)).astype("<i2").tobytes())

    def to_wav_bytes(self) -> bytes:
        """A complete 16-bit PCM WAV file in memory."""
        from .audio_io import encode_wav

        return encode_wav(self.to_pcm16(), self.sample_rate)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a 16-bit PCM WAV file (the only format written without extras)."""
        out = Path(path)
        if out.suffix.lower() not in ("", ".wav", ".wave"):
            raise InvalidInputError(f"Audio.save writes WAV files; got {out.suffix!r} in {out}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.to_wav_bytes())
        return out

    def to_file_like(self) -> io.BytesIO:
        """WAV bytes in a named file object (``audio.wav``), as HTTP multipart uploads expect."""
        buf = io.BytesIO(self.to_wav_bytes())
        buf.name = "audio.wav"
        return buf


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A piece of reply audio as a TTS streams it.

    Attributes:
        samples: mono float32 PCM.
        sample_rate: Hz.
        text: the sentence this chunk speaks (set by the pipeline when the TTS does not).
        sentence_index: which reply sentence the chunk belongs to.
        visemes: mouth-shape cues, times in seconds relative to the start of this chunk, when the
            TTS knows them (phoneme timings or character alignment). Avatars fall back to the
            audio envelope when this is empty.
    """

    samples: np.ndarray
    sample_rate: int
    text: str | None = None
    sentence_index: int = 0
    visemes: tuple[VisemeCue, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample_rate", _check_rate(self.sample_rate))
        samples = self.samples
        if not (
            isinstance(samples, np.ndarray) and samples.dtype == np.float32 and samples.ndim == 1
        ):
            samples = _to_float32_mono(samples)
        object.__setattr__(self, "samples", samples)

    @property
    def duration(self) -> float:
        return int(self.samples.shape[0]) / self.sample_rate

    def to_audio(self) -> Audio:
        return Audio(self.samples, self.sample_rate)

    def __repr__(self) -> str:
        return (
            f"AudioChunk({self.duration * 1000:.0f} ms @ {self.sample_rate} Hz, "
            f"sentence={self.sentence_index}, visemes={len(self.visemes)})"
        )


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One RGB video frame (``height x width x 3``, uint8) at position ``index`` of a ``fps`` clip."""

    image: np.ndarray
    index: int
    fps: float

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            raise InvalidInputError(
                f"a video frame must be an HxWx3 RGB array, got shape {getattr(img, 'shape', None)}"
            )
        if img.dtype != np.uint8:
            raise InvalidInputError(f"a video frame must be uint8, got {img.dtype}")
        if self.fps <= 0:
            raise InvalidInputError(f"fps must be positive, got {self.fps}")

    @property
    def timestamp(self) -> float:
        """Presentation time in seconds from the start of the reply video."""
        return self.index / self.fps

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def __repr__(self) -> str:
        return f"VideoFrame(#{self.index} {self.width}x{self.height} @ {self.fps:g} fps)"
