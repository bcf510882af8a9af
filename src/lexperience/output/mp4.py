"""H.264 + AAC MP4 writing with PyAV (the ``media`` extra), audio and video aligned from 0.

A/V sync: audio frames get explicit ``pts`` from sample 0 in a ``1/sample_rate`` time base, so the
muxer records the AAC encoder's priming samples in the edit list instead of playing them as
sound (leaving ``pts`` unset delays every player's audio by ~46 ms). Video frames get ``pts`` equal
to their index in a ``1/fps`` time base. Tests check the *decoded* file, not the encoder's input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError
from ..media import Audio, VideoFrame

__all__ = ["AI_GENERATED_TAG", "Mp4Writer", "write_mp4"]

#: Metadata written into every file when ``ai_generated_tag`` is on.
AI_GENERATED_TAG = {"comment": "AI-generated with lexperience", "ai_generated": "true"}

_AAC_FRAME = 1024


class Mp4Writer:
    """Write an MP4 incrementally: :meth:`add_frame` and :meth:`add_audio` in any interleaving.

    Use as a context manager, or call :meth:`close`. Frame sizes must stay constant; odd widths or
    heights are padded by one pixel (H.264 4:2:0 needs even sizes).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float,
        sample_rate: int | None,
        crf: int = 23,
        preset: str = "veryfast",
        audio_bitrate: int = 96_000,
        ai_generated_tag: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._av: Any = require("av", "media", feature="writing MP4 video")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.sample_rate = sample_rate
        self._crf, self._preset, self._bitrate = crf, preset, audio_bitrate
        options = {"movflags": "+faststart+use_metadata_tags"}
        self._container = self._av.open(str(self.path), mode="w", format="mp4", options=options)
        self._video: Any = None
        self._audio: Any = None
        self._size: tuple[int, int] | None = None
        self._n_frames = 0
        self._n_samples = 0
        self._pending = np.zeros(0, dtype=np.float32)
        self._closed = False
        self._video_tb = Fraction(1) / self.fps
        try:
            tags = {**(AI_GENERATED_TAG if ai_generated_tag else {}), **(metadata or {})}
            for key, value in tags.items():
                self._container.metadata[key] = value
            if sample_rate is not None:
                self._audio = self._container.add_stream("aac", rate=sample_rate)
                self._audio.bit_rate = audio_bitrate
                self._audio.layout = "mono"
                self._audio.time_base = Fraction(1, sample_rate)
        except BaseException:
            self.abort()
            raise

    # -- video --------------------------------------------------------------------------------
    def add_frame(self, frame: VideoFrame | np.ndarray) -> None:
        image = frame.image if isinstance(frame, VideoFrame) else np.asarray(frame)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError("frames must be HxWx3 uint8 RGB arrays")
        h, w = image.shape[:2]
        if self._video is None:
            self._size = (w + (w & 1), h + (h & 1))
            self._video = self._container.add_stream("libx264", rate=self.fps)
            self._video.width, self._video.height = self._size
            self._video.pix_fmt = "yuv420p"
            self._video.time_base = self._video_tb
            self._video.options = {"crf": str(self._crf), "preset": self._preset}
        assert self._size is not None
        if (w + (w & 1), h + (h & 1)) != self._size:
            raise InvalidInputError(
                f"frame {self._n_frames} is {w}x{h}; earlier frames were {self._size[0]}x"
                f"{self._size[1]}"
            )
        if (w, h) != self._size:
            image = np.pad(image, ((0, self._size[1] - h), (0, self._size[0] - w), (0, 0)), "edge")
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        vf.pts = self._n_frames
        vf.time_base = self._video_tb  # not stream.time_base: the muxer changes that
        self._n_frames += 1
        self._mux(self._video.encode(vf))
        if self._n_frames == 1 and self._audio is not None:
            self._drain_audio()  # audio that arrived before the first frame

    # -- audio --------------------------------------------------------------------------------
    def add_audio(self, audio: Audio | np.ndarray) -> None:
        if self._audio is None or self.sample_rate is None:
            raise InvalidInputError("this writer was opened without audio (sample_rate=None)")
        if isinstance(audio, Audio):
            audio = audio.resample(self.sample_rate).samples
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, samples])
        if self._video is None:
            return  # hold audio until the video stream exists: muxing writes the header
        self._drain_audio()

    def _drain_audio(self) -> None:
        while self._pending.shape[0] >= _AAC_FRAME:
            self._encode_audio(self._pending[:_AAC_FRAME])
            self._pending = self._pending[_AAC_FRAME:]

    def _encode_audio(self, block: np.ndarray) -> None:
        af = self._av.AudioFrame.from_ndarray(
            np.clip(block, -1, 1).reshape(1, -1).astype(np.float32), format="flt", layout="mono"
        )
        af.sample_rate = self.sample_rate
        af.pts = self._n_samples
        af.time_base = Fraction(1, self.sample_rate)
        self._n_samples += block.shape[0]
        self._mux(self._audio.encode(af))

    # -- lifecycle ----------------------------------------------------------------------------
    def _mux(self, packets: Iterable[Any]) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> Path:
        """Flush the encoders and finish the file; returns its path."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            if self._audio is not None:
                self._drain_audio()
                if self._pending.size:
                    self._encode_audio(self._pending)
                    self._pending = np.zeros(0, dtype=np.float32)
                self._mux(self._audio.encode(None))
            if self._video is not None:
                self._mux(self._video.encode(None))
        finally:
            self._container.close()
        return self.path

    def abort(self) -> None:
        """Close the file without flushing the encoders (after an error); never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:  # the container is already broken; the original error matters
            pass

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()  # flushing a failed encoder could hide the error that got us here

    @property
    def frames_written(self) -> int:
        return self._n_frames


def write_mp4(
    path: str | os.PathLike[str],
    *,
    frames: Iterable[VideoFrame | np.ndarray],
    fps: float,
    audio: Audio | None = None,
    ai_generated_tag: bool = True,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a whole clip: every frame, then the audio, into an H.264 + AAC MP4 at ``path``."""
    writer = Mp4Writer(
        path,
        fps=fps,
        sample_rate=audio.sample_rate if audio is not None else None,
        ai_generated_tag=ai_generated_tag,
        metadata=metadata,
    )
    with writer:
        for frame in frames:
            writer.add_frame(frame)
        if audio is not None:
            writer.add_audio(audio)
    if writer.frames_written == 0:
        raise InvalidInputError("write_mp4 needs at least one video frame")
    return writer.path
