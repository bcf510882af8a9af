"""Turning an episode's audio into an :class:`~lexperience.Episode`: long audio in pieces,
resumable from a checkpoint file, with progress reports.

Internal to :meth:`Episode.atranscribe`; :class:`TranscriptionProgress` is what the progress
callback receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, ConfigurationError, InvalidInputError, LexperienceError
from ..media import Audio
from ..protocols import STT
from ..transcript import Transcript, Word
from .audio_stream import RATE, AudioStream, Chunker
from .segments import Segment

__all__ = ["TranscriptionProgress", "transcribe_audio"]

log = logging.getLogger(__name__)

_CHECKPOINT_KIND = "lexperience-transcription-checkpoint"
_MAX_SEGMENT_SECONDS = 20.0  # a sentence longer than this (no punctuation) is split
_PAUSE_SECONDS = 1.0  # a silence this long between words ends a segment
_SPEECH_DBFS = -45.0  # frames louder than this count as speech when trimming a piece


@dataclass(frozen=True)
class TranscriptionProgress:
    """Where a transcription stands, after each piece.

    Attributes:
        done: seconds of audio transcribed so far (resumed work included).
        total: seconds of audio in all, when the container says (else ``None``).
        pieces: pieces transcribed in this call.
        segments: segments found so far.
        resumed_from: seconds already done by an earlier call (from the checkpoint).
        elapsed: seconds this call has run.
    """

    done: float
    total: float | None
    pieces: int
    segments: int
    resumed_from: float
    elapsed: float

    @property
    def fraction(self) -> float | None:
        """``done / total`` in [0, 1], when the total is known."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


async def transcribe_audio(
    audio: Audio | str | os.PathLike[str],
    *,
    stt: STT,
    chunk_seconds: float,
    language: str | None,
    speaker: str | None,
    checkpoint: str | os.PathLike[str] | None,
    progress: Callable[[TranscriptionProgress], None] | None,
) -> tuple[list[Segment], float]:
    """The segments of ``audio`` and its length in seconds (see :meth:`Episode.atranscribe`)."""
    if not isinstance(stt, STT):
        raise ConfigurationError(f"stt={type(stt).__name__} does not implement the STT protocol")
    if isinstance(chunk_seconds, bool) or not isinstance(chunk_seconds, (int, float)):
        raise ConfigurationError(f"chunk_seconds must be a number, got {chunk_seconds!r}")
    if not 2.0 <= chunk_seconds <= 600.0:
        raise ConfigurationError(f"chunk_seconds must be within 2-600 s, got {chunk_seconds:g}")
    source = AudioStream(audio)
    fingerprint = await asyncio.to_thread(source.fingerprint)
    total = await asyncio.to_thread(source.duration)
    file = Path(checkpoint) if checkpoint is not None else None
    segments: list[Segment] = []
    done = 0
    if file is not None and file.exists():
        segments, done = _read_checkpoint(file, fingerprint, chunk_seconds)
        log.info("resuming the transcription at %.1f s from %s", done / RATE, file)
    resumed = done / RATE
    started = time.perf_counter()
    pieces = 0
    pieces_stream = _pieces(source, chunk_seconds, skip=done)
    async with contextlib.aclosing(pieces_stream) as stream:
        async for offset, samples in stream:
            found = await _transcribe_piece(stt, samples, offset / RATE, language, speaker)
            segments.extend(found)
            done = offset + len(samples)
            pieces += 1
            if file is not None:
                await asyncio.to_thread(
                    _write_checkpoint, file, fingerprint, chunk_seconds, done, segments
                )
            if progress is not None:
                progress(
                    TranscriptionProgress(
                        done=done / RATE,
                        total=total,
                        pieces=pieces,
                        segments=len(segments),
                        resumed_from=resumed,
                        elapsed=time.perf_counter() - started,
                    )
                )
    if done == 0:
        raise InvalidInputError("the episode audio holds no samples")
    if file is not None:
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
    return segments, done / RATE


async def _pieces(
    source: AudioStream, chunk_seconds: float, *, skip: int
) -> AsyncGenerator[tuple[int, np.ndarray], None]:
    """Pieces from the decoder (a blocking iterator, advanced in a worker thread), from sample
    ``skip`` on."""
    blocks = source.blocks()
    chunker = Chunker(chunk_seconds, offset=skip)
    seen = 0
    sentinel = object()

    def step(it: Iterator[np.ndarray]) -> Any:
        return next(it, sentinel)

    try:
        while True:
            block = await asyncio.to_thread(step, blocks)
            if block is sentinel:
                break
            assert isinstance(block, np.ndarray)
            if seen + len(block) <= skip:  # already transcribed (resuming)
                seen += len(block)
                continue
            if seen < skip:
                block = block[skip - seen :]
            seen = max(seen, skip) + len(block)
            for piece in chunker.push(block):
                yield piece
        for piece in chunker.flush():
            yield piece
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            # ValueError: cancelled while a worker thread still advances it; it ends with it
            with contextlib.suppress(ValueError):
                close()


async def _transcribe_piece(
    stt: STT, samples: np.ndarray, offset: float, language: str | None, speaker: str | None
) -> list[Segment]:
    clip = Audio(samples, RATE)
    if clip.is_silent():
        return []
    name = getattr(stt, "name", None) or type(stt).__name__
    try:
        transcript = await stt.transcribe(clip, language=language)
    except InvalidInputError as exc:  # e.g. "no speech": nothing to keep from this piece
        log.info("no transcript for the piece at %.1f s: %s", offset, exc)
        return []
    except LexperienceError:
        raise
    except Exception as exc:
        raise BackendError(f"{type(exc).__name__}: {exc}", backend=name, stage="stt") from exc
    if not isinstance(transcript, Transcript):
        raise BackendError(
            f"transcribe() returned {type(transcript).__name__}, not a Transcript",
            backend=name,
            stage="stt",
        )
    return segments_of(transcript, clip, offset, speaker)


def segments_of(
    transcript: Transcript, clip: Audio, offset: float, speaker: str | None
) -> list[Segment]:
    """Segments of one piece: sentences from the word timings, else the whole piece (its
    leading and trailing silence trimmed)."""
    duration = clip.duration
    words = [
        Word(
            text=w.text.strip(),
            start=offset + min(max(0.0, w.start), duration),
            end=offset + min(max(w.start, w.end, 0.0), duration),
            probability=w.probability,
        )
        for w in transcript.words
        if w.text.strip()
    ]
    if words:
        out = []
        group: list[Word] = []
        for w in words:
            if group and (
                w.start - group[-1].end > _PAUSE_SECONDS
                or w.end - group[0].start > _MAX_SEGMENT_SECONDS
            ):
                out.append(_from_words(group, speaker))
                group = []
            group.append(w)
            if w.text.endswith((".", "?", "!")) and len(group) >= 3:
                out.append(_from_words(group, speaker))
                group = []
        if group:
            out.append(_from_words(group, speaker))
        return out
    text = " ".join(transcript.text.split())
    if not text:
        return []
    lead, trail = _speech_bounds(clip)
    return [Segment(start=offset + lead, end=offset + trail, text=text, speaker=speaker)]


def _from_words(words: list[Word], speaker: str | None) -> Segment:
    return Segment(
        start=words[0].start,
        end=max(w.end for w in words),
        text=" ".join(w.text for w in words),
        speaker=speaker,
        words=tuple(words),
    )


def _speech_bounds(clip: Audio) -> tuple[float, float]:
    """Seconds from the start of the clip to its first and past its last loud 20 ms."""
    frame = clip.sample_rate // 50
    n = len(clip) // frame
    if n == 0:
        return 0.0, clip.duration
    frames = clip.samples[: n * frame].reshape(n, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.flatnonzero(rms > 10 ** (_SPEECH_DBFS / 20))
    if len(loud) == 0:
        return 0.0, clip.duration
    return float(loud[0] * frame / clip.sample_rate), float(
        min(clip.duration, (loud[-1] + 1) * frame / clip.sample_rate)
    )


# -- checkpoints ---------------------------------------------------------------------------------
def _read_checkpoint(
    file: Path, fingerprint: str, chunk_seconds: float
) -> tuple[list[Segment], int]:
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"the checkpoint {file} cannot be read ({exc}); delete it to start over"
        ) from exc
    if not isinstance(data, dict) or data.get("kind") != _CHECKPOINT_KIND:
        raise InvalidInputError(
            f"{file} is not a transcription checkpoint; pass another checkpoint path"
        )
    if data.get("fingerprint") != fingerprint:
        raise InvalidInputError(
            f"the checkpoint {file} was made from other audio; delete it to start over"
        )
    if data.get("chunk_seconds") != chunk_seconds:
        raise InvalidInputError(
            f"the checkpoint {file} was made with chunk_seconds={data.get('chunk_seconds')}; "
            "resume with the same value, or delete it to start over"
        )
    try:
        segments = [Segment.model_validate(s) for s in data["segments"]]
        done = int(data["done_samples"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the checkpoint {file} is damaged ({exc}); delete it to start over"
        ) from exc
    return segments, done


def _write_checkpoint(
    file: Path, fingerprint: str, chunk_seconds: float, done: int, segments: list[Segment]
) -> None:
    data = {
        "kind": _CHECKPOINT_KIND,
        "version": 1,
        "fingerprint": fingerprint,
        "chunk_seconds": chunk_seconds,
        "rate": RATE,
        "done_samples": done,
        "segments": [s.model_dump(mode="json", exclude_defaults=True) for s in segments],
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, file)  # atomic: a crash mid-write leaves the previous checkpoint
