"""Band-limited sample-rate conversion in plain numpy (windowed-sinc interpolation)."""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

__all__ = ["resample"]

_HALF_TAPS = 16  # taps on each side of the interpolation point
_BLOCK = 65_536  # output samples computed per vectorised block (bounds memory)
_MAX_PHASES = 4096  # rate pairs with more distinct phases compute kernels per sample
_BETA = 8.0


def _kernel(dist: np.ndarray, cutoff: float, half: int) -> np.ndarray:
    """Kaiser-windowed sinc weights for taps at distance ``dist`` from the output point."""
    window_arg = np.clip(1.0 - (dist / (half + 1)) ** 2, 0.0, 1.0)
    return cutoff * np.sinc(cutoff * dist) * np.i0(_BETA * np.sqrt(window_arg)) / np.i0(_BETA)


@lru_cache(maxsize=16)
def _phase_table(up: int, cutoff: float, half: int) -> np.ndarray:
    """Kernels for every fractional position ``k / up`` (one row per phase), computed once."""
    offsets = np.arange(-half + 1, half + 1)
    frac = np.arange(up, dtype=np.float64)[:, None] / up
    return _kernel(frac - offsets[None, :], cutoff, half).astype(np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono float32 ``samples`` from ``from_rate`` to ``to_rate`` Hz.

    Each output sample is a Kaiser-windowed sinc interpolation of the 32 nearest input samples;
    when downsampling, the sinc's cut-off is lowered to the new Nyquist frequency so that nothing
    aliases. Output positions of a rational rate pair repeat with a period of ``to_rate / gcd``
    phases (2 for 24 -> 16 kHz, 320 for 22.05 -> 16 kHz), so the kernels are computed once per
    phase and cached: the cost is one gather and one multiply-add per tap.
    """
    x = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or x.size == 0:
        return np.array(x, dtype=np.float32, copy=True)
    ratio = to_rate / from_rate
    n_out = round(x.shape[0] * ratio)
    if n_out == 0:
        return np.zeros(0, dtype=np.float32)
    cutoff = min(1.0, ratio) * 0.97  # a little below Nyquist leaves room for the window's roll-off
    half = int(np.ceil(_HALF_TAPS / min(1.0, ratio)))  # wider kernel when the cut-off is lower
    g = gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    table = _phase_table(up, cutoff, half) if up <= _MAX_PHASES else None
    padded = np.concatenate(
        [np.zeros(half, dtype=np.float32), x, np.zeros(half + 1, dtype=np.float32)]
    )
    offsets = np.arange(-half + 1, half + 1)
    out = np.empty(n_out, dtype=np.float32)
    for start in range(0, n_out, _BLOCK):
        stop = min(n_out, start + _BLOCK)
        n = np.arange(start, stop, dtype=np.int64)
        base = (n * down) // up  # input sample at or before each output point
        idx = base[:, None] + offsets[None, :] + half
        if table is not None:
            kernel = table[(n * down) % up]
        else:
            frac = (n * down) / up - base
            kernel = _kernel(frac[:, None] - offsets[None, :], cutoff, half).astype(np.float32)
        out[start:stop] = np.einsum("ij,ij->i", padded[idx], kernel)
    return out
