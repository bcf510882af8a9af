"""The video clips the simulated lip-sync model returns (H.264 MP4, encoded with PyAV)."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..._optional import require

__all__ = ["encode_clip", "gradient_clip", "grey_ramp_clip"]


def encode_clip(images: Sequence[np.ndarray], fps: int = 25) -> bytes:
    """An H.264 MP4 (moov first) of RGB ``images`` (uint8, height x width x 3, even sizes)."""
    if not images:
        raise ValueError("a clip needs at least one frame")
    av = require("av", "media", feature="the wire server's output clips")
    height, width = images[0].shape[:2]
    with tempfile.TemporaryDirectory() as folder:  # faststart rewrites the file: a real one
        path = Path(folder) / "clip.mp4"
        options = {"movflags": "+faststart"}
        with av.open(str(path), mode="w", format="mp4", options=options) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast"}
            for image in images:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path.read_bytes()


def grey_ramp_clip(
    frames: int = 50, base: int = 20, step: int = 4, size: tuple[int, int] = (64, 48), fps: int = 25
) -> bytes:
    """A clip whose frame ``i`` is a flat grey of value ``base + step * i`` (tests can tell
    which frame they see)."""
    width, height = size
    return encode_clip(
        [np.full((height, width, 3), base + step * i, dtype=np.uint8) for i in range(frames)], fps
    )


def gradient_clip(audio_s: float, size: int = 256, fps: int = 25) -> bytes:
    """A moving gradient at least ``audio_s`` long (whole seconds plus one)."""
    frames = (math.ceil(audio_s) + 1) * fps
    y, x = np.mgrid[0:size, 0:size]
    images = [
        np.stack([(x + 3 * i) % 256, (y + 2 * i) % 256, np.full_like(x, 128)], axis=-1).astype(
            np.uint8
        )
        for i in range(max(1, frames))
    ]
    return encode_clip(images, fps)
