"""The audio side of the ElevenLabs backend: PCM pieces and their character alignment become
:class:`AudioChunk` s with chunk-relative viseme cues, and streamed text is cut at word
boundaries for the websocket (used by :mod:`lexperience.backends.elevenlabs_tts`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..media import AudioChunk
from ..visemes import VisemeCue, cues_from_characters, merge_cues

__all__ = ["Timeline", "chunk_text"]

_SPLITTERS = (".", ",", "?", "!", ";", ":", "—", "-", "(", ")", "[", "]", "}", " ")


def _pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class Timeline:
    """Turns a stream of (PCM bytes, character alignment) pieces into AudioChunks whose viseme
    cues are relative to each chunk, and keeps what is needed to check the result."""

    def __init__(self, rate: int, text: str | None) -> None:
        self.rate = rate
        self.text = text
        self.samples = 0  # samples emitted so far
        self._odd = b""
        self._cues: list[VisemeCue] = []  # absolute times (from the start of the request)
        self.aligned_chars = 0
        self.alignment_end = 0.0
        self._absolute: bool | None = None  # are alignment times absolute? decided once

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def add_alignment(
        self, chars: Sequence[str], starts: Sequence[float], ends: Sequence[float]
    ) -> None:
        """Character timings in seconds. The HTTP API gives them from the start of the request;
        if a server gives them per chunk instead, that is detected and handled."""
        n = min(len(chars), len(starts), len(ends))
        if n == 0:
            return
        chars, starts, ends = list(chars[:n]), list(starts[:n]), list(ends[:n])
        base = 0.0
        if self._absolute is None and self.alignment_end > 0.1:
            first = float(starts[0])
            self._absolute = abs(first - self.alignment_end) <= abs(first)
        if self._absolute is False:
            base = self.seconds
        abs_starts = [base + float(s) for s in starts]
        abs_ends = [base + float(e) for e in ends]
        self._cues = merge_cues([*self._cues, *cues_from_characters(chars, abs_starts, abs_ends)])
        self.aligned_chars += sum(1 for c in chars if not c.isspace())
        self.alignment_end = max(self.alignment_end, max(abs_ends))

    def add_relative_alignment(
        self, chars: Sequence[str], starts_ms: Sequence[float], durations_ms: Sequence[float]
    ) -> None:
        """Websocket alignment: milliseconds relative to the audio chunk it comes with."""
        n = min(len(chars), len(starts_ms), len(durations_ms))
        if n == 0:
            return
        base = self.seconds
        starts = [base + float(s) / 1000.0 for s in starts_ms[:n]]
        ends = [s + float(d) / 1000.0 for s, d in zip(starts, durations_ms[:n], strict=True)]
        self._cues = merge_cues([*self._cues, *cues_from_characters(list(chars[:n]), starts, ends)])
        self.aligned_chars += sum(1 for c in chars[:n] if not c.isspace())
        self.alignment_end = max(self.alignment_end, max(ends))

    def audio(self, data: bytes) -> AudioChunk | None:
        """The chunk for ``data`` (with the cues that fall in it), or ``None`` if too short."""
        data = self._odd + data
        usable = len(data) - (len(data) % 2)
        self._odd = data[usable:]
        if usable == 0:
            return None
        samples = _pcm(data[:usable])
        t0 = self.seconds
        t1 = t0 + samples.shape[0] / self.rate
        cues = tuple(
            VisemeCue(max(c.start, t0) - t0, min(c.end, t1) - t0, c.viseme)
            for c in self._cues
            if c.end > t0 and c.start < t1 and min(c.end, t1) > max(c.start, t0)
        )
        self._cues = [c for c in self._cues if c.end > t1]
        self.samples += samples.shape[0]
        return AudioChunk(samples, self.rate, text=self.text, visemes=cues)

    def problem(self) -> str | None:
        """Why the audio looks incomplete (``None`` when it looks whole)."""
        if self.samples == 0:
            return "no audio came back"
        if self.alignment_end > self.seconds + 0.25:
            return (
                f"the audio ends at {self.seconds:.2f} s but the alignment runs to "
                f"{self.alignment_end:.2f} s: part of the stream was lost"
            )
        if self.text is not None:
            wanted = sum(1 for c in self.text if not c.isspace())
            if self.aligned_chars and self.aligned_chars < 0.9 * wanted:
                return (
                    f"only {self.aligned_chars} of {wanted} characters came back aligned: part "
                    "of the stream was lost"
                )
            if wanted >= 8 and self.seconds < 0.02 * wanted:
                return f"{self.seconds:.2f} s of audio is too short for {wanted} characters"
        return None


def chunk_text(pieces: Sequence[str], buffer: str) -> tuple[list[str], str]:
    """Split streamed text at word boundaries (ElevenLabs wants each message to end in a space)."""
    out: list[str] = []
    for text in pieces:
        if buffer.endswith(_SPLITTERS):
            out.append(buffer if buffer.endswith(" ") else buffer + " ")
            buffer = text
        elif text.startswith(_SPLITTERS):
            head = buffer + text[0]
            out.append(head if head.endswith(" ") else head + " ")
            buffer = text[1:]
        else:
            buffer += text
    return [o for o in out if o.strip()], buffer
