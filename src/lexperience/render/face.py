"""Finding a face in a portrait and framing it: Haar cascades (OpenCV) plus simple geometry.

:func:`find_face` locates the largest roughly frontal face; :func:`frame_portrait` crops a square
head-and-shoulders view around it at the output size; :func:`locate_features` then finds the eyes
(eye cascade), the mouth (smile cascade, refined by the darkest row between the lips) and the chin,
and returns a :class:`FaceLayout` in output pixels. Parts a cascade misses are placed by the usual
proportions of a face, and :attr:`FaceLayout.found` says which parts were detected.

Haar cascades need a roughly frontal, upright, evenly lit face; profiles, strong tilts, heavy
occlusion (hands, large sunglasses) or drawings often go undetected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .image import cv2_module

__all__ = [
    "Box",
    "Eye",
    "FaceLayout",
    "Mouth",
    "find_face",
    "frame_portrait",
    "locate_features",
]

#: The smallest detected face (in pixels of the loaded image) that still animates decently.
MIN_FACE = 40

#: Share of the output width the face takes after framing (head and shoulders).
FACE_SHARE = 0.40
#: Framing never enlarges the source more than this (a small face stays small, not blurry).
MAX_UPSCALE = 2.0


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in pixels."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def scaled(self, s: float, dx: float = 0.0, dy: float = 0.0) -> Box:
        """This box after ``p -> p * s + (dx, dy)``."""
        return Box(self.x * s + dx, self.y * s + dy, self.w * s, self.h * s)


@dataclass(frozen=True)
class Eye:
    """The visible eye opening: centre, width (corner to corner) and height (lid to lid)."""

    cx: float
    cy: float
    w: float
    h: float


@dataclass(frozen=True)
class Mouth:
    """The closed mouth: ``cy`` is the line between the lips at the centre, ``w`` corner to
    corner, ``lip_h`` the height of both lips together, ``curve`` how much higher the corners
    are than the centre (a smile; negative: lower)."""

    cx: float
    cy: float
    w: float
    lip_h: float
    curve: float = 0.0

    def line_y(self, x: np.ndarray) -> np.ndarray:
        """The row of the line between the lips at each column ``x``."""
        u = np.clip((x - self.cx) / max(self.w / 2, 1e-3), -1.3, 1.3)
        return (self.cy - self.curve * u * u).astype(np.float32)


@dataclass(frozen=True)
class FaceLayout:
    """Where the parts of the face are, in pixels of the (framed) image.

    Attributes:
        face: the face box (brows to below the mouth, as Haar cascades report it).
        eyes: the two eyes, image-left first.
        mouth: the closed mouth.
        chin_y: the bottom of the chin.
        found: which parts a detector found (``"face"``, ``"eyes"``, ``"mouth"``); parts not
            found were placed by the proportions of an average face.
    """

    face: Box
    eyes: tuple[Eye, Eye]
    mouth: Mouth
    chin_y: float
    found: dict[str, bool] = field(default_factory=dict)

    def mouth_box(self, max_open: float = 0.42) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the region the mouth covers when fully open."""
        m = self.mouth
        x0 = m.cx - 0.62 * m.w
        x1 = m.cx + 0.62 * m.w
        y0 = m.cy - 0.6 * m.lip_h - 0.3 * max_open * m.w
        y1 = m.cy + 0.6 * m.lip_h + max_open * m.w
        return round(x0), round(y0), round(x1), round(y1)


# -- cascades ---------------------------------------------------------------------------------
_CASCADES: dict[str, Any] = {}


def _cascade(name: str) -> Any:
    if name not in _CASCADES:
        cv2 = cv2_module()
        path = cv2.data.haarcascades + name
        clf = cv2.CascadeClassifier(path)
        if clf.empty():  # pragma: no cover - a broken OpenCV install
            raise RuntimeError(f"cannot load the Haar cascade {path}")
        _CASCADES[name] = clf
    return _CASCADES[name]


def _gray(rgb: np.ndarray) -> np.ndarray:
    cv2 = cv2_module()
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _detect(gray: np.ndarray, cascade: str, neighbours: int, min_size: int) -> list[Box]:
    found = _cascade(cascade).detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=neighbours, minSize=(min_size, min_size)
    )
    return [Box(float(x), float(y), float(w), float(h)) for (x, y, w, h) in found]


def find_face(rgb: np.ndarray) -> Box | None:
    """The largest roughly frontal face in ``rgb`` (pixels of ``rgb``), or ``None``.

    Detection runs on a copy at most 800 pixels wide, with histogram equalisation, trying the
    default frontal cascade first and the ``alt2`` cascade if it finds nothing.
    """
    cv2 = cv2_module()
    h, w = rgb.shape[:2]
    scale = min(1.0, 800.0 / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                                 interpolation=cv2.INTER_AREA)  # fmt: skip
    gray = cv2.equalizeHist(_gray(small))
    min_size = max(24, round(0.06 * min(gray.shape)))
    faces: list[Box] = []
    for cascade, neighbours in (
        ("haarcascade_frontalface_default.xml", 5),
        ("haarcascade_frontalface_alt2.xml", 4),
    ):
        faces = _detect(gray, cascade, neighbours, min_size)
        if faces:
            break
    if not faces:
        return None
    best = max(faces, key=lambda b: b.w * b.h)
    return best.scaled(1.0 / scale)


def frame_portrait(rgb: np.ndarray, face: Box, size: int) -> tuple[np.ndarray, Box]:
    """Crop a square head-and-shoulders view around ``face`` and resize it to ``size``.

    The face takes about :data:`FACE_SHARE` of the width, its centre sits a little above the
    middle; the crop stays inside the image (a face close to an edge is framed off-centre) and
    never enlarges the source more than :data:`MAX_UPSCALE` times. Returns the framed image and
    the face box in its pixels.
    """
    cv2 = cv2_module()
    h, w = rgb.shape[:2]
    side = max(face.w / FACE_SHARE, size / MAX_UPSCALE)
    side = min(side, float(min(h, w)))
    x0 = face.cx - side / 2
    y0 = face.cy - 0.45 * side
    x0 = min(max(0.0, x0), w - side)
    y0 = min(max(0.0, y0), h - side)
    ix0, iy0, iside = round(x0), round(y0), max(1, round(side))
    ix0 = min(max(0, ix0), w - iside)
    iy0 = min(max(0, iy0), h - iside)
    crop = rgb[iy0 : iy0 + iside, ix0 : ix0 + iside]
    interp = cv2.INTER_AREA if iside > size else cv2.INTER_CUBIC
    out = np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interp))
    s = size / iside
    return out, face.scaled(s, -ix0 * s, -iy0 * s)


def _pick_eyes(candidates: list[Box], face: Box) -> tuple[Box | None, Box | None]:
    """The best image-left and image-right eye among cascade hits inside the face box."""
    left: Box | None = None
    right: Box | None = None
    expected_y = face.y + 0.40 * face.h
    for b in candidates:
        if not (0.12 * face.w <= b.w <= 0.42 * face.w):
            continue
        if not (face.y + 0.15 * face.h <= b.cy <= face.y + 0.58 * face.h):
            continue
        score = abs(b.cy - expected_y)
        if b.cx < face.cx - 0.05 * face.w:
            if left is None or score < abs(left.cy - expected_y):
                left = b
        elif b.cx > face.cx + 0.05 * face.w and (
            right is None or score < abs(right.cy - expected_y)
        ):
            right = b
    if left is not None and right is not None:
        gap = right.cx - left.cx
        if not (0.25 * face.w <= gap <= 0.7 * face.w) or abs(right.cy - left.cy) > 0.15 * face.h:
            # An implausible pair: keep the one nearer its expected place.
            el = abs(left.cx - (face.x + 0.3 * face.w)) + abs(left.cy - expected_y)
            er = abs(right.cx - (face.x + 0.7 * face.w)) + abs(right.cy - expected_y)
            if el <= er:
                right = None
            else:
                left = None
    return left, right


def _eye_from_box(b: Box) -> Eye:
    w = 0.6 * b.w
    return Eye(b.cx, b.cy + 0.04 * b.h, w, 0.36 * w)


def _line_in_strip(gray: np.ndarray, white: np.ndarray, skin_white: float) -> float | None:
    """The row of the line between the lips in a strip of rows around the mouth, or ``None``.

    With teeth showing (a run of whitish rows), the line is where the upper and lower teeth
    meet, or the bottom of the teeth; otherwise it is the darkest row (the shadow between the
    lips).
    """
    n = gray.shape[0]
    if n < 5 or gray.shape[1] < 3:
        return None
    whiteness = np.percentile(white, 50, axis=1)
    teeth = whiteness > max(skin_white + 22.0, 140.0)
    runs: list[tuple[int, int]] = []
    start = -1
    for i, flag in enumerate(teeth):
        if flag and start < 0:
            start = i
        if not flag and start >= 0:
            runs.append((start, i))
            start = -1
    if start >= 0:
        runs.append((start, n))
    runs = [r for r in runs if r[1] - r[0] >= 2]
    if runs and sum(b - a for a, b in runs) >= 3:
        best = max(runs, key=lambda r: r[1] - r[0])
        nxt = [r for r in runs if r[0] >= best[1] and r[0] - best[1] <= 4]
        prv = [r for r in runs if r[1] <= best[0] and best[0] - r[1] <= 4]
        if nxt:  # upper and lower teeth: the line is between them
            return (best[1] + nxt[0][0]) / 2.0
        if prv:
            return (prv[-1][1] + best[0]) / 2.0
        return float(best[1])  # upper teeth only: the line is at their lower edge
    rows = np.percentile(gray, 25, axis=1)
    rows = np.convolve(rows, np.ones(3, dtype=np.float32) / 3.0, mode="same")
    inner = rows[1:-1]
    k = int(np.argmin(inner)) + 1
    if float(np.median(rows) - rows[k]) < 8.0:  # no clear line
        return None
    return float(k)


def _lip_line(
    rgb: np.ndarray, cx: float, cy: float, mw: float, face: Box
) -> tuple[float, float] | None:
    """The line between the lips near ``cy``: its row at the centre and its ``curve``."""
    h, w = rgb.shape[:2]
    y0 = round(cy - 0.09 * face.h)
    y1 = round(cy + 0.1 * face.h)
    if y0 < 0 or y1 >= h or y1 - y0 < 6:
        return None
    gray = _gray(rgb).astype(np.float32)
    white = rgb.min(axis=2).astype(np.float32)
    f = face
    cheek = white[round(f.y + 0.55 * f.h) : round(f.y + 0.68 * f.h),
                  round(f.x + 0.15 * f.w) : round(f.x + 0.3 * f.w)]  # fmt: skip
    skin_white = float(np.median(cheek)) if cheek.size else 150.0

    def line_at(xa: float, xb: float) -> float | None:
        x0, x1 = round(xa), round(xb)
        if x0 < 0 or x1 > w or x1 - x0 < 3:
            return None
        found = _line_in_strip(gray[y0:y1, x0:x1], white[y0:y1, x0:x1], skin_white)
        return None if found is None else y0 + found

    centre = line_at(cx - 0.15 * mw, cx + 0.15 * mw)
    if centre is None:
        return None
    # The corners' side of the line: the darkest row a little above or at the centre's line
    # (a smile lifts the corners; teeth get shadowed towards them, so look for the dark gap).
    lo, hi = round(centre - 0.16 * mw), round(centre + 0.04 * mw) + 1
    rises = []
    for xa, xb in ((cx - 0.36 * mw, cx - 0.24 * mw), (cx + 0.24 * mw, cx + 0.36 * mw)):
        x0, x1 = round(xa), round(xb)
        if lo < 0 or hi > h or x0 < 0 or x1 > w or x1 - x0 < 2:
            continue
        rows = np.percentile(gray[lo:hi, x0:x1], 25, axis=1)
        k = int(np.argmin(rows))
        if float(np.median(rows) - rows[k]) >= 8.0:
            rises.append(centre - (lo + k))
    curve = 0.0
    if rises:
        rise = float(np.mean(rises))  # how much higher the line is at u = 0.6
        curve = float(np.clip(rise / 0.36, -0.02 * mw, 0.12 * mw))
    return centre, curve


def locate_features(rgb: np.ndarray, face: Box, *, face_found: bool = True) -> FaceLayout:
    """Eyes, mouth and chin inside ``face`` (pixels of ``rgb``, normally the framed portrait)."""
    cv2 = cv2_module()
    gray_full = _gray(rgb)
    H, W = gray_full.shape
    fx0 = max(0, round(face.x))
    fy0 = max(0, round(face.y))
    fx1 = min(W, round(face.x + face.w))
    fy1 = min(H, round(face.y + 1.15 * face.h))
    eq = cv2.equalizeHist(gray_full[fy0:fy1, fx0:fx1])

    # Eyes: upper part of the face box.
    upper = eq[: max(1, round(0.62 * face.h))]
    cands = [
        b.scaled(1.0, fx0, fy0)
        for b in _detect(upper, "haarcascade_eye.xml", 4, max(8, round(0.1 * face.w)))
    ]
    lbox, rbox = _pick_eyes(cands, face)
    eyes_found = lbox is not None and rbox is not None
    if lbox is not None and rbox is None:
        rbox = Box(2 * face.cx - lbox.cx - lbox.w / 2, lbox.y, lbox.w, lbox.h)
    elif rbox is not None and lbox is None:
        lbox = Box(2 * face.cx - rbox.cx - rbox.w / 2, rbox.y, rbox.w, rbox.h)
    if lbox is not None and rbox is not None:
        left, right = _eye_from_box(lbox), _eye_from_box(rbox)
    else:
        ew = 0.2 * face.w
        ey = face.y + 0.41 * face.h
        left = Eye(face.x + 0.3 * face.w, ey, ew, 0.36 * ew)
        right = Eye(face.x + 0.7 * face.w, ey, ew, 0.36 * ew)

    # Mouth: smile cascade on the lower part, the candidate nearest the expected place.
    eyes_mid = (left.cx + right.cx) / 2
    exp_x, exp_y = eyes_mid, face.y + 0.8 * face.h
    top = round(0.55 * face.h)
    lower = eq[top:]
    mouth_box: Box | None = None
    if lower.shape[0] > 8:
        best = None
        for b in _detect(lower, "haarcascade_smile.xml", 12, max(10, round(0.2 * face.w))):
            bb = b.scaled(1.0, fx0, fy0 + top)
            if not (0.25 * face.w <= bb.w <= 0.75 * face.w):
                continue
            if abs(bb.cx - exp_x) > 0.15 * face.w or not (
                face.y + 0.62 * face.h <= bb.cy <= face.y + 1.0 * face.h
            ):
                continue
            dist = abs(bb.cx - exp_x) + abs(bb.cy - exp_y)
            if best is None or dist < best[0]:
                best = (dist, bb)
        if best is not None:
            mouth_box = best[1]
    if mouth_box is not None:
        mw = float(np.clip(0.8 * mouth_box.w, 0.3 * face.w, 0.5 * face.w))
        mcx, mcy = mouth_box.cx, mouth_box.cy
    else:
        mw, mcx, mcy = 0.4 * face.w, exp_x, exp_y
    curve = 0.0
    line = _lip_line(rgb, mcx, mcy, mw, face)
    if line is not None:
        mcy, curve = line
    mouth = Mouth(mcx, mcy, mw, 0.3 * mw, curve)
    chin_y = min(float(H - 1), mcy + 0.42 * face.h)
    return FaceLayout(
        face=face,
        eyes=(left, right),
        mouth=mouth,
        chin_y=chin_y,
        found={"face": face_found, "eyes": eyes_found, "mouth": mouth_box is not None},
    )
