"""Replicate lip-sync model specs and the streaming decoding of their output clips (used by
:mod:`lexperience.backends.replicate_avatar`)."""

from __future__ import annotations

import bisect
import io
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import numpy as np

from .._optional import require
from ..errors import ConfigurationError

log = logging.getLogger(__name__)

__all__ = [
    "DREAMTALK",
    "MODELS",
    "SADTALKER",
    "ClipFrames",
    "NotAVideoError",
    "ReplicateModel",
    "decode_clip",
    "sample_frames",
]


@dataclass(frozen=True)
class ReplicateModel:
    """How to call one lip-sync model on Replicate.

    Attributes:
        name: ``owner/model``.
        version: the version id to run; ``None`` runs the latest version (looked up once), or
            the model itself for ``official`` models.
        image_input: the input that takes the portrait.
        audio_input: the input that takes the sentence audio (a WAV file).
        inputs: every other input, sent as is with each prediction.
        official: an "official" model, run through ``/v1/models/{name}/predictions`` (no version).
        output_key: when the output is an object, the key that holds the video URL.
        min_audio_seconds: shorter sentences are padded with silence for the model (some fail on
            very short audio); only the frames of the real audio are used.
    """

    name: str
    version: str | None = None
    image_input: str = "image"
    audio_input: str = "audio"
    inputs: Mapping[str, Any] = field(default_factory=dict)
    official: bool = False
    output_key: str | None = None
    min_audio_seconds: float = 0.5

    def __post_init__(self) -> None:
        owner, _, model = self.name.partition("/")
        if not owner or not model or "/" in model or ":" in model:
            raise ConfigurationError(f"a Replicate model name is 'owner/model', got {self.name!r}")
        if self.image_input == self.audio_input:
            raise ConfigurationError("image_input and audio_input must be different inputs")
        object.__setattr__(self, "inputs", dict(self.inputs))

    @classmethod
    def parse(cls, spec: str | ReplicateModel | Mapping[str, Any]) -> ReplicateModel:
        """A built-in name (``dreamtalk``, ``sadtalker``), ``owner/model[:version]``, a mapping
        of this class's fields, or a :class:`ReplicateModel`."""
        if isinstance(spec, ReplicateModel):
            return spec
        if isinstance(spec, Mapping):
            try:
                return cls(**dict(spec))
            except TypeError as exc:
                raise ConfigurationError(f"bad Replicate model spec: {exc}") from exc
        if not isinstance(spec, str) or not spec:
            raise ConfigurationError(f"cannot use {spec!r} as a Replicate model")
        if spec.lower() in MODELS:
            return MODELS[spec.lower()]
        name, _, version = spec.partition(":")
        for preset in MODELS.values():  # "cjwbw/dreamtalk:<other version>" keeps its inputs
            if preset.name == name:
                return replace(preset, version=version or preset.version)
        return cls(name=name, version=version or None)


#: DreamTalk, as the prototype ran it (inputs from its call; version pinned).
DREAMTALK = ReplicateModel(
    name="cjwbw/dreamtalk",
    version="c52a2bad8c0bdf9645609de071dddb1ddab0b396b8bf7096027819473a85b4ca",
    image_input="image",
    audio_input="audio",
    inputs={
        "style_clip": "data/style_clip/3DMM/M030_front_neutral_level1_001.mat",
        "pose": "data/pose/RichardShelby_front_neutral_level1_001.mat",
        "num_inference_steps": 10,
        "cfg_scale": 1.0,
        "crop_image": True,
        "max_gen_len": 1000,
    },
)

#: SadTalker (``cjwbw/sadtalker``): head motion and blinks, slower than DreamTalk.
SADTALKER = ReplicateModel(
    name="cjwbw/sadtalker",
    version="3aa3dac9353cc4d6bd62a8f95957bd844003b401ca4e4a9b33baa574c549d376",
    image_input="source_image",
    audio_input="driven_audio",
    inputs={"still": True, "preprocess": "full", "enhancer": "gfpgan"},
)

MODELS: dict[str, ReplicateModel] = {"dreamtalk": DREAMTALK, "sadtalker": SADTALKER}


class NotAVideoError(Exception):
    """The output is not a video (``retryable`` when it looks like a truncated one)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _sniff(data: bytes) -> str | None:
    head = bytes(data[:16])
    if head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or head[:4] == b"RIFF":
        return "video"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    stripped = head.lstrip()
    if stripped.startswith((b"{", b"[")):
        return "JSON"
    if stripped[:1] == b"<":
        return "HTML/XML text"
    return None


def _fit(frame: Any, size: tuple[int, int]) -> np.ndarray:
    """An RGB array of exactly ``size`` (w, h): the frame scaled to fit, centred on black."""
    width, height = size
    w, h = int(frame.width), int(frame.height)
    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    image = frame.reformat(width=nw, height=nh, format="rgb24").to_ndarray()
    if (nw, nh) == (width, height):
        return np.ascontiguousarray(image)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    canvas[y : y + nh, x : x + nw] = image
    return canvas


def _open(source: bytes | BinaryIO) -> tuple[Any, Any, str | None]:
    """Open a video container on ``source``: (container, its video stream, sniffed kind)."""
    stream_in: BinaryIO = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    stream_in.seek(0)
    kind = _sniff(stream_in.read(16))
    stream_in.seek(0)
    if kind is not None and kind != "video":
        raise NotAVideoError(f"the model returned {kind}, not a video", retryable=False)
    av = require("av", "replicate", feature="the Replicate avatar")
    try:
        container = av.open(stream_in, mode="r")
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise NotAVideoError(
            f"the output is not a readable video ({type(exc).__name__})", retryable=kind == "video"
        ) from exc
    if not container.streams.video:
        container.close()
        raise NotAVideoError("the output file has no video stream", retryable=False)
    return container, container.streams.video[0], kind


def _timed(container: Any, stream: Any) -> Iterator[tuple[Any, float]]:
    """Decoded frames and their times in seconds from the first one (never decreasing).

    A clip cut short ends early (with a warning) once at least one frame has decoded."""
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    first: float | None = None
    last = 0.0
    count = 0
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            break
        except Exception as exc:  # a truncated file: keep what decoded, if anything
            if count == 0:
                raise NotAVideoError(
                    f"the video could not be decoded ({type(exc).__name__})", retryable=True
                ) from exc
            log.warning("replicate avatar: the clip was cut short after %d frames", count)
            break
        t = float(frame.time) if frame.time is not None else count / rate
        first = t if first is None else first
        last = max(last, t - first)
        count += 1
        yield frame, last
    if count == 0:
        raise NotAVideoError("the video has no frames", retryable=True)


def decode_clip(
    source: bytes | BinaryIO, size: tuple[int, int]
) -> Iterator[tuple[np.ndarray, float]]:
    """Decode an MP4 (or other video) lazily: RGB frames fitted to ``size`` and their times in
    seconds from the first frame, one at a time (a long clip is never all in memory).

    ``source`` is the file's bytes or a seekable binary file.

    Raises:
        NotAVideoError: not a video, no video stream, or nothing decodable (on the first
            ``next()``).
    """
    container, stream, _ = _open(source)
    try:
        for frame, t in _timed(container, stream):
            yield _fit(frame, size), t
    finally:
        container.close()


class ClipFrames:
    """Exactly ``count`` frames at ``fps`` from one clip, decoded as they are taken.

    Output frame ``i`` shows the latest source frame whose time has come (``i / fps``): frames
    are dropped or repeated as the rates differ, and the last one is held when the clip is
    shorter than the audio. Only the frames shown are scaled. Opening decodes the first frame,
    so a clip that is not a video fails at once. :meth:`take` and :meth:`close` are blocking
    (call them in a worker thread); a lock keeps them from overlapping.

    Raises:
        NotAVideoError: see :func:`decode_clip`.
    """

    def __init__(
        self,
        source: bytes | BinaryIO,
        size: tuple[int, int],
        count: int,
        fps: float,
    ) -> None:
        self.size = size
        self.count = count
        self.fps = fps
        self.taken = 0
        self.last_time = 0.0  # time of the last source frame seen
        self.ended = False  # the source has no more frames
        self._lock = threading.Lock()
        self._source = source
        self._container, stream, _ = _open(source)
        try:
            self._frames = _timed(self._container, stream)
            self._current = next(self._frames)
        except BaseException:
            self.close()
            raise
        self._next: tuple[Any, float] | None = None
        self._fitted: np.ndarray | None = None
        self._advance()

    def _advance(self) -> None:
        try:
            self._next = next(self._frames)
        except StopIteration:
            self._next, self.ended = None, True
        except NotAVideoError:  # pragma: no cover - only before the first frame
            self._next, self.ended = None, True

    @property
    def remaining(self) -> int:
        return self.count - self.taken

    def take(self, n: int) -> list[np.ndarray]:
        """The next ``n`` output frames (fewer at the end)."""
        with self._lock:
            out: list[np.ndarray] = []
            while len(out) < n and self.taken < self.count:
                due = self.taken / self.fps + 1e-6
                while self._next is not None and self._next[1] <= due:
                    self._current, self._fitted = self._next, None
                    self._advance()
                if self._fitted is None:
                    self._fitted = _fit(self._current[0], self.size)
                    self.last_time = self._current[1]
                out.append(self._fitted)
                self.taken += 1
            return out

    def covered_seconds(self) -> float:
        """How much time the clip covered (its last frame's time plus one frame)."""
        return self.last_time + 1.0 / self.fps

    def close(self) -> None:
        """Release the decoder (and the downloaded file, if it is a file)."""
        with self._lock:
            container, self._container = self._container, None
            if container is not None:
                container.close()
            close = getattr(self._source, "close", None)
            if close is not None:
                close()


def sample_frames(times: list[float], count: int, fps: float) -> list[int]:
    """Which source frame to show at each of ``count`` output frames at ``fps``: the latest
    source frame whose time has come (dropping or repeating frames as the rates differ; the
    last frame holds when the clip is shorter than the audio)."""
    picks: list[int] = []
    for i in range(count):
        j = bisect.bisect_right(times, i / fps + 1e-6) - 1
        picks.append(min(max(j, 0), len(times) - 1))
    return picks
