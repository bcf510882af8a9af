"""The visible "AI-generated" mark stamped on every avatar frame by default."""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .font import GLYPH_HEIGHT, GLYPH_WIDTH, glyph

__all__ = ["Watermark", "draw_text"]

Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]


@functools.lru_cache(maxsize=64)
def _text_mask(text: str, scale: int) -> np.ndarray:
    """Boolean mask of ``text`` drawn with the bitmap font at ``scale`` pixels per font pixel.

    Cached (read-only): the watermark stamps the same mask on every frame.
    """
    cols = []
    for i, ch in enumerate(text):
        if i:
            cols.append(np.zeros((GLYPH_HEIGHT, 1), dtype=bool))
        cols.append(glyph(ch))
    mask = np.concatenate(cols, axis=1) if cols else np.zeros((GLYPH_HEIGHT, 0), dtype=bool)
    out = np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool)
    out.setflags(write=False)
    return out


def draw_text(
    image: np.ndarray,
    text: str,
    *,
    x: int,
    y: int,
    scale: int = 2,
    color: tuple[int, int, int] = (255, 255, 255),
    background: tuple[int, int, int] | None = (0, 0, 0),
    opacity: float = 0.6,
    padding: int = 3,
) -> np.ndarray:
    """Draw ``text`` into ``image`` (HxWx3 uint8, modified in place and returned) at ``(x, y)``.

    The text sits on a translucent ``background`` box (``None`` for no box).
    """
    mask = _text_mask(text, scale)
    h, w = mask.shape
    box_h, box_w = h + 2 * padding, w + 2 * padding
    H, W = image.shape[:2]
    x0, y0 = max(0, min(x, W - box_w)), max(0, min(y, H - box_h))
    region = image[y0 : y0 + box_h, x0 : x0 + box_w].astype(np.float32)
    if background is not None:
        region = region * (1 - opacity) + np.asarray(background, np.float32) * opacity
    inner = mask[: region.shape[0] - padding, : region.shape[1] - padding]
    sub = region[padding : padding + inner.shape[0], padding : padding + inner.shape[1]]
    sub[inner] = np.asarray(color, np.float32)
    image[y0 : y0 + box_h, x0 : x0 + box_w] = np.clip(region, 0, 255).astype(np.uint8)
    return image


class Watermark(BaseModel):
    """A visible text mark for generated video. On by default in :class:`Conversation`.

    The scale follows the frame size (about 1/40 of its height per text line) so the mark stays
    readable on small frames and unobtrusive on large ones.
    """

    model_config = ConfigDict(frozen=True)

    text: str = "AI-GENERATED"
    corner: Corner = "bottom-right"
    opacity: float = Field(default=0.55, ge=0.0, le=1.0)
    margin: int = Field(default=8, ge=0)

    def scale_for(self, height: int) -> int:
        return max(1, round(height / 40 / GLYPH_HEIGHT * 1.6))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Stamp the mark onto ``image`` (a copy is returned; the input is not changed)."""
        out = np.array(image, dtype=np.uint8, copy=True)
        H, W = out.shape[:2]
        scale = self.scale_for(H)
        w = len(self.text) * (GLYPH_WIDTH + 1) * scale + 6
        h = GLYPH_HEIGHT * scale + 6
        left = self.corner.endswith("left")
        top = self.corner.startswith("top")
        x = self.margin if left else W - w - self.margin
        y = self.margin if top else H - h - self.margin
        return draw_text(out, self.text, x=x, y=y, scale=scale, opacity=self.opacity)
