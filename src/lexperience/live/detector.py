"""From frame probabilities to speech segments: :class:`SpeechDetector` (hysteresis, minimum
speech, end-of-speech silence), in stream positions (seconds since the session started)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SpeechDetector", "Transition"]


@dataclass(frozen=True)
class Transition:
    """Speech ``"start"`` ed or ``"end"`` ed at ``at`` (seconds into the stream); ``duration``
    is the segment's length for an end."""

    kind: Literal["start", "end"]
    at: float
    duration: float = 0.0


class SpeechDetector:
    """Turns one speech probability per frame into start/end transitions.

    A frame at or above ``threshold`` is speech; once speaking, frames stay speech down to
    ``release`` (hysteresis). Speech starts after ``min_speech`` seconds of consecutive speech
    frames (the start is dated at the first of them) and ends after ``end_silence`` seconds
    below ``release`` (dated at the end of the last speech frame).
    """

    def __init__(
        self,
        *,
        frame_seconds: float,
        threshold: float,
        release: float,
        min_speech: float,
        end_silence: float,
    ) -> None:
        self.frame_seconds = frame_seconds
        self.threshold = threshold
        self.release = release
        self.min_speech = min_speech
        self.end_silence = end_silence
        self.speaking = False
        self.onset = 0.0  # start of the current (or last) segment
        self.last_speech = 0.0  # end of the newest speech frame
        self._run_start: float | None = None
        self._silence = 0.0

    def push(self, probability: float, frame_end: float) -> Transition | None:
        """Feed the frame that ends at ``frame_end``; the transition it completes, if any."""
        start = frame_end - self.frame_seconds
        if not self.speaking:
            if probability >= self.threshold:
                if self._run_start is None:
                    self._run_start = start
                if frame_end - self._run_start >= self.min_speech - 1e-9:
                    self.speaking = True
                    self.onset = self._run_start
                    self.last_speech = frame_end
                    self._silence = 0.0
                    self._run_start = None
                    return Transition("start", self.onset)
            else:
                self._run_start = None
            return None
        if probability >= self.release:
            self.last_speech = frame_end
            self._silence = 0.0
            return None
        self._silence += self.frame_seconds
        if self._silence >= self.end_silence - 1e-9:
            self.speaking = False
            return Transition("end", self.last_speech, self.last_speech - self.onset)
        return None

    @property
    def silence(self) -> float:
        """Seconds of silence since the last speech frame, while still speaking."""
        return self._silence if self.speaking else 0.0

    @property
    def pending(self) -> bool:
        """Whether speech frames have begun that do not make ``min_speech`` yet (speech may be
        starting: a decision that silence has lasted long enough waits for it)."""
        return self._run_start is not None

    def speech_seconds(self, now: float) -> float:
        """How long the current segment has lasted, to its newest speech frame (the silence
        that may end it is no speech); 0 when not speaking."""
        return min(now, self.last_speech) - self.onset if self.speaking else 0.0

    def reset(self) -> None:
        self.speaking = False
        self._run_start = None
        self._silence = 0.0
