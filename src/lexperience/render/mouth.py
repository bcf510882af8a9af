"""Mouth geometry and the inside of an open mouth.

The jaw is opened by a warp (see :mod:`lexperience.render.rig`): content below the line between
the lips moves down by ``DOWN * gap * lens(x)``, the upper lip up by ``UP * gap * lens(x)``, where
``lens`` is 1 in the middle of the mouth and 0 at its corners. Pixels of the output whose source
would cross the lip line are the opening; :func:`paint_opening` fills them: upper teeth along the
top (when the portrait does not already show teeth), then a dark cavity with a hint of tongue
towards the lower lip. Edges are anti-aliased from the warp's sub-pixel source positions, so the
opening always matches the moved lips exactly, whatever the width, head motion or image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DOWN", "MAX_GAP", "UP", "MouthColors", "lens_profile", "paint_opening"]

#: Share of the opening taken by the lower lip moving down (the jaw does most of the work).
DOWN = 0.78
#: Share taken by the upper lip moving up.
UP = 1.0 - DOWN
#: Height of a fully open mouth ("aa"), as a share of the mouth width.
MAX_GAP = 0.42


@dataclass(frozen=True)
class MouthColors:
    """RGB colours of the inside of the mouth."""

    cavity: tuple[int, int, int] = (30, 10, 14)
    rim: tuple[int, int, int] = (92, 36, 42)
    tongue: tuple[int, int, int] = (150, 62, 70)
    teeth: tuple[int, int, int] = (232, 228, 218)


def lens_profile(xs: np.ndarray, cx: float, half_width: float) -> np.ndarray:
    """How far each column of the mouth opens, 1 in the middle to 0 at the corners."""
    u = (xs - cx) / max(half_width, 1e-3)
    return np.power(np.clip(1.0 - u * u, 0.0, 1.0), 0.75).astype(np.float32)


def paint_opening(
    region: np.ndarray,
    src_y: np.ndarray,
    line_src: np.ndarray,
    field_below: np.ndarray,
    natural_y: np.ndarray,
    *,
    columns: np.ndarray,
    cx: float,
    half_width: float,
    gap: float,
    max_gap: float,
    teeth: bool,
    colors: MouthColors,
    teeth_gain: float = 1.0,
    teeth_contact: float = 0.0,
) -> None:
    """Fill the opening of the mouth inside ``region`` (HxWx3 uint8, changed in place).

    A pixel is inside the opening when the jaw warp made it sample across the lip line: it was
    warped as part of the lower face (``field_below``) but samples above the line, or the other
    way round. ``natural_y`` (where it would sample without the jaw) guards against pixels the
    head motion alone moved across the line.

    Args:
        region: the output pixels around the mouth.
        src_y: the source row the warp sampled for each pixel (float, HxW).
        line_src: the source row of the lip line under each pixel (HxW).
        field_below: whether the jaw warp treated each pixel as below the lip line (HxW).
        natural_y: the source row each pixel would sample without the jaw (HxW).
        columns: the x coordinate (output pixels) of each column of ``region``.
        cx, half_width: the mouth centre and half width (output pixels, current width).
        gap: the current opening at the centre, ``max_gap``: the largest opening (pixels).
        teeth: draw the upper teeth along the top of the opening.
        colors: the colours of teeth, tongue and cavity.
        teeth_gain: brightness of the teeth (follows the portrait's lighting).
        teeth_contact: 0 to 1, the lower lip against the upper teeth ("f", "v"): the opening
            fills with teeth down to a thin shadow where they meet the lower lip.
    """
    natural_below = natural_y >= line_src
    depth = np.where(field_below, line_src - src_y, src_y - line_src)  # >0 inside the opening
    depth = np.where(field_below == natural_below, depth, -1.0)
    alpha = np.clip(depth + 0.5, 0.0, 1.0)
    if not np.any(alpha > 0):
        return
    # Close one-pixel holes left by rounding (a pixel between two painted ones is painted).
    pad = np.pad(alpha, 1)
    alpha = np.maximum.reduce(
        [
            alpha,
            np.minimum(pad[:-2, 1:-1], pad[2:, 1:-1]),
            np.minimum(pad[1:-1, :-2], pad[1:-1, 2:]),
        ]
    )
    u = np.clip(np.abs(columns - cx) / max(half_width, 1e-3), 0.0, 1.0)[None, :]
    cavity = np.asarray(colors.cavity, np.float32)
    rim = np.asarray(colors.rim, np.float32)
    tongue = np.asarray(colors.tongue, np.float32)
    # Depth for shading; pixels filled by the closing above sit inside the opening.
    d = np.where(depth < 0.0, max_gap, depth)
    # A darker inside, a reddish rim along the lips.
    inner = np.clip(d / max(0.07 * max_gap, 1.0), 0.0, 1.0)[..., None]
    color = rim + (cavity - rim) * inner
    # The tongue shows near the lower lip once the jaw drops.
    tongue_w = 0.5 * np.clip((gap - 0.35 * max_gap) / (0.4 * max_gap), 0.0, 1.0)
    t = tongue_w * np.exp(-d / max(0.2 * max_gap, 0.5)) * (1.0 - u * u)
    t = np.where(field_below, t, 0.0)[..., None]
    color = color + (tongue - color) * t
    if teeth:
        teeth_col = np.asarray(colors.teeth, np.float32) * teeth_gain
        shade = (1.0 - 0.45 * u * u)[..., None]
        painted = teeth_col * shade
        if teeth_contact > 0.0:
            # The lower lip pressed to the teeth: teeth down to a one-pixel shadow at the lip.
            contact = np.where(field_below, np.clip(depth - 0.8, 0.0, 1.0), 1.0)[..., None]
            lower = painted * (0.55 + 0.45 * contact)
            color = color + (np.where(field_below[..., None], lower, painted) - color) * (
                teeth_contact
            )
        color = np.where(~field_below[..., None], painted, color)
    a = alpha[..., None]
    out = region.astype(np.float32) * (1.0 - a) + color * a
    region[...] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
