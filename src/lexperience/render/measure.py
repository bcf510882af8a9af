"""Measuring lip sync on rendered frames: how open the mouth looks, and viseme accuracy.

:func:`viseme_accuracy` checks, on the frames an avatar rendered, that the lips are shut at every
bilabial closure (``PP``: p, b, m) and open at every open vowel (``aa``, ``oh``), given the cue
timings of the speech. It looks at pixels only: the dark area of the mouth's inside (the cavity)
in each frame, against the portrait at rest; nothing internal to the avatar is read. The tests and
``benchmarks/visemes.py`` use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..visemes import VisemeCue, merge_cues
from .face import FaceLayout

__all__ = ["OPEN_VOWELS", "VisemeAccuracy", "dark_area", "viseme_accuracy"]

#: The visemes of open vowels: the mouth must visibly open for them.
OPEN_VOWELS = frozenset({"aa", "oh"})
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def dark_area(image: np.ndarray, layout: FaceLayout, *, threshold: float = 50.0) -> int:
    """Pixels darker than ``threshold`` (luma 0-255) around the mouth: the visible cavity."""
    x0, y0, x1, y1 = layout.mouth_box()
    pad = max(2, round(0.1 * layout.mouth.w))
    h, w = image.shape[:2]
    crop = image[max(0, y0 - pad) : min(h, y1 + pad), max(0, x0 - pad) : min(w, x1 + pad)]
    return int(((crop.astype(np.float32) @ _LUMA) < threshold).sum())


@dataclass
class VisemeAccuracy:
    """Share of bilabial closures with the lips shut and of open vowels with the mouth open.

    Attributes:
        closures, closed: bilabial closures checked, and how many showed shut lips.
        vowels, opened: open vowels checked, and how many showed an open mouth.
        open_threshold, closed_threshold: the cavity areas (pixels over the rest pose) that
            count as open and as shut.
        misses: ``(viseme, start seconds, cavity pixels)`` of the failures.
    """

    closures: int = 0
    closed: int = 0
    vowels: int = 0
    opened: int = 0
    open_threshold: float = 0.0
    closed_threshold: float = 0.0
    misses: list[tuple[str, float, int]] = field(default_factory=list)

    @property
    def closed_rate(self) -> float:
        return self.closed / self.closures if self.closures else 1.0

    @property
    def open_rate(self) -> float:
        return self.opened / self.vowels if self.vowels else 1.0


def viseme_accuracy(
    frames: Sequence[np.ndarray],
    cues: Sequence[VisemeCue],
    layout: FaceLayout,
    *,
    fps: float,
    lead: float,
    rest: np.ndarray,
    wide_open: np.ndarray,
) -> VisemeAccuracy:
    """Check the mouth in ``frames`` against the speech's ``cues`` (absolute seconds).

    Neighbouring cues of the same viseme (a sound split across two audio chunks) count once. A
    closure counts as shut, a vowel as open, when a frame over the span the mouth shapes that
    sound, ``[start - lead, end]``, shows it: what a viewer sees during the "b" or the "a". Shut:
    at most 3 % of a wide-open mouth's cavity over the rest pose (``rest``); open: at least 15 %
    (``wide_open`` is a frame of the mouth opened fully, "aa").
    """
    base = dark_area(rest, layout)
    full = max(1, dark_area(wide_open, layout) - base)
    result = VisemeAccuracy(open_threshold=0.15 * full, closed_threshold=0.03 * full)
    areas: dict[int, int] = {}

    def area(k: int) -> int:
        if k not in areas:
            areas[k] = dark_area(frames[k], layout) - base
        return areas[k]

    for cue in merge_cues(cues):
        if (cue.viseme != "PP" and cue.viseme not in OPEN_VOWELS) or not frames:
            continue
        first = max(0, int((cue.start - lead) * fps))
        last = min(len(frames) - 1, max(first, int(np.ceil(cue.end * fps)) - 1))
        seen = [area(k) for k in range(first, last + 1)]
        if cue.viseme == "PP":
            result.closures += 1
            if min(seen) <= result.closed_threshold:
                result.closed += 1
            else:
                result.misses.append((cue.viseme, cue.start, min(seen)))
        else:
            result.vowels += 1
            if max(seen) >= result.open_threshold:
                result.opened += 1
            else:
                result.misses.append((cue.viseme, cue.start, max(seen)))
    return result
