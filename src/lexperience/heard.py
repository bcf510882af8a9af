"""What the listener heard of an interrupted reply: where each sentence lies in the reply audio.

The history keeps only the heard part of a reply cut short (:meth:`Conversation.interrupt`), so
the next turn's LLM does not believe it said what nobody heard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .messages import Message

__all__ = ["HEARD_TO_THE_END", "SentenceSpan", "SpokenReply", "heard_text"]

#: Seconds per character of typical English speech, until the reply's own rate is known.
_DEFAULT_RATE = 0.065


@dataclass
class SentenceSpan:
    """Where one spoken sentence lies in the reply audio."""

    index: int
    text: str
    start: float
    end: float
    complete: bool = False  # TTS finished the sentence (else ``end`` is only how far it got)


def _seconds_per_char(spans: Sequence[SentenceSpan]) -> float:
    done = [s for s in spans if s.complete and s.end > s.start]
    if not done:
        return _DEFAULT_RATE
    return sum(s.end - s.start for s in done) / max(1, sum(len(s.text) for s in done))


def heard_text(spans: Sequence[SentenceSpan], played_seconds: float) -> str:
    """The reply text a listener heard after ``played_seconds`` of the reply audio.

    Whole sentences that finished playing are kept; a sentence cut mid-way keeps the share of its
    words proportional to the share of its audio that played, and ends with "…". A sentence that
    TTS had not finished counts with its expected length (from the speaking rate so far), because
    the audio produced so far understates it.
    """
    parts: list[str] = []
    for span in spans:
        if span.complete and span.start < span.end <= played_seconds + 1e-6:
            parts.append(span.text)
            continue
        if span.start < played_seconds:
            words = span.text.split()
            length = span.end - span.start
            if not span.complete:
                length = max(length, len(span.text) * _seconds_per_char(spans))
            share = min(1.0, (played_seconds - span.start) / length) if length > 0 else 0.0
            keep = int(len(words) * share)
            if keep:
                parts.append(" ".join(words[:keep]) + " …")
        break
    return " ".join(parts)


#: A stop this close to the end of a reply's audio (seconds) heard all of it: players report
#: their position a few times a second, and an encoder's padding shifts the end by a frame.
HEARD_TO_THE_END = 0.05


@dataclass(frozen=True)
class SpokenReply:
    """The newest finished reply as it was spoken: enough to trim the history to what the
    listener heard when a player stops it after the turn ended."""

    text: str
    spans: tuple[SentenceSpan, ...]
    audio_seconds: float

    @classmethod
    def of(cls, text: str, spans: Sequence[SentenceSpan], audio_seconds: float) -> SpokenReply:
        done = tuple(dataclasses.replace(s, complete=True) for s in spans)  # the turn ended
        return cls(text, done, audio_seconds)

    def trimmed(self, history: Sequence[Message], played_seconds: float) -> list[Message] | None:
        """``history`` with this reply cut to what ``played_seconds`` of its audio said, marked
        interrupted; ``None`` when nothing changes (everything was heard, or the history's last
        message is no longer this reply)."""
        if played_seconds >= self.audio_seconds - HEARD_TO_THE_END:
            return None
        last = history[-1] if history else None
        if (
            last is None
            or last.role != "assistant"
            or last.interrupted
            or last.content != self.text
        ):
            return None
        heard = heard_text(self.spans, max(0.0, played_seconds))
        kept = list(history[:-1])
        if heard:
            kept.append(Message.assistant(heard, interrupted=True))
        return kept
