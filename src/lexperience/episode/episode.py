"""The :class:`Episode`: a podcast episode's timed transcript and metadata, searchable up to a
position without ever returning what comes after it."""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ..errors import InvalidInputError
from .formats import Format, detect_format, read_segments, write_srt, write_vtt
from .index import Embedder, EpisodeIndex
from .segments import Passage, Segment

if TYPE_CHECKING:
    from ..media import Audio
    from ..protocols import STT
    from .transcribe import TranscriptionProgress

__all__ = ["Episode"]

#: Transcript files larger than this are refused (a 3-hour transcript is ~2 MB).
MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024
_METADATA = ("title", "show", "host", "guests", "description", "language", "duration", "audio")


class Episode(BaseModel):
    """A podcast episode: timed transcript segments plus metadata.

    Build one with :meth:`load` (WebVTT, SRT, JSON or ``[hh:mm:ss]`` text), :meth:`parse` (the
    same from a string), :meth:`transcribe` (from the audio, with any STT backend), or directly
    from :class:`Segment` s. Segments are kept sorted by start time (a stable sort of what was
    given); overlapping segments (cross-talk) are allowed; segments with no text are dropped.

    Attributes:
        title, show, host, guests, description: what the episode is, for the persona and UIs.
        language: ISO 639-1 code of the spoken language.
        duration: length of the audio in seconds (default: the end of the last segment).
        audio: where the episode's audio is (a path or URL), for players.
        segments: the transcript.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str | None = None
    show: str | None = None
    host: str | None = None
    guests: tuple[str, ...] = ()
    description: str | None = None
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}$")
    duration: float | None = Field(default=None, ge=0)
    audio: str | None = None
    segments: tuple[Segment, ...] = ()

    _index: EpisodeIndex | None = PrivateAttr(default=None)
    _embedder: Embedder | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("segments") is not None:
            segs = [
                s if isinstance(s, Segment) else Segment.model_validate(s) for s in data["segments"]
            ]
            kept = [s for s in segs if s.text.strip()]
            data = {**data, "segments": tuple(sorted(kept, key=lambda s: s.start))}
        return data

    @model_validator(mode="after")
    def _check_duration(self) -> Episode:
        if self.duration is not None:
            if not math.isfinite(self.duration):
                raise ValueError("duration must be a finite number of seconds")
            last = self.last_end
            if last > self.duration + 1.0:
                raise ValueError(
                    f"the transcript runs to {last:.1f} s, past the episode's duration "
                    f"{self.duration:.1f} s"
                )
        return self

    # -- properties ---------------------------------------------------------------------------
    @property
    def last_end(self) -> float:
        """Where the last segment ends (0 for an empty episode)."""
        return max((s.end for s in self.segments), default=0.0)

    @property
    def length(self) -> float:
        """The episode's length in seconds: ``duration`` if known, else the last segment's end."""
        return self.duration if self.duration is not None else self.last_end

    @property
    def speakers(self) -> list[str]:
        """Everyone who speaks, in order of first appearance."""
        return list(dict.fromkeys(s.speaker for s in self.segments if s.speaker))

    def role(self, speaker: str | None) -> str | None:
        """``"host"`` or ``"guest"`` for a speaker named in the metadata, else ``None``."""
        if speaker is None:
            return None
        if self.host and speaker.casefold() == self.host.casefold():
            return "host"
        if any(speaker.casefold() == g.casefold() for g in self.guests):
            return "guest"
        return None

    def __len__(self) -> int:
        return len(self.segments)

    def __repr__(self) -> str:
        name = self.title or "untitled"
        return f"Episode({name!r}, {len(self.segments)} segments, {self.length:.0f} s)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:  # the fields, not the search index
        return type(other) is type(self) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.__dict__.values())))

    # -- reading and writing ------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        format: Format | None = None,
        speaker_labels: bool = True,
        **metadata: Any,
    ) -> Episode:
        """Read a transcript file: WebVTT (``.vtt``), SRT (``.srt``), JSON (``.json``: a list of
        ``{"start", "end", "text", "speaker"?}`` or a saved episode) or plain text with
        ``[hh:mm:ss]`` stamps. ``format`` overrides the guess from the suffix and content;
        ``metadata`` (``title=``, ``host=``, ``guests=``...) overrides what the file holds.

        Raises:
            InvalidInputError: the file is missing, too large, not UTF-8, malformed (the message
                names the line) or holds no segment.
        """
        file = Path(path)
        if not file.is_file():
            raise InvalidInputError(f"transcript file not found: {file}")
        if file.stat().st_size > MAX_TRANSCRIPT_BYTES:
            raise InvalidInputError(
                f"{file} is {file.stat().st_size // 2**20} MiB; a transcript is at most "
                f"{MAX_TRANSCRIPT_BYTES // 2**20} MiB"
            )
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{file} is not UTF-8 text ({exc})") from exc
        return cls.parse(
            text,
            format=format or detect_format(text, file.suffix),
            name=str(file),
            speaker_labels=speaker_labels,
            **metadata,
        )

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        format: Format | None = None,
        name: str = "<text>",
        speaker_labels: bool = True,
        **metadata: Any,
    ) -> Episode:
        """:meth:`load` from a string (``format`` guessed from the content when not given)."""
        fmt = format or detect_format(text)
        segments, found = read_segments(text, fmt, name=name, speaker_labels=speaker_labels)
        if not segments:
            raise InvalidInputError(f"{name} holds no transcript segments")
        unknown = set(metadata) - set(_METADATA)
        if unknown:
            raise InvalidInputError(f"unknown episode metadata: {', '.join(sorted(unknown))}")
        fields = {**{k: v for k, v in found.items() if k in _METADATA}, **metadata}
        extra = set(found) - set(_METADATA)
        if extra:
            raise InvalidInputError(f"{name}: unknown episode field(s) {', '.join(sorted(extra))}")
        try:
            return cls(segments=tuple(segments), **fields)
        except ValidationError as exc:
            raise InvalidInputError(f"{name}: {_describe(exc)}") from exc

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the episode: ``.json`` keeps everything (metadata, word timings); ``.vtt`` and
        ``.srt`` keep the timed text and speakers."""
        out = Path(path)
        suffix = out.suffix.lower()
        if suffix == ".json":
            data = self.model_dump(mode="json", exclude_defaults=True)
            data["segments"] = [
                s.model_dump(mode="json", exclude_defaults=True) for s in self.segments
            ]
            text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
        elif suffix in (".vtt", ".webvtt"):
            text = write_vtt(self.segments)
        elif suffix == ".srt":
            text = write_srt(self.segments)
        else:
            raise InvalidInputError(
                f"cannot save an episode as {suffix!r}: use .json, .vtt or .srt"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return out

    # -- transcription ------------------------------------------------------------------------
    @classmethod
    async def atranscribe(
        cls,
        audio: Audio | str | os.PathLike[str],
        *,
        stt: STT,
        chunk_seconds: float = 30.0,
        language: str | None = None,
        speaker: str | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: Callable[[TranscriptionProgress], None] | None = None,
        **metadata: Any,
    ) -> Episode:
        """Transcribe an episode's audio with any :class:`~lexperience.STT` backend.

        The audio is decoded as a stream (a 3-hour file is never held whole in memory), cut
        into pieces of about ``chunk_seconds`` at quiet moments, and transcribed piece by piece.
        Word timings are kept where the backend gives them (faster-whisper with
        ``word_timestamps=True``) and then also split pieces into sentences; without them each
        piece is one segment. ``speaker`` names the one speaker of a monologue (STT backends
        do not tell speakers apart). With ``checkpoint`` (a file path) the work done so far is
        saved after every piece, and a later call with the same audio and checkpoint resumes
        where it stopped; the checkpoint is deleted once the episode is complete. ``progress``
        is called after every piece.

        Raises:
            InvalidInputError: unreadable audio, or a checkpoint made from other audio.
            BackendError: the STT backend failed (the checkpoint keeps what was done).
        """
        from .transcribe import transcribe_audio

        segments, duration = await transcribe_audio(
            audio,
            stt=stt,
            chunk_seconds=chunk_seconds,
            language=language,
            speaker=speaker,
            checkpoint=checkpoint,
            progress=progress,
        )
        metadata.setdefault("duration", duration)
        if isinstance(audio, (str, os.PathLike)):
            metadata.setdefault("audio", str(audio))
        if language is not None:
            metadata.setdefault("language", language)
        try:
            return cls(segments=tuple(segments), **metadata)
        except ValidationError as exc:
            raise InvalidInputError(_describe(exc)) from exc

    @classmethod
    def transcribe(
        cls, audio: Audio | str | os.PathLike[str], *, stt: STT, **options: Any
    ) -> Episode:
        """Blocking :meth:`atranscribe` (also works inside a running event loop, e.g. Jupyter)."""
        from .._portal import Portal

        portal = Portal("lexperience-transcribe")
        try:
            return portal.call(cls.atranscribe(audio, stt=stt, **options))
        finally:
            portal.close()

    # -- the transcript up to a position -------------------------------------------------------
    def heard(self, before: float, *, since: float = 0.0) -> list[Segment]:
        """The segments spoken between ``since`` and ``before``, the last one cut at ``before``
        (see :mod:`lexperience.episode.segments` for the cut rule)."""
        before = _position(before)
        out = []
        for seg in self.segments:
            if seg.start >= before:
                break
            if seg.end <= since:
                continue
            cut = seg.cut(before)
            if cut is not None:
                out.append(cut)
        return out

    # -- search -------------------------------------------------------------------------------
    def search(self, question: str, *, before: float, k: int = 5) -> list[Passage]:
        """The ``k`` passages that best match ``question`` among those spoken before ``before``
        (seconds), best first.

        No passage holds anything said after ``before``: a passage the position falls inside is
        cut at it (:attr:`Passage.truncated`). The ranking itself is computed over the heard
        part only, as if the episode ended at ``before``. Ranking is BM25 over word stems; after
        :meth:`use_embeddings` it is fused with semantic similarity. A position past the end is
        the end; an empty question or episode finds nothing.

        Raises:
            InvalidInputError: ``before`` is negative or not a number, ``k`` < 1, or
                ``question`` is not a string.
        """
        if not isinstance(question, str):
            raise InvalidInputError(f"the question must be a string, got {type(question).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        before = _position(before)
        if not question.strip() or not self.segments or before <= 0:
            return []
        return self.index().search(question, before=before, k=k)

    def index(self) -> EpisodeIndex:
        """The search index (built at the first search; call it ahead to build it early)."""
        with self._lock:
            if self._index is None:
                index = EpisodeIndex(self.segments, language=self.language)
                if self._embedder is not None:
                    index.set_embedder(self._embedder)
                self._index = index
            return self._index

    def use_embeddings(self, embedder: Embedder | bool | None = True) -> Episode:
        """Rank by meaning as well as by words: ``True`` uses the bundled WordLlama model
        (``pip install "lexperience[semantic]"``), or pass any :class:`Embedder`; ``False``
        or ``None`` goes back to words only. Passages are embedded now (if that fails, the
        search stays as it was). Returns ``self``."""
        if embedder is True:
            from ..backends.wordllama_embedder import WordLlamaEmbedder

            embedder = WordLlamaEmbedder()
        chosen = embedder if isinstance(embedder, Embedder) else None
        if embedder not in (None, False) and chosen is None:
            raise InvalidInputError(f"{type(embedder).__name__} is not an Embedder (embed(texts))")
        self.index().set_embedder(chosen)  # embeds every passage; raises before any change
        with self._lock:
            self._embedder = chosen
        return self

    @property
    def embedder(self) -> Embedder | None:
        """The embedder used by :meth:`search`, if any."""
        return self._embedder

    def with_segments(self, segments: Iterable[Segment]) -> Episode:
        """A copy of this episode with other segments (metadata kept, index rebuilt)."""
        return type(self)(**{**self._metadata(), "segments": tuple(segments)})

    def _metadata(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _METADATA}


def _position(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"a position must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"a position must be a finite number of seconds >= 0, got {value}")
    return float(value)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "episode"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
