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
  for "f" and "v" the upper lip lifts more and the lower lip less, so the lower lip meets the
  upper teeth;
* lip width: the mouth region is stretched or narrowed about the mouth centre;
* blinks: each upper eyelid slides down over the eye, the skin above it stretching;
* brows: the skin between each eye and the forehead slides up (raised brows);
* gaze: the inside of each eye opening shifts sideways or up and down (the iris moves, the lids
  and corners stay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .face import Eye, FaceLayout
from .image import cv2_module
from .mouth import DOWN, MAX_GAP, UP, MouthColors, lens_profile, paint_opening

#: The shares of the opening taken by the lower and upper lip when the lower lip meets the teeth.
TEETH_DOWN, TEETH_UP = 0.3, 0.7

__all__ = ["FaceRig", "FrameState"]


@dataclass(frozen=True)
class FrameState:
    """What one frame shows.

    Attributes:
        open: jaw opening, 0 (closed) to 1 (wide open, "aa").
        width: lip width relative to rest, about 0.7 (rounded "oo") to 1.15 (spread "ee").
        teeth: the lower lip on the upper teeth ("f", "v"), 0 to 1.
        blink: eyelid closure, 0 (open) to 1 (closed).
        brow: brow raise, 0 (rest) to 1 (raised); down to -0.5 (lowered a little).
        gaze_x, gaze_y: where the eyes look, -1 to 1 of their travel (right and down positive,
            on screen).
        rotation: head roll in degrees (positive: clockwise on screen).
        dx, dy: head shift in pixels.
    """

    open: float = 0.0
    width: float = 1.0
    teeth: float = 0.0
    blink: float = 0.0
    brow: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    rotation: float = 0.0
    dx: float = 0.0
    dy: float = 0.0

    @property
    def at_rest(self) -> bool:
        """Whether this is the still portrait itself."""
        return (
            self.open <= 0.0 and self.blink <= 0.0 and self.width == 1.0 and self.brow == 0.0
            and self.gaze_x == 0.0 and self.gaze_y == 0.0 and self.rotation == 0.0
            and self.dx == 0.0 and self.dy == 0.0
        )  # fmt: skip


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
        # Added (times `teeth`) for "f"/"v": the upper lip takes TEETH_UP of the opening.
        self._jaw_t = np.where(
            below, (TEETH_DOWN - DOWN) * (1.0 - s) * f, -(TEETH_UP - UP) * g
        ).astype(np.float32)
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

        # -- brows and gaze -------------------------------------------------------------------
        self._brow, self._brow_field = self._brow_region()
        self.gaze_reach = (0.14 * layout.eyes[0].w, 0.12 * layout.eyes[0].h)
        self._gaze = [self._gaze_region(eye) for eye in layout.eyes]

        # -- teeth and lighting ---------------------------------------------------------------
        self.teeth = self._shows_no_teeth() if teeth is None else teeth
        self.teeth_gain = self._teeth_gain()

    def _brow_region(self) -> tuple[_Span, np.ndarray]:
        """The rows between the eyes and the forehead, and how far each pixel moves up (in pixels)
        when the brows are fully raised: most at the brows, fading to nothing at the eyes' lower
        lids and up the forehead (never steeper than 1/2 a pixel per pixel, so nothing folds)."""
        left, right = self.layout.eyes
        eh = max(left.h, right.h, 2.0)
        ew = max(left.w, right.w, 4.0)
        lift = 0.45 * eh
        brow_y = 0.5 * (left.cy + right.cy) - 1.8 * eh
        below, above = 1.9 * eh, 2.6 * eh  # fade lengths under and over the brow line
        span = _Span(
            math.floor(brow_y - above) - 1, math.ceil(brow_y + below) + 1,
            math.floor(left.cx - 1.1 * ew), math.ceil(right.cx + 1.1 * ew) + 1,
        ).clipped(self.height, self.width)  # fmt: skip
        ys = np.arange(span.y0, span.y1, dtype=np.float32)[:, None]
        xs = np.arange(span.x0, span.x1, dtype=np.float32)[None, :]
        vert = np.where(
            ys >= brow_y,
            1.0 - _smoothstep(brow_y, brow_y + below, ys),
            _smoothstep(brow_y - above, brow_y, ys),
        )
        horiz = np.zeros_like(xs)
        for eye in (left, right):
            horiz = np.maximum(horiz, 1.0 - _smoothstep(0.55 * ew, 1.05 * ew, np.abs(xs - eye.cx)))
        return span, (lift * vert * horiz).astype(np.float32)

    def _gaze_region(self, eye: Eye) -> tuple[_Span, np.ndarray]:
        """Around one eye, the share of the gaze shift each pixel takes: 1 over the iris, fading
        to 0 before the corners and the lids."""
        cx, cy, w, h = eye.cx, eye.cy, eye.w, eye.h
        span = _Span(
            math.floor(cy - 0.6 * h) - 1, math.ceil(cy + 0.6 * h) + 2,
            math.floor(cx - 0.5 * w) - 1, math.ceil(cx + 0.5 * w) + 2,
        ).clipped(self.height, self.width)  # fmt: skip
        ys = np.arange(span.y0, span.y1, dtype=np.float32)[:, None]
        xs = np.arange(span.x0, span.x1, dtype=np.float32)[None, :]
        rr = np.sqrt(((xs - cx) / (0.5 * w)) ** 2 + ((ys - cy) / (0.62 * h)) ** 2)
        return span, (1.0 - _smoothstep(0.35, 0.92, rr)).astype(np.float32)

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
        if state.at_rest:
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
        teeth = float(np.clip(state.teeth, 0.0, 1.0))
        if not self.teeth:
            # The photo shows its own teeth above the lip line: "f" is the lower lip against
            # them, i.e. the mouth as it is at rest.
            gap *= 1.0 - teeth
            teeth = 0.0
        down = DOWN + teeth * (TEETH_DOWN - DOWN)
        half_w = 0.5 * m.w * width
        jaw_field: np.ndarray | None = None
        jaw_below = self._jaw_below
        if gap > 0.05:
            xrel = self._jaw_xs - m.cx
            src_cols = self._jaw_xs - (width - 1.0) * xrel * self._wid_line
            off = np.rint(sn * xrel).astype(np.intp)
            jaw_a, jaw_b, jaw_t = self._jaw_a, self._jaw_b, self._jaw_t
            if width != 1.0 or np.any(off):
                hj, wj = self._jaw_a.shape
                cols = np.clip(np.rint(src_cols - self._jaw.x0), 0, wj - 1).astype(np.intp)
                rows = np.clip(np.arange(hj)[:, None] - off[None, :], 0, hj - 1)
                idx = (rows, cols[None, :])
                jaw_a, jaw_b, jaw_below = jaw_a[idx], jaw_b[idx], jaw_below[idx]
                if teeth > 0.0:
                    jaw_t = jaw_t[idx]
            if teeth > 0.0:
                jaw_a = jaw_a + teeth * jaw_t
                jaw_b = jaw_b * (down / DOWN)
            lens = lens_profile(src_cols, m.cx, 0.5 * m.w)
            jaw_field = gap * (jaw_a * lens[None, :] + jaw_b)
            self._add(map_y, self._jaw, jaw_field, -1.0, sy, sx)

        # Brows (the same lift for both, following the head).
        if state.brow != 0.0:
            brow = float(np.clip(state.brow, -0.5, 1.0))
            bx, by = head_shift(self.layout.face.cx, self.layout.eyes[0].cy)
            self._add(map_y, self._brow, self._brow_field, brow, round(by), round(bx))

        # Gaze: shift the inside of each eye.
        if state.gaze_x != 0.0 or state.gaze_y != 0.0:
            gx = float(np.clip(state.gaze_x, -1.0, 1.0)) * self.gaze_reach[0]
            gy = float(np.clip(state.gaze_y, -1.0, 1.0)) * self.gaze_reach[1]
            for eye, (span, mask) in zip(self.layout.eyes, self._gaze, strict=True):
                edx, edy = head_shift(eye.cx, eye.cy)
                if gx:
                    self._add(map_x, span, mask, -gx, round(edy), round(edx))
                if gy:
                    self._add(map_y, span, mask, -gy, round(edy), round(edx))

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
                out, map_x, map_y, jaw_field, jaw_below, sy, sx, m.cx + mdx, half_w, gap,
                down, teeth,
            )  # fmt: skip
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
        down: float,
        teeth: float,
    ) -> None:
        m = self.layout.mouth
        r = self.roi
        jaw = self._jaw.shifted(sy, sx)
        top = m.cy + sy - 1.7 * max(m.curve, 0.0) - (1.0 - down) * gap
        span = _Span(
            math.floor(top) - 2, math.ceil(m.cy + sy + down * gap + max(-m.curve, 0.0)) + 3,
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
            teeth_contact=teeth,
        )
