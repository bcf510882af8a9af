"""DreamTalk's inputs besides the speech: the portrait crop, the style clip and the head pose.

* Portrait: DreamTalk crops a square around the face found by dlib (the box moved up by a tenth
  of its height, widened by 40% on each side) and resizes it to 256x256. lexperience finds the face
  with OpenCV's Haar cascades by default (dlib is a heavy build) and converts the Haar box into the
  box dlib would give: on the 11 portraits measured (DreamTalk's samples and the NASA astronaut
  photo) dlib's box is 0.866 times as wide as Haar's (median; 0.79-1.03) and its centre 0.064 of
  the width lower (median). ``face_detector="dlib"`` uses dlib itself when it is installed;
  ``crop=False`` takes an already cropped portrait as it is (resized to 256x256).
* Style clip: a ``.mat`` of 3DMM coefficients (``coeff``, frames x 257) whose columns 80-143 are
  the 64 expression coefficients (or a ``.txt`` / array of frames x 64), at 25 fps.
* Pose: a ``.mat`` with ``coeff`` (angles in columns 224-226, translation in 254-256) and
  ``transform_params`` (its last three columns: the crop parameters), i.e. 9 numbers per frame; or
  ``"still"`` for DreamTalk's fixed frontal pose.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from .._optional import require
from ..errors import ConfigurationError, InvalidInputError
from ..render.face import Box, find_face
from ..render.image import ImageSource, cv2_module, load_image

__all__ = [
    "CROP_SIZE",
    "STILL_POSE",
    "FaceDetector",
    "PoseSource",
    "StyleSource",
    "crop_portrait",
    "digest",
    "portrait_crop",
    "read_pose",
    "read_style_clip",
    "style_inputs",
]

CROP_SIZE = 256
FaceDetector = Literal["opencv", "dlib"]
StyleSource = Union[str, "os.PathLike[str]", np.ndarray]
PoseSource = Union[str, "os.PathLike[str]", np.ndarray]

#: DreamTalk's fixed frontal head pose (3 angles, 3 translations, 3 crop parameters).
STILL_POSE = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9370641, 126.84911, 129.03864]], np.float32)

_EXP = slice(80, 144)
_ANGLES = slice(224, 227)
_TRANSLATION = slice(254, 257)
_HAAR_TO_DLIB_WIDTH = 0.866
_HAAR_TO_DLIB_DY = 0.064
_LIFT = 0.1  # DreamTalk moves the face box up by a tenth of its height
_MARGIN = 0.4  # and widens it by 40% on each side


def digest(*parts: object) -> str:
    """A content hash of arrays, bytes and strings (for the caches)."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.shape}{part.dtype}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (bytes, bytearray)):
            h.update(bytes(part))
        else:
            h.update(repr(part).encode())
        h.update(b"|")
    return h.hexdigest()


def _loadmat(path: Path, what: str) -> dict[str, Any]:
    scipy_io = require("scipy.io", "dreamtalk", feature=f"reading a DreamTalk {what} (.mat)")
    try:
        data: dict[str, Any] = scipy_io.loadmat(str(path))
    except Exception as exc:
        raise ConfigurationError(f"cannot read the {what} {path} as a .mat file: {exc}") from exc
    return data


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    if array.shape[0] == 0:
        raise ConfigurationError(f"the {name} has no frames")
    if not np.isfinite(array).all():
        raise ConfigurationError(f"the {name} contains NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


def read_style_clip(source: StyleSource, *, dim: int = 64) -> np.ndarray:
    """The expression coefficients of a style clip: ``(frames, 64)`` float32."""
    if isinstance(source, np.ndarray):
        if source.ndim != 2 or source.shape[1] != dim:
            raise ConfigurationError(
                f"a style clip array must be (frames, {dim}), got {source.shape}"
            )
        return _finite(source, "style clip")
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"style clip not found: {path}")
    name = f"style clip {path}"
    if path.suffix.lower() == ".txt":
        try:
            exp = np.atleast_2d(np.loadtxt(path, dtype=np.float32))
        except ValueError as exc:
            raise ConfigurationError(f"cannot read the {name}: {exc}") from exc
        if exp.shape[1] != dim:
            raise ConfigurationError(f"the {name} has {exp.shape[1]} columns; expected {dim}")
        return _finite(exp, name)
    if path.suffix.lower() != ".mat":
        raise ConfigurationError(f"the {name} must be a .mat (3DMM coefficients) or .txt file")
    coeff = np.asarray(_loadmat(path, "style clip").get("coeff", np.zeros((0, 0))))
    if coeff.ndim != 2 or coeff.shape[1] < _EXP.stop:
        raise ConfigurationError(
            f"the {name} is not a DreamTalk style clip: it needs 'coeff' with 257 3DMM "
            f"coefficients per frame, got shape {coeff.shape}"
        )
    return _finite(coeff[:, _EXP], name)


def style_inputs(exp: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The style encoder's inputs: the first ``max_len`` frames, zero-padded, and the padding
    mask (``True`` = padding), as DreamTalk prepares them."""
    frames = exp[:max_len]
    clip = np.zeros((max_len, exp.shape[1]), dtype=np.float32)
    clip[: frames.shape[0]] = frames
    mask = np.arange(max_len) >= frames.shape[0]
    return clip, mask


def read_pose(source: PoseSource | Literal["still"]) -> np.ndarray:
    """A head pose sequence: ``(frames, 9)`` float32 (angles, translation, crop)."""
    if isinstance(source, str) and source == "still":
        still: np.ndarray = STILL_POSE.copy()
        return still
    if isinstance(source, np.ndarray):
        if source.ndim != 2 or source.shape[1] != 9:
            raise ConfigurationError(f"a pose array must be (frames, 9), got {source.shape}")
        return _finite(source, "pose")
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"pose file not found: {path}")
    if path.suffix.lower() != ".mat":
        raise ConfigurationError(f"the pose {path} must be a .mat file (or pose='still')")
    data = _loadmat(path, "pose")
    coeff = np.asarray(data.get("coeff", np.zeros((0, 0))))
    params = np.asarray(data.get("transform_params", np.zeros((0, 0))))
    if coeff.ndim != 2 or coeff.shape[1] < _TRANSLATION.stop or params.ndim != 2:
        raise ConfigurationError(
            f"the pose {path} is not a DreamTalk pose file: it needs 'coeff' (frames x 257) and "
            f"'transform_params' (frames x 5), got {coeff.shape} and {params.shape}"
        )
    if params.shape[0] != coeff.shape[0] or params.shape[1] < 3:
        raise ConfigurationError(f"the pose {path}: 'transform_params' does not match 'coeff'")
    pose = np.concatenate([coeff[:, _ANGLES], coeff[:, _TRANSLATION], params[:, -3:]], axis=1)
    return _finite(pose, f"pose {path}")


def _dlib_box(rgb: np.ndarray) -> Box | None:
    dlib = require("dlib", "dreamtalk", feature="face_detector='dlib'")
    faces = list(dlib.get_frontal_face_detector()(np.ascontiguousarray(rgb), 0))
    if not faces:
        return None
    f = max(faces, key=lambda r: r.width() * r.height())
    return Box(float(f.left()), float(f.top()), float(f.width()), float(f.height()))


def _opencv_box(rgb: np.ndarray) -> Box | None:
    haar = find_face(rgb)
    if haar is None:
        return None
    side = haar.w * _HAAR_TO_DLIB_WIDTH
    cx, cy = haar.cx, haar.cy + _HAAR_TO_DLIB_DY * haar.h
    return Box(cx - side / 2, cy - side / 2, side, side)


def crop_box(face: Box, width: int, height: int) -> tuple[int, int, int]:
    """DreamTalk's square crop ``(x, y, side)`` around a dlib-style face box, shrunk about its
    centre where it would leave the image."""
    side = max(face.w, face.h) * (1 + 2 * _MARGIN)
    cx, cy = face.cx, face.cy - _LIFT * face.h
    half = min(side / 2, cx, width - cx, cy, height - cy)
    half = max(half, 1.0)
    x, y = round(cx - half), round(cy - half)
    s = max(1, min(round(2 * half), width - max(x, 0), height - max(y, 0)))
    return max(x, 0), max(y, 0), s


def crop_portrait(
    image: np.ndarray, *, name: str, crop: bool, detector: FaceDetector
) -> np.ndarray:
    """The 256x256 RGB portrait DreamTalk animates.

    Raises:
        InvalidInputError: no face was found (the message says what helps).
    """
    cv2 = cv2_module()
    h, w = image.shape[:2]
    if crop:
        face = _dlib_box(image) if detector == "dlib" else _opencv_box(image)
        if face is None:
            raise InvalidInputError(
                f"no face found in the portrait {name}: DreamTalk needs a frontal, upright face "
                "(a head-and-shoulders photo at least 256 pixels wide works best). Use another "
                "photo, or pass crop=False if it is already a 256x256 face crop"
            )
        x, y, side = crop_box(face, w, h)
        image = image[y : y + side, x : x + side]
    elif abs(h - w) > 0.05 * max(h, w):
        raise InvalidInputError(
            f"the portrait {name} is {w}x{h}; with crop=False it must be a square face crop "
            "(DreamTalk animates 256x256 portraits). Pass crop=True to crop it"
        )
    size = image.shape[0]
    interp = cv2.INTER_AREA if size > CROP_SIZE else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(image, (CROP_SIZE, CROP_SIZE), interpolation=interp))


_crops: OrderedDict[str, np.ndarray] = OrderedDict()
_crops_lock = threading.Lock()
_CROP_CACHE = 8


def _portrait_key(portrait: ImageSource) -> str:
    if isinstance(portrait, (str, os.PathLike)):
        path = Path(portrait).expanduser()
        try:
            st = path.stat()
        except OSError:
            raise InvalidInputError(f"portrait image not found: {path}") from None
        return digest("path", str(path.resolve()), st.st_size, st.st_mtime_ns)
    if isinstance(portrait, (bytes, bytearray, np.ndarray)):
        return digest("data", portrait)
    raise InvalidInputError(
        f"cannot use a {type(portrait).__name__} as a portrait; pass a path, bytes or an RGB array"
    )


def portrait_crop(
    portrait: ImageSource, crop: bool, detector: FaceDetector
) -> tuple[str, np.ndarray]:
    """``(key, 256x256 crop)``, cropped once per portrait (LRU of 8, shared by all avatars)."""
    key = digest(_portrait_key(portrait), crop, detector)
    with _crops_lock:
        if key in _crops:
            _crops.move_to_end(key)
            return key, _crops[key]
    image, name = load_image(portrait)
    cropped = crop_portrait(image, name=name, crop=crop, detector=detector)
    cropped.setflags(write=False)
    with _crops_lock:
        _crops[key] = cropped
        while len(_crops) > _CROP_CACHE:
            _crops.popitem(last=False)
    return key, cropped
