"""Echo cancellation: the host's voice, played by a loudspeaker and picked up again by the
microphone, must not sound like the user talking over it.

:class:`EchoCanceller` gets the microphone signal and the loudspeaker signal (the reference)
side by side and, in plain numpy:

1. **estimates the bulk delay** between them (loudspeaker and microphone buffers, the air) by
   cross-correlating the two with phase-transform weighting (GCC-PHAT) every quarter second
   while the loudspeaker plays, over up to ``max_delay``; the median of the last estimates is
   used;
2. **subtracts the echo** predicted by an adaptive filter of ``filter_seconds`` after that delay
   (the room's echo path): a partitioned-block frequency-domain NLMS filter (overlap-save,
   256-sample blocks, gradient constrained), which adapts only while the loudspeaker plays and
   the residual does not look like the user talking (double talk);
3. reports, per block, the **energy of the echo left after the subtraction** (the echo
   estimate lowered by the enhancement measured so far less 6 dB, at most 15 dB), so that a voice detector
   can demand that a speech frame be clearly louder than that (:meth:`user_dominant`). Until the filter has converged, the whole recent loudspeaker level
   counts as possible echo (which errs on the side of not interrupting, for the first second or
   so of a reply); if no echo delay has been found after 0.75 s of playing (headphones, a quiet
   loudspeaker), the echo is taken to be bounded by the microphone-to-loudspeaker energy ratio
   of the blocks that did not sound like the user (twice its 90th percentile over the last three
   seconds, to be safe): about 0 with headphones.

It models a linear echo path (loudspeaker, room, microphone); a strongly distorting loudspeaker
or automatic gain control on the microphone leave more residual, which the energy check then
has to catch. Use the operating system's or the browser's echo cancellation when you have it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EchoCanceller"]

_BLOCK = 256
_EPS = 1e-10


class EchoCanceller:
    """Subtracts the loudspeaker signal's echo from the microphone signal (mono float32, one rate).

    Feed both with :meth:`process` in equal lengths (any length); it returns the cleaned
    microphone signal for every complete 256-sample block so far, and keeps the rest for the
    next call (so the output lags the input by less than one block).

    Args:
        sample_rate: the rate of both signals.
        filter_seconds: length of the echo path the adaptive filter models after the delay.
        max_delay: the longest loudspeaker-to-microphone delay searched for.
        step: NLMS step size (0-1; larger converges faster, smaller is steadier).
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        *,
        filter_seconds: float = 0.064,
        max_delay: float = 0.4,
        step: float = 0.5,
    ) -> None:
        self.rate = sample_rate
        self.n = _BLOCK
        self.partitions = max(1, int(np.ceil(filter_seconds * sample_rate / _BLOCK)))
        self.max_lag = int(max_delay * sample_rate)
        self.step = step
        self.delay: int | None = None  # samples, once estimated
        self._estimates: list[int] = []
        self._history = np.zeros(self.max_lag + 2 * _BLOCK + sample_rate, dtype=np.float32)
        self._mic_history = np.zeros(sample_rate, dtype=np.float32)
        self._since_estimate = 0
        bins = _BLOCK + 1
        self._w = np.zeros((self.partitions, bins), dtype=np.complex128)
        self._x = np.zeros((self.partitions, bins), dtype=np.complex128)
        self._power = np.full(bins, 1e-4)
        self._prev_ref = np.zeros(_BLOCK, dtype=np.float64)
        self._mic_buf = np.zeros(0, dtype=np.float32)
        self._ref_buf = np.zeros(0, dtype=np.float32)
        self._erle = 0.0  # smoothed echo return loss enhancement, dB
        self._ratios: list[float] = []  # microphone / loudspeaker energy while playing, no delay
        self.coupling = 1.0
        self._unconverged = 0  # blocks played since the delay was set, without convergence
        self._quiet = 1 << 30  # blocks since the loudspeaker last played
        self._good = 0  # blocks in a row of good enhancement
        self._recent_echo: list[float] = []
        self.echo_power: list[float] = []  # per output block: echo energy left (mean square)
        self.residual_power: list[float] = []  # per output block: cleaned signal energy
        self.reference_power: list[float] = []  # per output block: delayed reference energy

    @property
    def converged(self) -> bool:
        """Whether the filter removes the echo well (more than 10 dB of enhancement for half a
        second of playing)."""
        return self.delay is not None and self._good >= self.rate // (2 * self.n)

    # -- streaming ------------------------------------------------------------------------------
    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Cleaned microphone samples for every block completed by this input."""
        if mic.shape != reference.shape:
            raise ValueError("the microphone and reference chunks must have the same length")
        self._mic_buf = np.concatenate([self._mic_buf, mic.astype(np.float32, copy=False)])
        self._ref_buf = np.concatenate([self._ref_buf, reference.astype(np.float32, copy=False)])
        blocks = self._mic_buf.shape[0] // self.n
        out = np.empty(blocks * self.n, dtype=np.float32)
        for i in range(blocks):
            d = self._mic_buf[i * self.n : (i + 1) * self.n]
            r = self._ref_buf[i * self.n : (i + 1) * self.n]
            out[i * self.n : (i + 1) * self.n] = self._block(d, r)
        self._mic_buf = self._mic_buf[blocks * self.n :]
        self._ref_buf = self._ref_buf[blocks * self.n :]
        return out

    def user_dominant(self, start_block: int, blocks: int, margin_db: float) -> bool:
        """Whether output blocks ``start_block .. +blocks`` hold clearly more energy than the
        echo predicted in them (or the loudspeaker was silent then)."""
        sl = slice(start_block, start_block + blocks)
        residual = float(np.mean(self.residual_power[sl])) if blocks else 0.0
        echo = float(np.mean(self.echo_power[sl])) if blocks else 0.0
        if echo < 1e-7:  # the loudspeaker played nothing audible
            return True
        return residual > echo * 10 ** (margin_db / 10)

    def forget(self, blocks: int) -> None:
        """Drop the first ``blocks`` per-block records (the caller has read them)."""
        del self.echo_power[:blocks]
        del self.residual_power[:blocks]
        del self.reference_power[:blocks]

    # -- one block ------------------------------------------------------------------------------
    def _block(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        n = self.n
        self._history = np.roll(self._history, -n)
        self._history[-n:] = ref
        self._mic_history = np.roll(self._mic_history, -n)
        self._mic_history[-n:] = mic
        self._since_estimate += n
        if self._since_estimate >= self.rate // 4:
            self._since_estimate = 0
            self._estimate_delay()
        recent = self._history[-(self.max_lag + n) :]
        level = float(np.mean(np.square(recent, dtype=np.float64)))  # what may echo now
        mic_level = float(np.mean(np.square(mic, dtype=np.float64)))
        if level > 1e-6 and self.delay is None and mic_level <= 4.0 * self.coupling * level:
            # (blocks that look like the user over the echo bound so far are left out)
            self._ratios.append(mic_level / level)
            if len(self._ratios) >= 3 * self.rate // (4 * n):  # 0.75 s of playing, no echo found
                window = self._ratios[-(3 * self.rate // n) :]
                self.coupling = min(1.0, 2.0 * float(np.percentile(window, 90)))
        if self.delay is None:  # no delay yet: nothing to subtract
            self._record(self.coupling * level, mic_level, level)
            return np.array(mic, dtype=np.float32)
        start = self._history.shape[0] - n - self.delay
        delayed = self._history[start : start + n].astype(np.float64)
        # overlap-save input: the previous block and this one
        x_spec = np.fft.rfft(np.concatenate([self._prev_ref, delayed]))
        self._prev_ref = delayed
        self._x = np.roll(self._x, 1, axis=0)
        self._x[0] = x_spec
        y = np.fft.irfft(np.sum(self._w * self._x, axis=0))[n:]
        d = mic.astype(np.float64)
        e = d - y
        echo_power = float(np.mean(y * y))
        err_power = float(np.mean(e * e))
        ref_power = float(np.mean(delayed * delayed))
        active = ref_power > 1e-6
        # converged, the residual is far below the echo estimate; the user talking lifts it
        double_talk = self.converged and err_power > 0.25 * echo_power + 1e-7
        if active and not self.converged:
            self._unconverged += 1
            if self._unconverged > 2 * self.rate // n:  # 2 s of playing in vain: a wrong delay
                self.delay = None
                self._estimates.clear()
                self._unconverged = 0
                self._record(level, err_power, ref_power)
                return np.array(mic, dtype=np.float32)
        elif self.converged:
            self._unconverged = 0
        if active and not double_talk:
            self._adapt(e)
            if mic_level > 1e-7:
                erle = 10 * np.log10((mic_level + _EPS) / (err_power + _EPS))
                self._erle = 0.95 * self._erle + 0.05 * float(erle)
                self._good = self._good + 1 if self._erle > 10.0 else 0
        if self.converged:  # what is left of the echo after the subtraction
            predicted = echo_power * 10 ** (-min(self._erle - 6.0, 15.0) / 10)
        else:
            predicted = max(echo_power, level)
        self._record(predicted, err_power, ref_power)
        return e.astype(np.float32)

    def _adapt(self, error: np.ndarray) -> None:
        n = self.n
        e_spec = np.fft.rfft(np.concatenate([np.zeros(n), error]))
        x0 = self._x[0]
        self._power = 0.9 * self._power + 0.1 * (np.abs(x0) ** 2)
        mu = self.step / (self.partitions * self._power + 1e-6)
        gradient = np.conj(self._x) * (mu * e_spec)[None, :]
        g = np.fft.irfft(gradient, axis=1)
        g[:, n:] = 0.0  # keep the filter causal and N taps per partition (overlap-save)
        self._w += np.fft.rfft(g, axis=1)

    def _record(self, echo: float, residual: float, reference: float) -> None:
        if reference > 1e-6 or echo > 1e-7:
            self._quiet = 0
        else:
            self._quiet += 1
        # the echo left decays with the room: hold the estimate over the last 64 ms
        self._recent_echo = [*self._recent_echo[-3:], echo]
        echo = max(self._recent_echo)
        if self._quiet < self.rate // (2 * self.n):
            # the loudspeaker played within half a second: a faint tail of echo (-50 dBFS) may
            # be left, which a level-blind voice detector would still call speech
            echo = max(echo, 1e-5)
        self.echo_power.append(echo)
        self.residual_power.append(residual)
        self.reference_power.append(reference)

    def _estimate_delay(self) -> None:
        """GCC-PHAT between the last half second of microphone and the reference before it."""
        window = self.rate // 2
        mic = self._mic_history[-window:].astype(np.float64)
        ref = self._history[-(window + self.max_lag) :].astype(np.float64)
        if float(np.mean(ref[-window:] ** 2)) < 1e-6 or float(np.mean(mic**2)) < 1e-8:
            return
        size = 1 << int(np.ceil(np.log2(ref.shape[0] + window)))
        m_spec = np.fft.rfft(mic, size)
        r_spec = np.fft.rfft(ref, size)
        cross = m_spec * np.conj(r_spec)
        cross /= np.abs(cross) + 1e-9
        corr = np.fft.irfft(cross, size)
        # corr[k] = sum mic[n + k] ref[n]; mic[i] echoes ref[i + max_lag - delay], so a delay
        # of L samples peaks at k = L - max_lag (circularly)
        # (the window edges are left out: whitened, zero-padded windows peak there spuriously)
        lags = np.arange(16, self.max_lag - 64)
        values = corr[(lags - self.max_lag) % size]
        best = int(np.argmax(values))
        peak = int(lags[best])
        strength = float(values[best] / (np.mean(np.abs(values)) + 1e-12))
        if strength < 30.0:  # uncorrelated signals (the user alone) peak around 5-15
            return
        self._estimates = [*self._estimates[-4:], peak]
        agreeing = [e for e in self._estimates if abs(e - peak) <= 32]
        if len(agreeing) < 2:  # wait for a second estimate that confirms it
            return
        estimate = int(np.median(agreeing))
        margin = 32  # a few taps before the main echo, for a slightly early estimate
        delay = max(0, estimate - margin)
        if self.delay is None or abs(delay - self.delay) > 48:
            self.delay = delay
            self._w[:] = 0.0
            self._erle = 0.0
            self._good = 0
            self._unconverged = 0
            self._ratios.clear()
