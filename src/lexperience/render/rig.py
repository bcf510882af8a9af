"""A face rig: a still portrait plus precomputed warp fields that open the jaw, shape the lips,
close the eyelids and move the head, rendered with one ``cv2.remap`` per frame.

Everything that depends only on the portrait (the head mask, the jaw and lip fields, the
coordinate grids) is built once in :class:`FaceRig`; a frame costs a few vector operations on
those arrays, one remap of the head region and a small paint of the mouth opening, a few
milliseconds at 512x512 on one core. A rig is read-only once built, so one rig can render for
several streams (threads) at once.

Warp model: ``output(p) = source(p - D(p))`` with ``D`` the sum of
* head motion: a small rotation about the neck plus a translation, faded out by a soft mask
  around the head (the background and shoulders stay put);
* jaw: rows below the lip line move down, the upper lip moves up (:mod:`lexperience.render.mouth`);
* lip width: the mouth region is stretched or narrowed about the mouth centre;
* blinks: each upper eyelid slides down over the eye, the skin above it stretching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .face import FaceLayout
from .image import cv2_module
from .mouth import DOWN, MAX_GAP, UP, MouthColors, lens_profile, paint_opening

__all__ = ["FaceRig", "FrameState"]


@dataclass(frozen=True)
class FrameState:
    """What one frame shows.

    Attributes:
        open: jaw opening, 0 (closed) to 1 (wide open, "aa").
        width: lip width relative to rest, about 0.7 (rounded "oo") to 1.15 (spread "ee").
        blink: eyelid closure, 0 (open) to 1 (closed).
        rotation: head roll in degrees (positive: clockwise on screen).
        dx, dy: head shift in pixels.
    """

    open: float = 0.0
    width: float = 1.0
    blink: float = 0.0
    rotation: float = 0.0
    dx: float = 0.0
    dy: float = 0.0


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    if edge1 == edge0:
        return (x >= edge1).astype(np.float32)
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


@dataclass(frozen=True)
class _Span:
    """A rectangle of the output, ``[y0, y1) x [x0, x1)``."""

    y0: int
    y1: int
    x0: int
    x1: int

    def clipped(self, h: int, w: int) -> _Span:
        return _Span(max(0, self.y0), min(h, self.y1), max(0, self.x0), min(w, self.x1))

    def shifted(self, dy: int, dx: int) -> _Span:
        return _Span(self.y0 + dy, self.y1 + dy, self.x0 + dx, self.x1 + dx)

    @property
    def empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0


class FaceRig:
    """A portrait ready to animate.

    Args:
        image: the framed portrait, ``size x size x 3`` RGB uint8.
        layout: where its face, eyes and mouth are (output pixels).
        teeth: paint upper teeth in the opening; ``None`` decides from the image (a portrait
            that already shows its teeth gets none painted).
        colors: the colours of the inside of the mouth.
        expressiveness: scales the jaw opening (1.0: natural).
    """

    def __init__(
        self,
        image: np.ndarray,
        layout: FaceLayout,
        *,
        teeth: bool | None = None,
        colors: MouthColors | None = None,
        expressiveness: float = 1.0,
    ) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("a rig needs an HxWx3 uint8 RGB image")
        self.image = np.ascontiguousarray(image)
        self.image.setflags(write=False)
        self.layout = layout
        self.colors = colors or MouthColors()
        self.height, self.width = image.shape[:2]
        H, W = self.height, self.width
        face, m = layout.face, layout.mouth
        self.max_gap = min(MAX_GAP * m.w, 0.15 * face.h) * float(expressiveness)

        # -- head region: a soft ellipse around face and hair ---------------------------------
        hcx, hcy = face.cx, face.y + 0.42 * face.h
        ax, ay = 0.82 * face.w, 0.98 * face.h
        reach = 1.38
        self.roi = _Span(
            math.floor(hcy - ay * reach), math.ceil(hcy + ay * reach) + 1,
            math.floor(hcx - ax * reach), math.ceil(hcx + ax * reach) + 1,
        ).clipped(H, W)  # fmt: skip
        r = self.roi
        self._xs = np.arange(r.x0, r.x1, dtype=np.float32)
        self._ys = np.arange(r.y0, r.y1, dtype=np.float32)
        rr = np.sqrt(((self._xs[None, :] - hcx) / ax) ** 2 + ((self._ys[:, None] - hcy) / ay) ** 2)
        self._head_mask = (1.0 - _smoothstep(1.0, reach, rr)).astype(np.float32)
        self._grid_x = np.ascontiguousarray(np.broadcast_to(self._xs[None, :], rr.shape))
        self._grid_y = np.ascontiguousarray(np.broadcast_to(self._ys[:, None], rr.shape))
        self.pivot = (face.cx, layout.chin_y + 0.25 * face.h)
        self._mask_x = np.ascontiguousarray(self._head_mask * (self._xs[None, :] - self.pivot[0]))
        self._mask_y = np.ascontiguousarray(self._head_mask * (self._ys[:, None] - self.pivot[1]))

        # -- jaw: rows around and below the mouth -------------------------------------------
        jaw_half = 0.42 * face.w
        up_len = max(3.0, 1.3 * m.lip_h)
        fade = max(6.0, 0.35 * face.h)
        self._jaw = _Span(
            math.floor(m.cy - 1.7 * max(m.curve, 0.0) - up_len) - 1,
            math.ceil(layout.chin_y + fade) + 2,
            math.floor(m.cx - 1.3 * jaw_half) - 1,
            math.ceil(m.cx + 1.3 * jaw_half) + 2,
        )
        ys = np.arange(self._jaw.y0, self._jaw.y1, dtype=np.float32)[:, None]
        xs = np.arange(self._jaw.x0, self._jaw.x1, dtype=np.float32)
        self._jaw_xs = xs
        yy = ys - m.line_y(xs)[None, :]  # rows relative to the (curved) lip line
        below = yy >= 0
        t = yy / max(layout.chin_y - m.cy, 1.0)
        s = _smoothstep(0.0, 0.7, t)
        f = 1.0 - _smoothstep(layout.chin_y, layout.chin_y + fade, ys)
        g = _smoothstep(-up_len, 0.0, yy)
        jaw_row = 1.0 - _smoothstep(0.55 * jaw_half, 1.25 * jaw_half, np.abs(xs - m.cx))
        self._jaw_a = np.where(below, DOWN * (1.0 - s) * f, -UP * g).astype(np.float32)
        self._jaw_b = np.where(below, DOWN * s * f * jaw_row[None, :], 0.0).astype(np.float32)
        self._jaw_below = below

        # -- lip width: a flat-topped blob over the mouth -------------------------------------
        wy_c = m.cy + 0.25 * self.max_gap
        wy_s = 0.9 * (m.lip_h + self.max_gap)
        wx_s = 0.9 * m.w
        self._wid = _Span(
            math.floor(wy_c - 2.2 * wy_s), math.ceil(wy_c + 2.2 * wy_s) + 1,
            math.floor(m.cx - 2.2 * wx_s), math.ceil(m.cx + 2.2 * wx_s) + 1,
        )  # fmt: skip
        wys = np.arange(self._wid.y0, self._wid.y1, dtype=np.float32)
        wxs = np.arange(self._wid.x0, self._wid.x1, dtype=np.float32)
        blob = np.exp(-(((wxs[None, :] - m.cx) / wx_s) ** 4) - ((wys[:, None] - wy_c) / wy_s) ** 4)
        self._wid_field = ((wxs[None, :] - m.cx) * blob).astype(np.float32)
        # The same blob along the lip line, over the jaw's columns (to follow the lips' width).
        self._wid_line = (
            np.exp(-(((self._jaw_xs - m.cx) / wx_s) ** 4) - ((m.cy - wy_c) / wy_s) ** 4)
        ).astype(np.float32)

        # -- teeth and lighting ---------------------------------------------------------------
        self.teeth = self._shows_no_teeth() if teeth is None else teeth
        self.teeth_gain = self._teeth_gain()

    # -- analysis of the still ----------------------------------------------------------------
    def _pixels(self, span: _Span) -> np.ndarray:
        s = span.clipped(self.height, self.width)
        if s.empty:
            return np.zeros((0, 3), np.float32)
        return self.image[s.y0 : s.y1, s.x0 : s.x1].reshape(-1, 3).astype(np.float32)

    def _cheek(self) -> np.ndarray:
        f = self.layout.face
        return self._pixels(
            _Span(round(f.y + 0.55 * f.h), round(f.y + 0.68 * f.h),
                  round(f.x + 0.15 * f.w), round(f.x + 0.3 * f.w))
        )  # fmt: skip

    def _skin_luma(self) -> float:
        px = self._cheek()
        if px.size == 0:
            return 160.0
        return float(np.median(px @ np.array([0.299, 0.587, 0.114], np.float32)))

    def _shows_no_teeth(self) -> bool:
        """True when the still shows no teeth above the lip line, so the opening gets
        painted ones (teeth are whiter, i.e. have a higher minimum channel, than skin)."""
        m = self.layout.mouth
        strip = self._pixels(
            _Span(round(m.cy - 0.35 * m.lip_h), round(m.cy - 1),
                  round(m.cx - 0.2 * m.w), round(m.cx + 0.2 * m.w))
        )  # fmt: skip
        cheek = self._cheek()
        if strip.size == 0 or cheek.size == 0:
            return True
        white = float(np.percentile(strip.min(axis=1), 60))
        return white < float(np.median(cheek.min(axis=1))) + 18.0

    def _teeth_gain(self) -> float:
        return float(np.clip(self._skin_luma() / 170.0, 0.55, 1.0))

    # -- rendering ------------------------------------------------------------------------------
    def render(self, state: FrameState) -> np.ndarray:
        """The portrait in ``state``, a new ``H x W x 3`` uint8 array."""
        cv2 = cv2_module()
        r = self.roi
        m = self.layout.mouth
        if (
            state.open <= 0.0 and state.blink <= 0.0 and state.width == 1.0
            and state.rotation == 0.0 and state.dx == 0.0 and state.dy == 0.0
        ):  # fmt: skip
            return np.array(self.image, copy=True)  # the rest pose: the still itself

        # Head motion: D = mask * (affine(p) - p), a roll about the pivot (the neck) plus a shift.
        rot, sdx, sdy = float(state.rotation), float(state.dx), float(state.dy)
        theta = math.radians(rot)
        c1, sn = math.cos(theta) - 1.0, math.sin(theta)
        px, py = self.pivot
        if rot != 0.0 or sdx != 0.0 or sdy != 0.0:
            # map = grid - D with D_x = c1*MX - sn*MY + dx*M, D_y = sn*MX + c1*MY + dy*M,
            # where M is the head mask and MX, MY the mask times the offset from the pivot.
            map_x = cv2.add(
                cv2.addWeighted(self._mask_x, -c1, self._mask_y, sn, 0.0),
                cv2.addWeighted(self._head_mask, -sdx, self._grid_x, 1.0, 0.0),
            )
            map_y = cv2.add(
                cv2.addWeighted(self._mask_x, -sn, self._mask_y, -c1, 0.0),
                cv2.addWeighted(self._head_mask, -sdy, self._grid_y, 1.0, 0.0),
            )
        else:
            map_x = self._grid_x.copy()
            map_y = self._grid_y.copy()

        def head_shift(x: float, y: float) -> tuple[float, float]:
            """Where the head motion moves the point (x, y) (mask taken as 1 on the face)."""
            return c1 * (x - px) - sn * (y - py) + sdx, sn * (x - px) + c1 * (y - py) + sdy

        # Lip width about the mouth centre.
        width = float(state.width)
        mdx, mdy = head_shift(m.cx, m.cy)
        sx, sy = round(mdx), round(mdy)
        if width != 1.0:
            self._add(map_x, self._wid, self._wid_field, 1.0 - width, sy, sx)

        # Jaw. The precomputed fields are looked up where each column's content comes from
        # (lip width, head roll), so the opening follows the moved lip line exactly.
        gap = float(np.clip(state.open, 0.0, 1.2)) * self.max_gap
        half_w = 0.5 * m.w * width
        jaw_field: np.ndarray | None = None
        jaw_below = self._jaw_below
        if gap > 0.05:
            xrel = self._jaw_xs - m.cx
            src_cols = self._jaw_xs - (width - 1.0) * xrel * self._wid_line
            off = np.rint(sn * xrel).astype(np.intp)
            if width != 1.0 or np.any(off):
                hj, wj = self._jaw_a.shape
                cols = np.clip(np.rint(src_cols - self._jaw.x0), 0, wj - 1).astype(np.intp)
                rows = np.clip(np.arange(hj)[:, None] - off[None, :], 0, hj - 1)
                idx = (rows, cols[None, :])
                jaw_a, jaw_b, jaw_below = self._jaw_a[idx], self._jaw_b[idx], jaw_below[idx]
            else:
                jaw_a, jaw_b = self._jaw_a, self._jaw_b
            lens = lens_profile(src_cols, m.cx, 0.5 * m.w)
            jaw_field = gap * (jaw_a * lens[None, :] + jaw_b)
            self._add(map_y, self._jaw, jaw_field, -1.0, sy, sx)

        # Blinks.
        blink = float(np.clip(state.blink, 0.0, 1.0))
        if blink > 0.01:
            for eye in self.layout.eyes:
                edx, edy = head_shift(eye.cx, eye.cy)
                self._blink_eye(map_y, eye.cx + edx, eye.cy + edy, eye.w, eye.h, blink)

        out = np.array(self.image, copy=True)
        out[r.y0 : r.y1, r.x0 : r.x1] = cv2.remap(
            self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

        if jaw_field is not None and gap > 0.5:
            self._paint_mouth(
                out, map_x, map_y, jaw_field, jaw_below, sy, sx, m.cx + mdx, half_w, gap
            )
        return out

    def _add(
        self, target: np.ndarray, span: _Span, field: np.ndarray, scale: float, dy: int, dx: int
    ) -> None:
        """``target[span shifted by (dy, dx)] += scale * field``, clipped to the head region."""
        r = self.roi
        s = span.shifted(dy, dx)
        c = s.clipped(self.height, self.width)
        c = _Span(max(c.y0, r.y0), min(c.y1, r.y1), max(c.x0, r.x0), min(c.x1, r.x1))
        if c.empty:
            return
        sub = field[c.y0 - s.y0 : c.y1 - s.y0, c.x0 - s.x0 : c.x1 - s.x0]
        tgt = target[c.y0 - r.y0 : c.y1 - r.y0, c.x0 - r.x0 : c.x1 - r.x0]
        if scale == 1.0:
            tgt += sub
        elif scale == -1.0:
            tgt -= sub
        else:
            tgt += scale * sub

    def _blink_eye(
        self, map_y: np.ndarray, ex: float, ey: float, ew: float, eh: float, blink: float
    ) -> None:
        """Slide the upper lid of one eye down by ``blink`` of the eye's height."""
        # The skin above the lid stretches over `reach`; an ease-in ramp (slope < 1, so no fold)
        # keeps the brow almost still.
        reach = 2.0 * eh + 2.0
        span = _Span(
            math.floor(ey - eh / 2 - reach) - 1, math.ceil(ey + eh / 2) + 3,
            math.floor(ex - 0.7 * ew), math.ceil(ex + 0.7 * ew) + 1,
        )  # fmt: skip
        r = self.roi
        c = _Span(max(span.y0, r.y0), min(span.y1, r.y1), max(span.x0, r.x0), min(span.x1, r.x1))
        if c.empty:
            return
        xs = np.arange(c.x0, c.x1, dtype=np.float32)
        ys = np.arange(c.y0, c.y1, dtype=np.float32)[:, None]
        u = (xs - ex) / (0.55 * ew)
        arc = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))[None, :]
        top = ey - 0.5 * eh * arc
        travel = eh * arc
        edge = top + blink * travel  # where the lid's edge is now
        ramp = np.clip((ys - (top - reach)) / reach, 0.0, 1.0)
        ramp = ramp * ramp
        cover = np.clip(edge - ys + 0.5, 0.0, 1.0)
        map_y[c.y0 - r.y0 : c.y1 - r.y0, c.x0 - r.x0 : c.x1 - r.x0] -= (
            blink * travel * ramp * cover
        ).astype(np.float32)

    def _paint_mouth(
        self,
        out: np.ndarray,
        map_x: np.ndarray,
        map_y: np.ndarray,
        jaw_field: np.ndarray,
        jaw_below: np.ndarray,
        sy: int,
        sx: int,
        cx: float,
        half_w: float,
        gap: float,
    ) -> None:
        m = self.layout.mouth
        r = self.roi
        jaw = self._jaw.shifted(sy, sx)
        top = m.cy + sy - 1.7 * max(m.curve, 0.0) - UP * gap
        span = _Span(
            math.floor(top) - 2, math.ceil(m.cy + sy + DOWN * gap + max(-m.curve, 0.0)) + 3,
            math.floor(cx - half_w) - 2, math.ceil(cx + half_w) + 3,
        )  # fmt: skip
        c = _Span(
            max(span.y0, r.y0, jaw.y0), min(span.y1, r.y1, jaw.y1),
            max(span.x0, r.x0, jaw.x0), min(span.x1, r.x1, jaw.x1),
        )  # fmt: skip
        if c.empty:
            return
        in_roi = (slice(c.y0 - r.y0, c.y1 - r.y0), slice(c.x0 - r.x0, c.x1 - r.x0))
        in_jaw = (slice(c.y0 - jaw.y0, c.y1 - jaw.y0), slice(c.x0 - jaw.x0, c.x1 - jaw.x0))
        src_x, src_y = map_x[in_roi], map_y[in_roi]
        paint_opening(
            out[c.y0 : c.y1, c.x0 : c.x1],
            src_y,
            m.line_y(src_x),
            jaw_below[in_jaw],
            src_y + jaw_field[in_jaw],
            columns=np.arange(c.x0, c.x1, dtype=np.float32),
            cx=cx,
            half_width=half_w,
            gap=gap,
            max_gap=self.max_gap,
            teeth=self.teeth,
            colors=self.colors,
            teeth_gain=self.teeth_gain,
        )
