"""What speech-to-text returns: :class:`Transcript` and its timed :class:`Word` s."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Transcript", "Word"]


class Word(BaseModel):
    """One recognised word with its time span in the input audio (seconds)."""

    model_config = ConfigDict(frozen=True)

    text: str
    start: float
    end: float
    probability: float | None = None


class Transcript(BaseModel):
    """The text of what the user said, with optional language, duration and word timings."""

    model_config = ConfigDict(frozen=True)

    text: str
    language: str | None = None
    duration: float | None = Field(default=None, description="seconds of input audio")
    words: tuple[Word, ...] = ()

    def __str__(self) -> str:
        return self.text
