"""From timed visemes to mouth targets per frame: coarticulation, anticipation, full closures.

A TTS that knows its phoneme timings (Piper, espeak-ng, ElevenLabs' alignment) gives viseme cues;
:class:`Articulator` turns them into one :class:`MouthTarget` per video frame:

* **Anticipation.** Frame ``i`` shows the articulation of the sound at ``(i + 0.5) / fps + lead``:
  the lips lead the sound by :data:`DEFAULT_LEAD` (60 ms), as people's do (they are in place
  before the sound they shape comes out). Closures start moving a lead ahead, are shut just before
  the sound and part with its end: the burst of a "p" is the lips parting.
* **Coarticulation.** Each cue pulls the mouth towards its shape with a *dominance* that is full
  inside the cue and decays exponentially with the distance outside it (Cohen and Massaro's
  dominance model). The shape at any moment is the dominance-weighted mean of the neighbouring
  targets, so a vowel's opening flows into the next consonant and the lips of a ``t`` take the
  rounding of the ``oo`` after it, instead of jumping from label to label at frame boundaries.
  Lip consonants dominate strongly, tongue consonants weakly (their lips are free).
* **Closures are exact.** Bilabials (``PP``: p, b, m) close the lips completely over their whole
  span, and at least on the frame nearest to their middle even when they are shorter than a frame
  (a 30 ms ``b`` between two 40 ms frames would otherwise be missed). Labiodentals (``FF``: f, v)
  bring the lower lip up to the upper teeth the same way.

Everything is plain Python over a short window of cues: a few microseconds per frame.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..visemes import VISEME_OPENNESS, VISEME_TEETH, VISEME_WIDTH, VisemeCue

__all__ = ["DEFAULT_LEAD", "Articulator", "MouthTarget"]

#: How far the mouth leads the sound, in seconds.
DEFAULT_LEAD = 0.06

# Dominance of each viseme over the jaw/lip opening and over the lip width (rounding/spread), and
# how fast it decays outside its cue (seconds). Lip sounds must reach their shape; the lips of
# tongue sounds (t, d, k, n, s) follow the neighbouring vowels.
_DOMINANCE: dict[str, tuple[float, float, float]] = {
    #        open  width  decay
    "sil": (0.6, 0.3, 0.05),
    "PP": (3.0, 1.0, 0.025),
    "FF": (2.5, 0.8, 0.025),
    "TH": (1.0, 0.4, 0.03),
    "DD": (0.7, 0.2, 0.03),
    "kk": (0.5, 0.2, 0.03),
    "CH": (1.2, 1.2, 0.03),
    "SS": (1.0, 0.4, 0.03),
    "nn": (0.6, 0.2, 0.03),
    "RR": (0.8, 1.0, 0.035),
    "aa": (1.0, 0.8, 0.045),
    "E": (1.0, 0.8, 0.045),
    "ih": (1.0, 0.8, 0.045),
    "oh": (1.0, 1.0, 0.045),
    "ou": (1.0, 1.2, 0.045),
}
#: Cues further than this from a frame's time do not influence it (seconds).
REACH = 0.12
#: Share of the lead by which the lips are already shut before a bilabial's sound (or on the
#: teeth before an "f"); they start moving a whole lead ahead.
_CLOSED_AHEAD = 0.35
#: Seconds the lips take to part after a closure.
_RELEASE = 0.02


@dataclass(frozen=True)
class MouthTarget:
    """What the mouth should do on one frame.

    Attributes:
        open: jaw/lip opening, 0 (closed) to 1 (an open "aa").
        width: lip width relative to rest (0.7 rounded to 1.15 spread).
        teeth: lower lip on the upper teeth, 0 to 1 (f, v).
        closure: how far the lips are pressed shut, 0 to 1 (bilabials, ramping in and out).
        closed: the lips must be shut on this frame (``closure`` is 1).
        speech: whether a speech sound (not a pause) is under the frame.
    """

    open: float
    width: float
    teeth: float
    closure: float
    closed: bool
    speech: bool


class Articulator:
    """Viseme cues on an absolute timeline (seconds from the start of the stream) and the mouth
    target of any frame.

    Args:
        fps: frames per second.
        lead: how far the mouth leads the sound (seconds, 0 to 0.2).
    """

    def __init__(self, fps: float, *, lead: float = DEFAULT_LEAD) -> None:
        self.fps = float(fps)
        self.lead = float(lead)
        self._starts: list[float] = []
        self._cues: list[VisemeCue] = []
        self.horizon = 0.0  # the latest cue end seen
        self._longest = 0.0  # the longest cue, to find the cues that cover a moment

    def __bool__(self) -> bool:
        return bool(self._cues)

    @property
    def lookahead(self) -> float:
        """Seconds of audio (and cues) after a frame's own audio that its target depends on."""
        return max(0.0, self.lead + 0.5 / self.fps + REACH)

    def add(self, cues: Iterable[VisemeCue]) -> None:
        """Add cues (absolute times); they may come in any order."""
        for cue in cues:
            if cue.end <= cue.start or cue.viseme not in _DOMINANCE:
                continue
            i = bisect.bisect_right(self._starts, cue.start)
            self._starts.insert(i, cue.start)
            self._cues.insert(i, cue)
            self.horizon = max(self.horizon, cue.end)
            self._longest = max(self._longest, cue.end - cue.start)

    def forget_before(self, seconds: float) -> None:
        """Drop cues that end before ``seconds`` minus the reach (never asked for again)."""
        limit = seconds - REACH - 0.05
        keep = 0
        while keep < len(self._cues) and self._cues[keep].end < limit:
            keep += 1
        if keep:
            del self._cues[:keep]
            del self._starts[:keep]

    def time_of(self, index: int) -> float:
        """The moment of speech frame ``index`` shows (its middle plus the lead)."""
        return (index + 0.5) / self.fps + self.lead

    def _near(self, t: float) -> list[VisemeCue]:
        lo = bisect.bisect_left(self._starts, t - REACH - self._longest)
        hi = bisect.bisect_right(self._starts, t + REACH)
        return [c for c in self._cues[lo:hi] if c.end > t - REACH]

    def target(self, index: int) -> MouthTarget | None:
        """The mouth target of frame ``index``, or ``None`` when no cue is near it."""
        t = self.time_of(index)
        near = self._near(t)
        if not near:
            return None
        w_open = w_width = 0.0
        s_open = s_width = s_teeth = 0.0
        closure = contact = 0.0
        speech = False
        half = 0.5 / self.fps
        for cue in near:
            vis = cue.viseme
            a_open, a_width, decay = _DOMINANCE[vis]
            d = max(0.0, cue.start - t, t - cue.end)
            if d == 0.0 and vis != "sil":
                speech = True
            fall = math.exp(-d / decay)
            w_open += a_open * fall
            w_width += a_width * fall
            s_open += a_open * fall * VISEME_OPENNESS[vis]
            s_width += a_width * fall * VISEME_WIDTH[vis]
            s_teeth += a_open * fall * VISEME_TEETH[vis]
            if vis in ("PP", "FF"):
                # The lips start closing (or moving to the teeth) ``lead`` ahead of the sound and
                # are shut just before it (_CLOSED_AHEAD of the lead); they part with the sound's
                # end (the burst of a "p" is the lips parting). Full over that span, ramping in
                # and out, and always full on the frame nearest to its middle, so a closure
                # shorter than a frame is never skipped.
                begin = cue.start + (1.0 - _CLOSED_AHEAD) * self.lead
                end = cue.end + self.lead
                middle = 0.5 * (begin + end)
                if abs(middle - t) <= half or begin <= t <= end:
                    level = 1.0
                elif t < begin:
                    level = max(0.0, 1.0 - (begin - t) / ((1.0 - _CLOSED_AHEAD) * self.lead + 0.01))
                else:
                    level = max(0.0, 1.0 - (t - end) / _RELEASE)
                if vis == "PP":
                    closure = max(closure, level)
                else:
                    contact = max(contact, level)
        opening = s_open / w_open if w_open > 0 else 0.0
        width = s_width / w_width if w_width > 0 else 1.0
        teeth = s_teeth / w_open if w_open > 0 else 0.0
        opening *= 1.0 - closure
        # Teeth show where the lip meets them (f, v), not in the neighbours' blend.
        teeth = min(teeth, contact) if contact > 0.0 else 0.0
        teeth *= 1.0 - closure
        if contact > 0.0:
            opening = min(opening, VISEME_OPENNESS["FF"] + (1.0 - contact) * opening)
        return MouthTarget(
            open=opening, width=width, teeth=teeth, closure=closure, closed=closure >= 1.0,
            speech=speech,
        )  # fmt: skip
