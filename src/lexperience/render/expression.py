"""The face beyond the mouth: brows and nods that follow the prosody of the speech, and gaze.

* :class:`Prosody` listens to each frame's audio and finds the *accents* of the speech: syllables
  clearly louder or higher in pitch than the speaker's running level (loudness in dB against a
  slow mean, pitch in semitones against a slow mean of the voiced frames; pitch by
  autocorrelation). An accent raises the brows briefly and dips the head in a small nod; the end
  of a phrase (speech followed by a pause, seen in the audio or in the TTS's cues) gives a slower,
  slightly deeper nod and lets the brows settle.
* :class:`Gaze` makes the eyes glance away now and then (every few seconds, for about a second,
  mostly sideways) and come back to the listener; periodic when an idle clip must loop.

Plain numpy, a few tens of microseconds per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Gaze", "Prosody"]

_SILENCE_RMS = 0.0035


def _pulse(dt: float, rise: float, hold: float, fall: float) -> float:
    """0 before ``dt = 0``, a smooth rise over ``rise`` s, ``hold`` s at 1, then an exponential
    fall with time constant ``fall``."""
    if dt <= 0.0:
        return 0.0
    if dt < rise:
        x = dt / rise
        return x * x * (3.0 - 2.0 * x)
    if dt < rise + hold:
        return 1.0
    return math.exp(-(dt - rise - hold) / fall)


def _bump(dt: float, length: float) -> float:
    """A smooth 0 -> 1 -> 0 bump over ``length`` seconds from ``dt = 0``."""
    if dt <= 0.0 or dt >= length:
        return 0.0
    return 0.5 - 0.5 * math.cos(2.0 * math.pi * dt / length)


def pitch(samples: np.ndarray, rate: int) -> float | None:
    """The fundamental frequency (75-400 Hz) of a frame of voiced speech, or ``None``."""
    n = samples.shape[0]
    lo, hi = int(rate / 400), int(rate / 75)
    if n < 2 * lo + 8 or hi < lo + 2:
        return None
    x = samples.astype(np.float64) - float(samples.mean())
    energy = float(x @ x)
    if energy <= 1e-9:
        return None
    size = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(x, size)
    ac = np.fft.irfft(spec * np.conj(spec), size)[: min(hi, n - 4) + 1]
    if ac.shape[0] <= lo + 1:
        return None
    # Normalise by the overlap, so long lags are not penalised.
    ac = ac / (energy * (n - np.arange(ac.shape[0])) / n)
    k = lo + int(np.argmax(ac[lo:]))
    if ac[k] < 0.45:
        return None  # not clearly periodic: unvoiced or noise
    return rate / k


@dataclass
class _Accent:
    at: float
    strength: float
    phrase_end: bool = False


class Prosody:
    """Brows and nods from the speech, frame by frame.

    Args:
        fps: frames per second.
        nod_pixels: how far the head dips on a strong accent.
        brows: move the brows (``False`` keeps them still).
        nods: nod on accents and phrase ends.
    """

    REFRACTORY = 0.45  # seconds between two accents at least
    PAUSE = 0.16  # silence this long after speech ends a phrase

    def __init__(
        self, fps: float, *, nod_pixels: float, brows: bool = True, nods: bool = True
    ) -> None:
        self.fps = float(fps)
        self.nod_pixels = float(nod_pixels)
        self.brows_enabled = brows
        self.nods_enabled = nods
        self._k_level = 1.0 - math.exp(-1.0 / (1.5 * self.fps))
        self._level_db: float | None = None  # running mean loudness of speech frames
        self._pitch_st: float | None = None  # running mean pitch of voiced frames, semitones
        self._scores: list[float] = [0.0, 0.0]
        self._last_accent = -10.0
        self._speech_run = 0.0  # seconds of (nearly) continuous speech so far
        self._silent_run = 0.0
        self._phrase_closed = True
        self._accents: list[_Accent] = []
        self.brow = 0.0
        self.nod = 0.0

    def step(self, t: float, samples: np.ndarray, rate: int, pause: bool | None = None) -> None:
        """Advance to frame time ``t`` with that frame's audio; read :attr:`brow`, :attr:`nod`.

        ``pause`` says whether the TTS's cues put a pause here (``None``: judge from the audio).
        """
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
        silent = rms < _SILENCE_RMS if pause is None else pause
        dt = 1.0 / self.fps
        score = 0.0
        if silent:
            self._silent_run += dt
            if (
                not self._phrase_closed
                and self._silent_run >= self.PAUSE
                and self._speech_run >= 0.6
            ):
                self._accents.append(_Accent(t, 0.8, phrase_end=True))
                self._phrase_closed = True
            if self._silent_run >= self.PAUSE:
                self._speech_run = 0.0
        else:
            self._silent_run = 0.0
            self._speech_run += dt
            self._phrase_closed = False
            db = 20.0 * math.log10(max(rms, 1e-6))
            if self._level_db is None:
                self._level_db = db - 2.0
            f0 = pitch(samples, rate)
            st = 12.0 * math.log2(f0 / 100.0) if f0 is not None else None
            if st is not None and self._pitch_st is None:
                self._pitch_st = st
            loud = max(0.0, db - self._level_db) / 4.0
            high = max(0.0, st - self._pitch_st) / 2.0 if st is not None and self._pitch_st else 0.0
            score = loud + high
            self._level_db += self._k_level * (db - self._level_db)
            if st is not None and self._pitch_st is not None:
                self._pitch_st += self._k_level * (st - self._pitch_st)
        # An accent is a peak of the score (seen one frame late) above 1.
        before, peak = self._scores
        if (
            peak >= 1.0
            and peak >= before
            and peak > score
            and t - self._last_accent >= self.REFRACTORY
        ):
            self._accents.append(_Accent(t - dt, min(1.0, 0.4 + 0.3 * peak)))
            self._last_accent = t - dt
        self._scores = [peak, score]
        self._accents = [a for a in self._accents if t - a.at < 2.5]
        brow = 0.0
        nod = 0.0
        for a in self._accents:
            age = t - a.at
            if a.phrase_end:
                nod += 1.0 * a.strength * _bump(age, 0.6)
            else:
                brow = max(brow, a.strength * _pulse(age, 0.08, 0.12, 0.3))
                nod += 0.6 * a.strength * _bump(age, 0.36)
        self.brow = brow if self.brows_enabled else 0.0
        self.nod = min(1.5, nod) * self.nod_pixels if self.nods_enabled else 0.0


class Gaze:
    """Where the eyes look: at the listener, with a glance away every few seconds.

    Args:
        rng: the random source.
        enabled: ``False`` always looks straight ahead.
        period: make the glances repeat exactly every ``period`` seconds (idle loops): none
            straddles the loop point.
        mean_interval: average seconds from one glance to the next.
    """

    MOVE = 0.05  # a saccade takes about 50 ms

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        enabled: bool = True,
        period: float | None = None,
        mean_interval: float = 3.5,
    ) -> None:
        self.rng = rng
        self.enabled = enabled
        self.period = period
        self.mean_interval = mean_interval
        self._glances: list[tuple[float, float, float, float]] = []  # start, end, x, y
        if period is not None:
            n = max(0, math.floor(period / mean_interval)) if period >= 2.0 else 0
            slot = period / max(n, 1)
            for i in range(n):
                length = float(rng.uniform(0.5, min(1.2, slot - 0.6)))
                start = i * slot + float(rng.uniform(0.2, max(0.25, slot - length - 0.3)))
                self._glances.append((start, start + length, *self._direction()))
            self._next = math.inf
        else:
            self._next = float(rng.uniform(1.0, 3.0))

    def _direction(self) -> tuple[float, float]:
        side = 1.0 if self.rng.random() < 0.5 else -1.0
        return side * float(self.rng.uniform(0.5, 1.0)), float(self.rng.uniform(-0.5, 0.35))

    def value(self, t: float) -> tuple[float, float]:
        """``(x, y)`` of the gaze at time ``t`` (call with non-decreasing ``t``)."""
        if not self.enabled:
            return 0.0, 0.0
        while self._next <= t + self.MOVE:
            length = float(self.rng.uniform(0.4, 1.3))
            self._glances.append((self._next, self._next + length, *self._direction()))
            self._next += length + 1.0 + float(self.rng.gamma(2.0, (self.mean_interval - 1.5) / 2))
        if self.period is None:
            self._glances = [g for g in self._glances if g[1] + self.MOVE > t - 1.0]
        for start, end, x, y in self._glances:
            if start <= t < end + self.MOVE:
                k = min(1.0, (t - start) / self.MOVE)
                if t > end:
                    k = max(0.0, 1.0 - (t - end) / self.MOVE)
                return x * k, y * k
        return 0.0, 0.0
