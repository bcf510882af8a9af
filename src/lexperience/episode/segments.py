"""Timed pieces of an episode: :class:`Segment` (what the transcript holds) and :class:`Passage`
(what a search returns), and the rule that cuts a segment at the listener's position.

How a segment is cut at a position ``t`` (the no-spoiler rule):

* it ends by ``t``: kept whole; it starts at or after ``t``: dropped;
* it straddles ``t`` and has word timings: only the words that *end* by ``t`` are kept;
* it straddles ``t`` without word timings: the text is assumed to be spoken at an even rate
  across the segment, by characters. The share of the segment heard is computed from
  ``t - CUT_MARGIN_SECONDS`` (a safety margin of about one spoken word), and only the words whose
  last character falls inside that share are kept. A word in progress is dropped. The rule errs
  on the side of cutting early: the listener may hear a word the model does not see, never the
  other way round (as far as the timings tell).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..transcript import Word
from .timecode import format_timestamp

__all__ = ["CUT_MARGIN_SECONDS", "Passage", "Segment"]

#: Without word timings, a straddling segment is cut this much before the position.
CUT_MARGIN_SECONDS = 0.3


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("times must be finite numbers of seconds")
    return value


class Segment(BaseModel):
    """One timed piece of the transcript: ``start`` and ``end`` in seconds from the start of the
    episode, who spoke (``speaker``, optional) and what was said. ``words`` are the timed words
    (absolute times) where the source gave them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    speaker: str | None = None
    words: tuple[Word, ...] = ()

    _check_start = field_validator("start", "end")(_finite)

    @model_validator(mode="after")
    def _check(self) -> Segment:
        if self.end < self.start:
            raise ValueError(f"a segment ends ({self.end:g} s) before it starts ({self.start:g} s)")
        for w in self.words:
            if not (math.isfinite(w.start) and math.isfinite(w.end)) or w.end < w.start:
                raise ValueError(f"the word {w.text!r} has an invalid time span")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def timestamp(self) -> str:
        """The start as ``"12:31"``."""
        return format_timestamp(self.start)

    def cut(self, before: float) -> Segment | None:
        """The part of this segment spoken before ``before`` (see the module docs), or ``None``."""
        if self.end <= before:
            return self
        if self.start >= before:
            return None
        if self.words:
            kept = [w for w in self.words if w.end <= before]
            if not kept:
                return None
            text = " ".join(w.text.strip() for w in kept if w.text.strip())
            if not text:
                return None
            end = max(self.start, kept[-1].end)
            return self.model_copy(update={"text": text, "end": end, "words": tuple(kept)})
        share = (before - CUT_MARGIN_SECONDS - self.start) / self.duration
        text = self.text.strip()
        limit = share * len(text)
        if limit <= 0:
            return None
        kept_words: list[str] = []
        position = kept_end = 0
        for word in text.split():
            position = text.index(word, position) + len(word)
            if position > limit:
                break
            kept_words.append(word)
            kept_end = position
        if not kept_words:
            return None
        end = self.start + self.duration * kept_end / len(text)
        return self.model_copy(update={"text": " ".join(kept_words), "end": min(end, before)})


class Passage(BaseModel):
    """A stretch of the episode returned by :meth:`Episode.search`.

    ``score`` ranks passages within one search (higher is better; not comparable across
    searches). ``truncated`` marks a passage cut at the search position: its speaker went on
    talking after it, and the rest is not included.
    """

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    speaker: str | None
    text: str
    score: float = 0.0
    truncated: bool = False

    @property
    def timestamp(self) -> str:
        """The start as ``"12:31"``."""
        return format_timestamp(self.start)
