"""From speech to face motion, frame by frame: mouth opening and shape, blinks, head motion.

* :class:`MouthDriver` turns each frame into a jaw opening, a lip width and a lower-lip-to-teeth
  contact. When the TTS gave viseme cues, the shape comes from them, coarticulated and leading the
  sound (:class:`~lexperience.render.articulation.Articulator`): bilabials shut the lips
  completely, "f"/"v" put the lower lip on the upper teeth, and the loudness of the sound being
  articulated only scales the opening a little. Without cues, the opening follows the loudness
  of the speech (RMS against a slowly adapting reference level, gated below about -49 dBFS so the
  mouth shuts in silence) and the shape the spectrum: hiss (energy above 3 kHz) narrows the
  opening, a low first formant ("ee", "oo") closes it a little, a strong second-formant band
  spreads the lips and a weak one rounds them; fast attack, slower release, as real jaws move.
* :class:`Blinker` blinks at natural random intervals (about every 3.5 s, sometimes twice).
* :class:`HeadMotion` sways the head by a degree or so and a few pixels, a sum of slow
  sinusoids; periodic when an idle clip must loop. Nods and brows follow the prosody
  (:class:`~lexperience.render.expression.Prosody`), the eyes glance away now and then
  (:class:`~lexperience.render.expression.Gaze`).

Everything here is plain numpy and cheap (an FFT or two of one frame of audio per frame).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .articulation import MouthTarget
from .expression import Gaze, Prosody
from .rig import FrameState

__all__ = ["Animator", "Blinker", "HeadMotion", "MouthDriver"]

#: Below this RMS (about -49 dBFS) a frame counts as silence.
SILENCE_RMS = 0.0035
#: The loudness reference never drops below this (quiet speech is not blown up to shouting).
MIN_REFERENCE = 0.04
#: With viseme cues, the share of the loudness-driven opening even the most closed shape keeps.
_SHAPE_FLOOR = 0.35
#: The largest opening while the lower lip rests on the teeth ("f", "v").
_TEETH_OPEN = 0.22


def _coef(tau: float, fps: float) -> float:
    """Per-frame smoothing coefficient of a one-pole filter with time constant ``tau``."""
    return 1.0 - math.exp(-1.0 / (max(tau, 1e-6) * fps))


class MouthDriver:
    """Per-frame mouth opening, width and teeth contact from audio (and viseme targets).

    Args:
        fps: frames per second (sets the smoothing per frame).
        expressiveness: scales the opening (1.0 natural; 0.7 subdued; 1.3 animated).
    """

    def __init__(self, fps: float, *, expressiveness: float = 1.0) -> None:
        self.fps = float(fps)
        self.expressiveness = float(expressiveness)
        self.reference = 0.08
        self._decay = math.exp(-1.0 / (1.5 * self.fps))
        self._attack = _coef(0.02, self.fps)
        self._release = _coef(0.05, self.fps)
        self._width_k = _coef(0.05, self.fps)
        self._energy_k = _coef(0.3, self.fps)
        self.open = 0.0
        self.width = 1.0
        self.teeth = 0.0
        self.env_open = 0.0  # the opening the loudness alone would give (viseme path)
        self.energy = 0.0  # slow speech activity, 0..1, for the head's sway

    @staticmethod
    def spectral_shape(samples: np.ndarray, rate: int) -> tuple[float, float]:
        """``(openness factor, width)`` of a frame of speech from its spectrum."""
        n = samples.shape[0]
        if n < 64:
            return 0.8, 1.0
        spec = np.abs(np.fft.rfft(samples * np.hanning(n))) ** 2
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        low_band = (freqs >= 150) & (freqs < 1000)
        low = float(spec[low_band].sum())
        mid = float(spec[(freqs >= 1000) & (freqs < 2600)].sum())
        high = float(spec[(freqs >= 3000) & (freqs < min(8000.0, rate / 2))].sum())
        total = low + mid + high
        if total <= 1e-12:
            return 0.8, 1.0
        hiss = high / total
        f1 = float((freqs[low_band] * spec[low_band]).sum() / low) if low > 0 else 500.0
        f1_open = float(np.clip(0.6 + 0.4 * (f1 - 300.0) / 450.0, 0.6, 1.0))
        shape = float(np.clip(1.0 - 0.9 * hiss, 0.35, 1.0)) * f1_open
        width = float(np.clip(0.82 + 0.8 * (mid / total), 0.8, 1.12))
        return shape, width

    def _level(self, samples: np.ndarray) -> float:
        """The loudness of a frame of audio, 0 (silence) to 1, against the running reference."""
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
        self.reference = max(rms, self.reference * self._decay, MIN_REFERENCE)
        level = 0.0 if rms < SILENCE_RMS else min(1.0, rms / self.reference)
        return float(min(1.0, max(0.0, (level - 0.1) / 0.75)) ** 0.85)

    def step(
        self,
        samples: np.ndarray,
        rate: int,
        target: MouthTarget | None = None,
    ) -> None:
        """Advance one frame with that frame's audio; read :attr:`open`, :attr:`width`,
        :attr:`teeth`. ``target`` is the frame's coarticulated viseme target, when the TTS gave
        cues."""
        env = self._level(samples)
        self.energy += self._energy_k * (env - self.energy)
        if target is not None:
            # The jaw opens with the sound itself (the opening is what lets it out), its amount
            # scaled by the coarticulated viseme; closures, teeth contact and lip width come
            # from the viseme target, which leads the sound.
            k = self._attack if env > self.env_open else self._release
            self.env_open += k * (env - self.env_open)
            opening = self.env_open * (_SHAPE_FLOOR + (1.0 - _SHAPE_FLOOR) * target.open)
            contact = target.teeth
            if contact > 0.0:  # lower lip on the teeth: a small opening, filled with teeth
                opening = (1.0 - contact) * opening + contact * min(opening, _TEETH_OPEN)
            opening *= 1.0 - target.closure  # the lips press shut whatever the loudness
            self.open = 0.0 if target.closed else min(1.2, opening * self.expressiveness)
            if self.open < 0.03:
                self.open = 0.0
            self.width = 1.0 + (target.width - 1.0) * min(1.0, 3.0 * self.env_open + 0.3)
            self.teeth = contact
            if abs(self.width - 1.0) < 0.01 and self.open == 0.0:
                self.width = 1.0
            return
        self.teeth = 0.0
        shape, width = self.spectral_shape(samples, rate) if env > 0 else (0.8, 1.0)
        target_open = min(1.2, env * shape * self.expressiveness)
        k = self._attack if target_open > self.open else self._release
        self.open += k * (target_open - self.open)
        if self.open < 0.03 and target_open < 0.03:
            self.open = 0.0  # under a pixel of opening: shut
        width_target = 1.0 + (width - 1.0) * min(1.0, 2.0 * env)
        self.width += self._width_k * (width_target - self.width)
        if abs(self.width - 1.0) < 0.01 and self.open == 0.0:
            self.width = 1.0  # at rest exactly: the still portrait, to the pixel


class Blinker:
    """Blink times and the eyelid closure at any moment.

    Args:
        rng: the random source (seeded for reproducible clips).
        enabled: ``False`` never blinks.
        mean_interval: average seconds between blinks.
        times: fixed blink start times instead of random ones (for loops).
    """

    DURATION = 0.26
    _CLOSE, _HOLD = 0.08, 0.04

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        enabled: bool = True,
        mean_interval: float = 3.5,
        times: list[float] | None = None,
    ) -> None:
        self.rng = rng
        self.enabled = enabled
        self.mean_interval = mean_interval
        self._fixed = times is not None
        self._pending: deque[float] = deque(sorted(times or []))
        self._next = float(rng.uniform(0.6, 2.5)) if not self._fixed else math.inf

    def _schedule(self, t: float) -> None:
        while not self._fixed and self._next <= t + self.DURATION:
            start = self._next
            self._pending.append(start)
            if self.rng.random() < 0.12:  # a double blink now and then
                self._pending.append(start + float(self.rng.uniform(0.32, 0.42)))
            gap = 1.0 + float(self.rng.gamma(2.5, (self.mean_interval - 1.0) / 2.5))
            self._next = self._pending[-1] + gap

    @classmethod
    def profile(cls, dt: float) -> float:
        """Eyelid closure ``dt`` seconds after a blink starts."""
        if dt < 0 or dt >= cls.DURATION:
            return 0.0
        if dt < cls._CLOSE:
            x = dt / cls._CLOSE
            return x * x
        if dt < cls._CLOSE + cls._HOLD:
            return 1.0
        x = (dt - cls._CLOSE - cls._HOLD) / (cls.DURATION - cls._CLOSE - cls._HOLD)
        return (1.0 - x) ** 2

    def value(self, t: float) -> float:
        """Closure at time ``t`` (seconds; call with non-decreasing ``t``)."""
        if not self.enabled:
            return 0.0
        self._schedule(t)
        while self._pending and self._pending[0] + self.DURATION <= t:
            self._pending.popleft()
        return max((self.profile(t - s) for s in self._pending if s <= t), default=0.0)


class HeadMotion:
    """Slow head sway: roll, sideways and vertical shift; a small nod with speech.

    Args:
        rng: the random source (picks the frequencies).
        scale: pixels of the largest sideways shift (about 1 % of the face width looks natural).
        enabled: ``False`` keeps the head still.
        period: make the motion repeat exactly every ``period`` seconds (idle loops).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        scale: float,
        enabled: bool = True,
        period: float | None = None,
    ) -> None:
        self.enabled = enabled
        self.scale = scale

        def freqs(base: tuple[float, ...]) -> list[float]:
            out = []
            for f in base:
                f = f * float(rng.uniform(0.8, 1.25))
                if period is not None:
                    f = max(1, round(f * period)) / period
                out.append(f)
            return out

        self._rot = freqs((0.13, 0.29, 0.47))
        self._dx = freqs((0.09, 0.21, 0.37))
        self._dy = freqs((0.17, 0.31, 0.53))
        self._nod = freqs((0.7,))[0]
        self._weights = (0.6, 0.3, 0.15)

    def _wave(self, t: float, freqs: list[float]) -> float:
        total = sum(
            w * math.sin(2 * math.pi * f * t) for w, f in zip(self._weights, freqs, strict=True)
        )
        return total / sum(self._weights)

    def pose(self, t: float, energy: float = 0.0, nod: float = 0.0) -> tuple[float, float, float]:
        """``(rotation degrees, dx, dy)`` at time ``t``; 0 at ``t = 0``. ``energy`` (speech
        activity, 0..1) livens the sway; ``nod`` (pixels) dips the head."""
        if not self.enabled:
            return 0.0, 0.0, 0.0
        rot = 1.2 * self._wave(t, self._rot) + 0.4 * energy * math.sin(2 * math.pi * self._nod * t)
        dx = 1.0 * self.scale * self._wave(t, self._dx)
        dy = 0.6 * self.scale * self._wave(t, self._dy) + 0.3 * self.scale * energy + nod
        return rot, dx, dy


class Animator:
    """Everything that changes from frame to frame, for one stream.

    Args:
        fps: frames per second.
        motion_scale: pixels of head sway (the rig's face width x 0.012 is natural).
        rng: the random source of blinks and sway.
        blink, head_motion: turn either off (head motion includes the nods).
        gaze: glance away now and then.
        brows: raise the brows on accents of the speech.
        expressiveness: scales the jaw opening.
        loop_seconds: make blinks, gaze and sway loop over this length (idle clips).
    """

    def __init__(
        self,
        fps: float,
        *,
        motion_scale: float,
        rng: np.random.Generator,
        blink: bool = True,
        head_motion: bool = True,
        gaze: bool = True,
        brows: bool = True,
        expressiveness: float = 1.0,
        loop_seconds: float | None = None,
    ) -> None:
        self.fps = float(fps)
        self.mouth = MouthDriver(fps, expressiveness=expressiveness)
        times: list[float] | None = None
        if loop_seconds is not None:
            # Blinks that never straddle the loop point: about one per 3.5 s, evenly jittered.
            n = max(1, round(loop_seconds / 3.5)) if loop_seconds >= 1.2 else 0
            slot = loop_seconds / max(n, 1)
            times = [
                i * slot + float(rng.uniform(0.25, max(0.3, slot - Blinker.DURATION - 0.25)))
                for i in range(n)
            ]
        self.blinker = Blinker(rng, enabled=blink, times=times)
        self.head = HeadMotion(rng, scale=motion_scale, enabled=head_motion, period=loop_seconds)
        self.gaze = Gaze(rng, enabled=gaze, period=loop_seconds)
        self.prosody = Prosody(fps, nod_pixels=1.6 * motion_scale, brows=brows, nods=head_motion)

    def state(
        self,
        index: int,
        samples: np.ndarray,
        rate: int,
        target: MouthTarget | None = None,
        ahead: np.ndarray | None = None,
    ) -> FrameState:
        """The state of frame ``index`` given the audio it covers (and, with viseme cues, the
        frame's mouth target and the audio of the moment it articulates)."""
        t = index / self.fps
        self.mouth.step(samples, rate, target)
        pause = None if target is None else not target.speech
        self.prosody.step(t, ahead if ahead is not None else samples, rate, pause)
        rot, dx, dy = self.head.pose(t, self.mouth.energy, self.prosody.nod)
        gx, gy = self.gaze.value(t)
        return FrameState(
            open=self.mouth.open,
            width=self.mouth.width,
            teeth=self.mouth.teeth,
            blink=self.blinker.value(t),
            brow=self.prosody.brow,
            gaze_x=gx,
            gaze_y=gy,
            rotation=rot,
            dx=dx,
            dy=dy,
        )

    def idle_state(self, index: int) -> FrameState:
        """A silent frame: mouth closed, blinks and sway go on."""
        return self.state(index, np.zeros(0, dtype=np.float32), 16_000)
