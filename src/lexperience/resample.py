"""Band-limited sample-rate conversion in plain numpy (windowed-sinc interpolation)."""

from __future__ import annotations

import numpy as np

__all__ = ["resample"]

_HALF_TAPS = 16  # taps on each side of the interpolation point
_BLOCK = 65_536  # output samples computed per vectorised block (bounds memory)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono float32 ``samples`` from ``from_rate`` to ``to_rate`` Hz.

    Each output sample is a Kaiser-windowed sinc interpolation of the 32 nearest input samples;
    when downsampling, the sinc's cut-off is lowered to the new Nyquist frequency so that nothing
    aliases. Quality is close to a polyphase resampler and it costs O(n * 32).
    """
    x = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or x.size == 0:
        return np.array(x, dtype=np.float32, copy=True)
    ratio = to_rate / from_rate
    n_out = int(round(x.shape[0] * ratio))
    if n_out == 0:
        return np.zeros(0, dtype=np.float32)
    cutoff = min(1.0, ratio) * 0.97  # a little below Nyquist leaves room for the window's roll-off
    half = int(np.ceil(_HALF_TAPS / min(1.0, ratio)))  # wider kernel when the cut-off is lower
    beta = 8.0
    padded = np.concatenate(
        [np.zeros(half, dtype=np.float32), x, np.zeros(half + 1, dtype=np.float32)]
    )
    offsets = np.arange(-half + 1, half + 1)
    out = np.empty(n_out, dtype=np.float32)
    norm_i0 = np.i0(beta)
    for start in range(0, n_out, _BLOCK):
        stop = min(n_out, start + _BLOCK)
        t = np.arange(start, stop, dtype=np.float64) / ratio  # positions in input samples
        base = np.floor(t).astype(np.int64)
        frac = t - base
        idx = base[:, None] + offsets[None, :]  # (block, taps)
        dist = frac[:, None] - offsets[None, :]  # distance from each tap to the point
        window_arg = np.clip(1.0 - (dist / (half + 1)) ** 2, 0.0, 1.0)
        kernel = cutoff * np.sinc(cutoff * dist) * np.i0(beta * np.sqrt(window_arg)) / norm_i0
        taps = padded[idx + half]
        out[start:stop] = np.einsum("ij,ij->i", taps, kernel).astype(np.float32)
    return out
