"""The built-in host: a fictional podcast host drawn by code (flat illustration style).

Nobody's likeness: a man's face built from ellipses, arcs and polygons in proportions of a generic
cartoon face (he speaks with the bundled male Piper voice), with headphones to say "podcast". It is drawn once per output size at twice the
resolution with anti-aliased primitives and downscaled, and comes with its exact
:class:`~lexperience.render.face.FaceLayout`, so the same rig animates it as a photo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .face import Box, Eye, FaceLayout, Mouth
from .image import cv2_module

__all__ = ["HOST_NAME", "draw_host"]

HOST_NAME = "Theo Calloway (fictional, drawn by lexperience)"

RGB = tuple[int, int, int]

_BG_TOP: RGB = (78, 118, 138)
_BG_BOTTOM: RGB = (38, 64, 84)
_HALO: RGB = (112, 152, 166)
_SKIN: RGB = (232, 186, 150)
_SKIN_SHADE: RGB = (206, 152, 120)
_STUBBLE: RGB = (196, 150, 124)
_HAIR: RGB = (70, 46, 36)
_HAIR_LIGHT: RGB = (104, 70, 52)
_SWEATER: RGB = (58, 96, 110)
_SWEATER_SHADE: RGB = (42, 72, 86)
_COLLAR: RGB = (226, 222, 210)
_PHONES: RGB = (46, 50, 60)
_PHONES_ACCENT: RGB = (232, 118, 84)
_EYE_WHITE: RGB = (250, 248, 244)
_IRIS: RGB = (86, 110, 140)
_PUPIL: RGB = (26, 28, 32)
_LASH: RGB = (58, 38, 32)
_BROW: RGB = (62, 40, 30)
_UPPER_LIP: RGB = (176, 104, 100)
_LOWER_LIP: RGB = (192, 118, 112)
_LIP_LINE: RGB = (112, 56, 56)

# Proportions of the drawing, as shares of the output side.
_CX = 0.5
_FACE_CY, _FACE_A, _FACE_B = 0.42, 0.17, 0.225
_EYE_DX, _EYE_Y, _EYE_W, _EYE_H = 0.072, 0.405, 0.062, 0.03
_MOUTH_Y, _MOUTH_W = 0.566, 0.106
_UPPER_LIP_H, _LOWER_LIP_H = 0.010, 0.016
_SMILE = 0.004  # the corners of the mouth are this much higher than its centre
_CHIN_Y = _FACE_CY + _FACE_B
# The drawing is zoomed about (0.5, _ZOOM_Y) by _ZOOM when it is rasterised.
_ZOOM, _ZOOM_Y = 1.1, 0.40


def _zx(x: float) -> float:
    return 0.5 + (x - 0.5) * _ZOOM


def _zy(y: float) -> float:
    return _ZOOM_Y + (y - _ZOOM_Y) * _ZOOM


class _Canvas:
    """Anti-aliased drawing in normalised coordinates (0..1) on a square RGB image."""

    SHIFT = 4

    def __init__(self, side: int) -> None:
        self.cv2 = cv2_module()
        self.side = side
        self.img = np.zeros((side, side, 3), dtype=np.uint8)

    def _pts(self, pts: Sequence[tuple[float, float]]) -> np.ndarray:
        k = self.side * (1 << self.SHIFT)
        return np.array([[round(_zx(x) * k), round(_zy(y) * k)] for x, y in pts], dtype=np.int32)

    def poly(self, pts: Sequence[tuple[float, float]], color: RGB) -> None:
        self.cv2.fillPoly(self.img, [self._pts(pts)], color, self.cv2.LINE_AA, self.SHIFT)

    def line(self, pts: Sequence[tuple[float, float]], color: RGB, width: float) -> None:
        thickness = max(1, round(width * _ZOOM * self.side))
        self.cv2.polylines(
            self.img, [self._pts(pts)], False, color, thickness, self.cv2.LINE_AA, self.SHIFT
        )

    def ellipse(
        self, cx: float, cy: float, a: float, b: float, color: RGB, angle: float = 0.0
    ) -> None:
        self.poly(_ellipse_pts(cx, cy, a, b, angle), color)

    def blend(self, mask_draw: Sequence[tuple[float, float]], color: RGB, alpha: float) -> None:
        """Fill a polygon at ``alpha`` opacity (soft-edged), touching only its bounding box."""
        pts = self._pts(mask_draw)
        k = max(3, (self.side // 60) | 1)
        pad = k + 2
        x0 = max(0, int(pts[:, 0].min()) // (1 << self.SHIFT) - pad)
        y0 = max(0, int(pts[:, 1].min()) // (1 << self.SHIFT) - pad)
        x1 = min(self.side, int(pts[:, 0].max()) // (1 << self.SHIFT) + pad + 1)
        y1 = min(self.side, int(pts[:, 1].max()) // (1 << self.SHIFT) + pad + 1)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        offset = np.array([x0, y0], dtype=np.int32) * (1 << self.SHIFT)
        self.cv2.fillPoly(mask, [pts - offset], 255, self.cv2.LINE_AA, self.SHIFT)
        mask = self.cv2.GaussianBlur(mask, (k, k), 0)
        a = mask.astype(np.float32)[..., None] / 255.0 * alpha
        region = self.img[y0:y1, x0:x1].astype(np.float32)
        out = region * (1 - a) + np.asarray(color, np.float32) * a
        self.img[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _ellipse_pts(
    cx: float, cy: float, a: float, b: float, angle: float = 0.0, n: int = 96
) -> list[tuple[float, float]]:
    ca, sa = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x, y = a * math.cos(t), b * math.sin(t)
        pts.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return pts


def _arc(
    cx: float, cy: float, a: float, b: float, t0: float, t1: float, n: int = 40
) -> list[tuple[float, float]]:
    """Points of an elliptic arc from angle ``t0`` to ``t1`` (degrees, y down)."""
    out = []
    for i in range(n + 1):
        t = math.radians(t0 + (t1 - t0) * i / n)
        out.append((cx + a * math.cos(t), cy + b * math.sin(t)))
    return out


def _face_outline(n: int = 120) -> list[tuple[float, float]]:
    """A face with a firm, slightly square jaw and a broad chin."""
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        c = math.cos(t)
        narrow = 1.0 - 0.14 * max(0.0, -c) ** 3
        pts.append((_CX + _FACE_A * math.sin(t) * narrow, _FACE_CY - _FACE_B * c))
    return pts


def _almond(cx: float, cy: float, w: float, h: float, n: int = 32) -> list[tuple[float, float]]:
    """An eye opening: upper arc a bit higher than the lower one."""
    upper = []
    lower = []
    for i in range(n + 1):
        u = -1.0 + 2.0 * i / n
        arc = math.sqrt(max(0.0, 1.0 - u * u))
        upper.append((cx + u * w / 2, cy - 0.5 * h * arc * (1.0 + 0.1 * u)))
        lower.append((cx + u * w / 2, cy + 0.5 * h * arc * 0.92))
    return upper + lower[::-1][1:-1]


def _draw(side: int) -> np.ndarray:
    c = _Canvas(side)
    cv2 = c.cv2
    # Background: vertical gradient and a soft halo behind the head.
    t = np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None, None]
    top, bottom = np.asarray(_BG_TOP, np.float32), np.asarray(_BG_BOTTOM, np.float32)
    c.img = np.broadcast_to(top * (1 - t) + bottom * t, (side, side, 3)).astype(np.uint8).copy()
    c.blend(_ellipse_pts(_CX, 0.44, 0.34, 0.36), _HALO, 0.55)

    # Shoulders and sweater, shirt collar, neck.
    c.ellipse(_CX, 0.95, 0.42, 0.25, _SWEATER_SHADE)
    c.ellipse(_CX, 0.96, 0.40, 0.24, _SWEATER)
    c.poly([(_CX - 0.07, 0.58), (_CX + 0.07, 0.58), (_CX + 0.074, 0.75),
            (_CX - 0.074, 0.75)], _SKIN)  # fmt: skip
    c.poly([(_CX - 0.082, 0.722), (_CX + 0.082, 0.722), (_CX, 0.79)], _SKIN)  # open neck
    for s in (-1.0, 1.0):  # the collar's two points over the sweater
        c.poly([(_CX + s * 0.085, 0.712), (_CX + s * 0.012, 0.79), (_CX + s * 0.05, 0.80),
                (_CX + s * 0.11, 0.735)], _COLLAR)  # fmt: skip
    shadow = [(_CX - 0.07, _CHIN_Y - 0.03), (_CX + 0.07, _CHIN_Y - 0.03)]
    shadow += _arc(_CX, _CHIN_Y - 0.005, 0.07, 0.03, 0, 180, 24)
    c.poly(shadow, _SKIN_SHADE)  # shadow under the chin

    # Ears, behind the headphones later.
    for s in (-1.0, 1.0):
        c.ellipse(_CX + s * 0.172, 0.45, 0.022, 0.04, _SKIN_SHADE)

    # Face, a hint of stubble on the chin and the upper lip.
    c.poly(_face_outline(), _SKIN)
    c.blend(_ellipse_pts(_CX, 0.598, 0.085, 0.025), _STUBBLE, 0.18)
    c.blend(_ellipse_pts(_CX, _MOUTH_Y - 0.02, 0.045, 0.01), _STUBBLE, 0.22)

    # Short hair: a cap over the crown down to the hairline, short sideburns, a side-swept quiff.
    cap = _arc(_CX, 0.33, 0.186, 0.16, 180, 360, 48)
    cap += [
        (_CX + 0.179, 0.40),
        (_CX + 0.162, 0.405),
        (_CX + 0.156, 0.33),
        (_CX + 0.12, 0.282),
        (_CX + 0.05, 0.262),
        (_CX - 0.03, 0.265),
        (_CX - 0.10, 0.28),
        (_CX - 0.15, 0.31),
        (_CX - 0.158, 0.34),
        (_CX - 0.162, 0.405),
        (_CX - 0.179, 0.40),
    ]
    c.poly(cap, _HAIR)
    quiff = [(_CX - 0.15, 0.25), (_CX - 0.07, 0.178), (_CX + 0.06, 0.172), (_CX + 0.15, 0.215),
             (_CX + 0.10, 0.245), (_CX + 0.02, 0.262), (_CX - 0.08, 0.27)]  # fmt: skip
    c.poly(quiff, _HAIR)
    c.line(_arc(_CX + 0.01, 0.30, 0.12, 0.10, 200, 280), _HAIR_LIGHT, 0.006)
    c.line(_arc(_CX + 0.05, 0.32, 0.10, 0.11, 235, 300), _HAIR_LIGHT, 0.005)

    # Headphones: band over the hair, cups over the ears.
    c.line(_arc(_CX, 0.44, 0.205, 0.29, 192, 348, 60), _PHONES, 0.024)
    for s in (-1.0, 1.0):
        c.ellipse(_CX + s * 0.192, 0.455, 0.036, 0.062, _PHONES)
        c.ellipse(_CX + s * 0.198, 0.455, 0.022, 0.044, _PHONES_ACCENT)

    # Brows.
    for s in (-1.0, 1.0):
        ex = _CX + s * _EYE_DX
        brow = [(ex - s * 0.036, 0.350), (ex - s * 0.01, 0.343), (ex + s * 0.02, 0.344),
                (ex + s * 0.04, 0.352)]  # fmt: skip
        c.line(brow, _BROW, 0.015)

    # Eyes.
    for s in (-1.0, 1.0):
        ex, ey = _CX + s * _EYE_DX, _EYE_Y
        almond = _almond(ex, ey, _EYE_W, _EYE_H)
        c.line(_arc(ex, ey - 0.004, 0.034, 0.026, 205, 335), _SKIN_SHADE, 0.004)  # lid crease
        c.poly(almond, _EYE_WHITE)
        layer = c.img.copy()
        for r, col in ((0.0155, _IRIS), (0.0072, _PUPIL)):
            pts = c._pts(_ellipse_pts(ex, ey + 0.002, r, r))
            cv2.fillPoly(layer, [pts], col, cv2.LINE_AA, c.SHIFT)
        eye_mask = np.zeros((side, side), dtype=np.uint8)
        cv2.fillPoly(eye_mask, [c._pts(almond)], 255, cv2.LINE_AA, c.SHIFT)
        a = eye_mask.astype(np.float32)[..., None] / 255.0
        c.img = np.clip(c.img * (1 - a) + layer * a + 0.5, 0, 255).astype(np.uint8)
        c.ellipse(ex + 0.006, ey - 0.004, 0.0035, 0.0035, _EYE_WHITE)  # highlight
        upper = almond[: len(almond) // 2 + 1]
        c.line(upper, _LASH, 0.005)
        lower = almond[len(almond) // 2 :]
        c.line(lower, _SKIN_SHADE, 0.0025)

    # Nose.
    c.line(_arc(_CX, 0.488, 0.018, 0.011, 20, 160), _SKIN_SHADE, 0.006)
    c.line([(_CX + 0.01, 0.43), (_CX + 0.014, 0.465)], _SKIN_SHADE, 0.004)

    # Lips, closed in a slight smile.
    mw = _MOUTH_W
    n = 24
    line = []
    upper_edge = []
    lower_edge = []
    for i in range(n + 1):
        u = -1.0 + 2.0 * i / n
        x = _CX + u * mw / 2
        line_y = _MOUTH_Y - _SMILE * u * u
        line.append((x, line_y))
        bow = 1.0 - 0.35 * math.exp(-((u / 0.12) ** 2))  # the dip of the cupid's bow
        upper_edge.append((x, line_y - _UPPER_LIP_H * math.sqrt(max(0.0, 1 - u * u)) * bow))
        lower_edge.append((x, line_y + _LOWER_LIP_H * max(0.0, 1 - u * u) ** 0.6))
    c.poly(upper_edge + line[::-1], _UPPER_LIP)
    c.poly(line + lower_edge[::-1], _LOWER_LIP)
    c.line(_arc(_CX, _MOUTH_Y + 0.009, 0.018, 0.004, 200, 340), (210, 140, 130), 0.004)
    c.line(line, _LIP_LINE, 0.004)
    return c.img


def _layout(size: int) -> FaceLayout:
    s = float(size)
    z = _ZOOM * s
    face = Box(_zx(_CX - 0.16) * s, _zy(0.30) * s, 0.32 * z, 0.32 * z)
    eyes = tuple(
        Eye(_zx(_CX + k * _EYE_DX) * s, _zy(_EYE_Y) * s, _EYE_W * z, _EYE_H * z)
        for k in (-1.0, 1.0)
    )
    lips = (_UPPER_LIP_H + _LOWER_LIP_H) * z
    mouth = Mouth(_zx(_CX) * s, _zy(_MOUTH_Y) * s, _MOUTH_W * z, lips, _SMILE * z)
    return FaceLayout(
        face=face,
        eyes=(eyes[0], eyes[1]),
        mouth=mouth,
        chin_y=_zy(_CHIN_Y) * s,
        found={"face": True, "eyes": True, "mouth": True},
    )


@lru_cache(maxsize=4)
def _cached(size: int) -> tuple[np.ndarray, FaceLayout]:
    cv2 = cv2_module()
    big = _draw(2 * size)
    img = np.ascontiguousarray(cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA))
    img.setflags(write=False)
    return img, _layout(size)


def draw_host(size: int = 512) -> tuple[np.ndarray, FaceLayout]:
    """The built-in host at ``size x size`` (RGB uint8, read-only) and its face layout."""
    if size < 64:
        raise ValueError("the host needs at least 64 pixels")
    return _cached(int(size))
