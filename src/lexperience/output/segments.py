"""Per-sentence MP4 segments, written while a reply is generated, for players that start early.

:class:`SegmentWriter` takes the reply's :class:`~lexperience.media.AudioChunk` s and
:class:`~lexperience.media.VideoFrame` s as they arrive (or the turn's ``AudioEvent`` /
``VideoEvent`` s, through :meth:`SegmentWriter.add_event`) and closes one self-contained H.264 +
AAC file per sentence as soon as that sentence's frames and audio are all in. A UI can play
segment 0 while sentence 1 is still being spoken by the TTS.

Cutting: a sentence boundary falls where the reply audio switches to the next
``sentence_index``; it is rounded to the nearest frame, and the audio is cut at exactly that
frame's time, so every segment holds ``n`` frames and ``n / fps`` seconds of audio, both
starting at 0 (audio ``pts`` from 0, see :mod:`lexperience.output.mp4`). Played back to back the
segments give the whole reply with no gap or drift.

Encoding is synchronous (a few milliseconds per frame): from async code, call the ``add_*``
methods in a worker thread, or accept the short pauses.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from ..errors import InvalidInputError
from ..media import AudioChunk, VideoFrame
from .mp4 import Mp4Writer

__all__ = ["Segment", "SegmentWriter"]


@dataclass(frozen=True)
class Segment:
    """One finished segment file.

    Attributes:
        index: the segment's number, from 0.
        sentence_index: the reply sentence it speaks.
        text: that sentence, when the audio chunks carried it.
        path: the MP4 file.
        start_frame: its first frame's index in the whole reply.
        frames: how many frames it holds.
        start: where it starts in the reply, in seconds (``start_frame / fps``).
        duration: its length in seconds (``frames / fps``; the audio has the same length).
    """

    index: int
    sentence_index: int
    text: str | None
    path: Path
    start_frame: int
    frames: int
    start: float
    duration: float


@dataclass
class _Spec:
    start_frame: int
    sentence_index: int
    text: str | None


class SegmentWriter:
    """Write a reply as one MP4 per sentence while it streams in.

    Args:
        directory: where the files go (created if needed).
        fps: the video frame rate.
        stem: file names are ``{stem}-{index:03d}.mp4``.
        sample_rate: the audio rate; default: the first audio chunk's (later chunks at other
            rates are resampled).
        on_segment: called with each :class:`Segment` as soon as its file is complete.
        crf: H.264 quality (see :class:`~lexperience.output.mp4.Mp4Writer`).
        preset: x264 speed preset.
        ai_generated_tag: write the "AI-generated" metadata tag into every file.

    Feed it with :meth:`add_audio` and :meth:`add_frame` (or :meth:`add_event`) in any
    interleaving, frames in index order; each returns the segments it finished. :meth:`close`
    finishes the last one. Use as a context manager to close it for sure.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fps: float,
        stem: str = "segment",
        sample_rate: int | None = None,
        on_segment: Callable[[Segment], None] | None = None,
        crf: int = 23,
        preset: str = "veryfast",
        ai_generated_tag: bool = True,
    ) -> None:
        if fps <= 0:
            raise InvalidInputError(f"fps must be positive, got {fps}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self.stem = stem
        self.sample_rate = sample_rate
        self.on_segment = on_segment
        self._crf, self._preset, self._tag = crf, preset, ai_generated_tag
        self.segments: list[Segment] = []
        self._specs: list[_Spec] = []
        self._k = 0  # the segment being written
        self._writer: Mp4Writer | None = None
        self._seg_frames = 0
        self._frames: deque[VideoFrame] = deque()  # received, not yet written
        self._next_frame = 0
        self._audio = np.zeros(0, dtype=np.float32)  # received, not yet written
        self._audio_pos = 0  # reply sample index of self._audio[0]
        self._audio_total = 0
        self._sentence: int | None = None
        self._closed = False

    # -- input ----------------------------------------------------------------------------------
    def add_audio(self, chunk: AudioChunk) -> list[Segment]:
        """Add reply audio; a new ``sentence_index`` starts a new segment."""
        self._check_open()
        if chunk.samples.size == 0:
            return []
        if self.sample_rate is None:
            self.sample_rate = chunk.sample_rate
        samples = chunk.samples
        if chunk.sample_rate != self.sample_rate:
            samples = chunk.to_audio().resample(self.sample_rate).samples
        if not self._specs:
            self._specs.append(_Spec(0, chunk.sentence_index, chunk.text))
        elif chunk.sentence_index != self._sentence:
            boundary = round(self._audio_total * self.fps / self.sample_rate)
            if len(self._specs) - 1 == self._k:  # never before frames already written
                boundary = max(boundary, self._specs[self._k].start_frame + self._seg_frames)
            last = self._specs[-1]
            if boundary <= last.start_frame:
                # The previous sentence was shorter than half a frame: it joins this one.
                last.sentence_index, last.text = chunk.sentence_index, chunk.text
            else:
                self._specs.append(_Spec(boundary, chunk.sentence_index, chunk.text))
        self._sentence = chunk.sentence_index
        self._audio = np.concatenate([self._audio, samples]) if self._audio.size else samples
        self._audio_total += int(samples.shape[0])
        return self._flush()

    def add_frame(self, frame: VideoFrame) -> list[Segment]:
        """Add the next video frame (frames must come in index order, from 0)."""
        self._check_open()
        if frame.index != self._next_frame:
            raise InvalidInputError(
                f"frames must arrive in order: expected frame {self._next_frame}, got {frame.index}"
            )
        self._next_frame += 1
        self._frames.append(frame)
        return self._flush()

    def add_event(self, event: object) -> list[Segment]:
        """Add a turn event: ``AudioEvent`` and ``VideoEvent`` are used, others ignored."""
        from ..events import AudioEvent, VideoEvent

        if isinstance(event, AudioEvent):
            return self.add_audio(event.chunk)
        if isinstance(event, VideoEvent):
            return self.add_frame(event.frame)
        return []

    # -- writing --------------------------------------------------------------------------------
    def _first_unwritten_frame(self) -> int:
        """The index of the oldest frame not yet written (the next to arrive if none waits)."""
        return self._frames[0].index if self._frames else self._next_frame

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this SegmentWriter is closed")

    def _end_frame(self, k: int) -> int | None:
        return self._specs[k + 1].start_frame if k + 1 < len(self._specs) else None

    def _sample_at(self, frame: float) -> int:
        assert self.sample_rate is not None
        return round(frame * self.sample_rate / self.fps)

    def _write_audio(self, last: bool) -> None:
        """Write the audio of the frames written so far (the last segment also gets the final
        rounding remainder, under half a frame)."""
        assert self._writer is not None
        shown = self._specs[self._k].start_frame + self._seg_frames
        stop = min(self._audio_total, self._sample_at(shown + (0.5 if last else 0.0)))
        n = stop - self._audio_pos
        if n > 0:
            self._writer.add_audio(self._audio[:n])
            self._audio = self._audio[n:]
            self._audio_pos = stop

    def _open_writer(self) -> None:
        assert self.sample_rate is not None
        path = self.directory / f"{self.stem}-{self._k:03d}.mp4"
        self._writer = Mp4Writer(
            path,
            fps=self.fps,
            sample_rate=self.sample_rate,
            crf=self._crf,
            preset=self._preset,
            ai_generated_tag=self._tag,
        )
        self._seg_frames = 0
        # Audio before this segment's start (rounding at a merged boundary) is dropped.
        start = self._sample_at(self._specs[self._k].start_frame)
        if start > self._audio_pos:
            skip = min(start - self._audio_pos, int(self._audio.shape[0]))
            self._audio = self._audio[skip:]
            self._audio_pos += skip

    def _flush(self, final: bool = False) -> list[Segment]:
        done: list[Segment] = []
        while self._k < len(self._specs) and self.sample_rate is not None:
            end_frame = self._end_frame(self._k)
            while self._frames and (end_frame is None or self._frames[0].index < end_frame):
                if self._writer is None:
                    self._open_writer()
                assert self._writer is not None
                self._writer.add_frame(self._frames.popleft())
                self._seg_frames += 1
            if self._writer is None:
                if final or (end_frame is not None and self._first_unwritten_frame() >= end_frame):
                    self._k += 1  # no frame fell into this segment: nothing to write
                    continue
                break
            self._write_audio(last=final and end_frame is None)
            complete = (
                end_frame is not None
                and self._specs[self._k].start_frame + self._seg_frames >= end_frame
                and self._audio_pos >= self._sample_at(end_frame)
            )
            if not (complete or final):
                break
            done.append(self._finish_segment())
        return done

    def _finish_segment(self) -> Segment:
        assert self._writer is not None
        spec = self._specs[self._k]
        path = self._writer.close()
        segment = Segment(
            index=len(self.segments),
            sentence_index=spec.sentence_index,
            text=spec.text,
            path=path,
            start_frame=spec.start_frame,
            frames=self._seg_frames,
            start=spec.start_frame / self.fps,
            duration=self._seg_frames / self.fps,
        )
        self.segments.append(segment)
        self._writer = None
        self._seg_frames = 0
        self._k += 1
        if self.on_segment is not None:
            self.on_segment(segment)
        return segment

    def close(self) -> list[Segment]:
        """Write what is left as the last segment(s); returns the segments it finished."""
        if self._closed:
            return []
        try:
            return self._flush(final=True)
        finally:
            self._closed = True
            if self._writer is not None:  # only after an encoder error
                self._writer.abort()
                self._writer = None

    def abort(self) -> None:
        """Stop after an error: close the open segment file without finishing it."""
        self._closed = True
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
