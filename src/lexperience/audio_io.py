"""Reading and writing audio containers.

WAV is parsed here with no dependency (PCM 8/16/24/32-bit, IEEE float, WAVE_FORMAT_EXTENSIBLE).
Everything else goes through PyAV (the ``media`` extra), which bundles FFmpeg's decoders.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from ._optional import is_installed, require
from .errors import InvalidInputError

__all__ = ["decode", "encode_wav", "sniff_format"]

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


def sniff_format(data: bytes) -> str | None:
    """Guess the container from magic bytes: ``wav``, ``mp3``, ``ogg``, ``flac``, ``mp4``, ``webm``."""
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


def decode(
    data: bytes, *, name: str = "<bytes>", max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode a whole audio file into mono float32 samples and their sample rate."""
    if not data:
        raise InvalidInputError(f"{name} is empty (0 bytes)")
    kind = sniff_format(data)
    if kind == "wav":
        return _decode_wav(data, name=name, max_seconds=max_seconds)
    if kind is None and not is_installed("av"):
        raise InvalidInputError(
            f"{name} is not in a recognised audio format (expected WAV, MP3, M4A/AAC, OGG/Opus, "
            "FLAC or WebM)"
        )
    return _decode_av(data, name=name, max_seconds=max_seconds)


def _too_long(name: str, seconds: float, limit: float) -> InvalidInputError:
    return InvalidInputError(
        f"{name} is {seconds:.0f} s long; the limit is {limit:.0f} s. Trim it or raise max_seconds"
    )


def _decode_wav(data: bytes, *, name: str, max_seconds: float | None) -> tuple[np.ndarray, int]:
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    payload: bytes | None = None
    while pos + 8 <= len(data):
        cid, size = struct.unpack("<4sI", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise InvalidInputError(f"{name}: corrupt WAV (short fmt chunk)")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            payload = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise InvalidInputError(f"{name}: corrupt WAV (missing fmt or data chunk)")
    tag, channels, rate, bits = fmt
    if channels < 1 or rate < 1 or bits not in (8, 16, 24, 32, 64):
        raise InvalidInputError(f"{name}: unsupported WAV ({channels} ch, {rate} Hz, {bits} bit)")
    frame_bytes = channels * bits // 8
    n_frames = len(payload) // frame_bytes
    if n_frames == 0:
        raise InvalidInputError(f"{name} holds no audio samples")
    if max_seconds is not None and n_frames / rate > max_seconds:
        raise _too_long(name, n_frames / rate, max_seconds)
    payload = payload[: n_frames * frame_bytes]
    if tag == _FLOAT and bits in (32, 64):
        arr = np.frombuffer(payload, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    elif tag == _PCM:
        if bits == 8:
            arr = (np.frombuffer(payload, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        elif bits == 16:
            arr = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
        elif bits == 24:
            raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            ints = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
            arr = ints.astype(np.float32) / float(1 << 23)
        elif bits == 32:
            arr = (np.frombuffer(payload, dtype="<i4").astype(np.float64) / 2**31).astype(
                np.float32
            )
        else:
            raise InvalidInputError(f"{name}: unsupported 64-bit integer WAV")
    else:
        raise InvalidInputError(f"{name}: unsupported WAV encoding (format tag {tag:#06x})")
    if channels > 1:
        arr = arr.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{name} contains NaN or infinite samples")
    return np.ascontiguousarray(arr, dtype=np.float32), rate


def _decode_av(data: bytes, *, name: str, max_seconds: float | None) -> tuple[np.ndarray, int]:
    av = require("av", "media", feature=f"reading {sniff_format(data) or 'this'} audio")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise InvalidInputError(
            f"{name} is not audio: expected WAV, MP3, M4A/AAC, OGG/Opus, FLAC or WebM "
            f"(the decoder said: {exc})"
        ) from exc
    with container:
        if not container.streams.audio:
            raise InvalidInputError(f"{name} has no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or stream.rate or 0)
        if rate <= 0:
            raise InvalidInputError(f"{name}: the audio stream has no sample rate")
        if max_seconds is not None and container.duration:
            seconds = container.duration / 1_000_000
            if seconds > max_seconds:
                raise _too_long(name, seconds, max_seconds)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts: list[np.ndarray] = []
        total = 0
        limit = None if max_seconds is None else int(max_seconds * rate) + 1
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    parts.append(arr)
                    total += arr.shape[0]
                if limit is not None and total > limit:
                    raise _too_long(name, total / rate, max_seconds or 0)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise InvalidInputError(f"{name} is corrupt audio ({exc})") from exc
    if not parts or sum(p.shape[0] for p in parts) == 0:
        raise InvalidInputError(f"{name} holds no audio samples")
    samples = np.concatenate(parts).astype(np.float32, copy=False)
    if not np.isfinite(samples).all():
        raise InvalidInputError(f"{name} contains NaN or infinite samples")
    return samples, rate


def encode_wav(pcm16: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap little-endian 16-bit PCM in a WAV header."""
    block = channels * 2
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm16),
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        16,
        b"data",
        len(pcm16),
    )
    return header + pcm16
