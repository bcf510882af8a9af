"""Reading portrait images of any common kind into one representation: RGB ``uint8``.

:func:`load_image` accepts a path, encoded bytes or a numpy array and normalises whatever it gets:
grayscale, grayscale + alpha, RGBA/BGRA (composited on a background colour), 16-bit and float
images, CMYK JPEGs, EXIF-rotated photos. Huge images are downscaled once, right after decoding,
so later steps never touch more than :data:`MAX_SIDE` pixels per side.

Decoding uses OpenCV (``cv2.imdecode``) from the ``portrait`` extra, imported lazily.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from .._optional import require
from ..errors import InvalidInputError

__all__ = ["MAX_FILE_BYTES", "MAX_SIDE", "MIN_SIDE", "ImageSource", "cv2_module", "load_image"]

#: Anything :func:`load_image` accepts.
ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, np.ndarray]

#: Images larger than this (either side) are downscaled right after decoding.
MAX_SIDE = 2048
#: Images smaller than this (either side) cannot hold a usable face.
MIN_SIDE = 64
#: Encoded files larger than this are refused before decoding.
MAX_FILE_BYTES = 200 * 1024 * 1024

_CV2: Any = None


def cv2_module() -> Any:
    """OpenCV, imported once (raises MissingDependencyError naming the ``portrait`` extra)."""
    global _CV2
    if _CV2 is None:
        _CV2 = require("cv2", "portrait", feature="the portrait avatar")
    return _CV2


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Scale an image of any numeric dtype to uint8."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind == "u" or arr.dtype.kind == "i":
        info = np.iinfo(arr.dtype)
        if arr.dtype.itemsize == 1:  # int8
            return (arr.astype(np.int16) - info.min).astype(np.uint8)
        top = float(info.max)
        if arr.dtype.kind == "i":
            arr = np.clip(arr, 0, None)
        scaled = np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255)
        return np.asarray(np.round(scaled), dtype=np.uint8)
    if arr.dtype.kind == "f":
        if arr.size and not np.isfinite(arr).all():
            raise InvalidInputError(f"the portrait image {name} contains NaN or infinite values")
        peak = float(arr.max()) if arr.size else 1.0
        scale = 255.0 if peak <= 1.0 + 1e-6 else 1.0  # [0, 1] floats, or floats already in 0-255
        return np.asarray(np.round(np.clip(arr.astype(np.float64) * scale, 0, 255)), dtype=np.uint8)
    raise InvalidInputError(f"the portrait image {name} has an unsupported pixel type {arr.dtype}")


def _composite(
    color: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int]
) -> np.ndarray:
    """Blend ``color`` (HxWx3 uint8) over a flat ``background`` using ``alpha`` (HxW uint8)."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    bg = np.asarray(background, dtype=np.float32)
    out = color.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _normalise_channels(
    arr: np.ndarray, *, bgr: bool, background: tuple[int, int, int], name: str
) -> np.ndarray:
    """Any of HxW, HxWx1, HxWx2 (gray + alpha), HxWx3, HxWx4 -> HxWx3 RGB uint8."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise InvalidInputError(
            f"the portrait image {name} has shape {arr.shape}; expected HxW, HxWx3 or HxWx4"
        )
    img = _to_uint8(arr, name)
    channels = img.shape[2]
    if channels == 1:
        return np.repeat(img, 3, axis=2)
    if channels == 2:
        gray = np.repeat(img[..., :1], 3, axis=2)
        return _composite(gray, img[..., 1], background)
    color = img[..., :3][..., ::-1] if bgr else img[..., :3]
    if channels == 4:
        return _composite(np.ascontiguousarray(color), img[..., 3], background)
    return np.ascontiguousarray(color)


def _downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    cv2 = cv2_module()
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def _read_source(source: ImageSource) -> tuple[bytes, str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"portrait image not found: {path}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidInputError(
                f"the portrait image {path} is {size / 1e6:.0f} MB; the limit is "
                f"{MAX_FILE_BYTES / 1e6:.0f} MB"
            )
        return path.read_bytes(), str(path)
    if isinstance(source, (bytes, bytearray)):
        if len(source) > MAX_FILE_BYTES:
            raise InvalidInputError(f"the portrait image is {len(source) / 1e6:.0f} MB; too big")
        return bytes(source), "<bytes>"
    raise InvalidInputError(
        f"cannot read a portrait from {type(source).__name__}; pass a path, bytes or an RGB array"
    )


def _keep_channels(data: bytes) -> bool:
    """Whether a file must be decoded with all its channels: PNG or WebP with alpha, TIFF, and
    formats we cannot tell (JPEG and opaque PNG/WebP decode in colour mode)."""
    if data[:3] == b"\xff\xd8\xff":  # JPEG: never alpha (CMYK is converted by colour mode)
        return False
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        color_type = data[25] if len(data) > 25 else 0
        return color_type in (4, 6) or b"tRNS" in data[:65536]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        if kind == b"VP8X":
            return bool(data[20] & 0x10) if len(data) > 20 else True
        if kind == b"VP8L":  # lossless: the alpha hint is bit 28 of the header
            return bool(data[24] & 0x10) if len(data) > 24 else True
        return False
    return True


def load_image(
    source: ImageSource,
    *,
    background: tuple[int, int, int] = (236, 236, 236),
    max_side: int = MAX_SIDE,
    min_side: int = MIN_SIDE,
) -> tuple[np.ndarray, str]:
    """Read ``source`` into an RGB ``uint8`` array; returns ``(image, name)``.

    ``source`` is a file path, encoded image bytes (PNG, JPEG incl. CMYK, WebP, BMP, TIFF, ...)
    or a numpy array (HxW gray, HxWx3 RGB, HxWx4 RGBA; any integer or float dtype). Transparent
    pixels are composited on ``background``. Images larger than ``max_side`` are downscaled.

    Raises:
        InvalidInputError: the file is missing, not an image, corrupt, or smaller than
            ``min_side`` pixels on a side; the message names the file.
    """
    cv2 = cv2_module()
    if isinstance(source, np.ndarray):
        name = f"<array {tuple(source.shape)} {source.dtype}>"
        rgb = _normalise_channels(np.asarray(source), bgr=False, background=background, name=name)
    else:
        data, name = _read_source(source)
        if not data:
            raise InvalidInputError(f"the portrait image {name} is empty (0 bytes)")
        buf = np.frombuffer(data, dtype=np.uint8)
        # One decode, in the mode the file needs (read from its header): IMREAD_COLOR applies
        # the EXIF orientation and converts gray/CMYK to BGR (ANYDEPTH keeps 16-bit data, which
        # we scale ourselves); files with an alpha channel are read UNCHANGED so that we
        # composite them, and so are TIFFs (OpenCV applies a TIFF's orientation tag in any mode).
        flags = (
            cv2.IMREAD_UNCHANGED if _keep_channels(data) else cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
        )
        try:
            raw = cv2.imdecode(buf, flags)
        except cv2.error:
            raw = None
        if raw is None or raw.size == 0:
            raise InvalidInputError(
                f"cannot read {name} as an image: it is not a PNG, JPEG, WebP, BMP or TIFF file, "
                "or it is corrupt"
            )
        rgb = _normalise_channels(raw, bgr=True, background=background, name=name)
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        raise InvalidInputError(
            f"the portrait image {name} is only {w}x{h} pixels; a face needs at least "
            f"{min_side}x{min_side} (a head-and-shoulders photo of 512 pixels or more works best)"
        )
    return _downscale(rgb, max_side), name
