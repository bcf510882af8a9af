"""The one event vocabulary of a turn.

:meth:`Conversation.stream` yields these in order; the CLI, UIs, the server and the benchmarks all
consume the same stream. Every event carries the ``turn_id`` and ``t``, seconds since the turn
started (the end of the user's speech).

A turn yields ``TurnStarted``, then (audio input only) any ``PartialTranscript`` s of a streaming
STT and one ``TranscriptEvent``, then interleaved ``TextDelta``/``SentenceEvent``/``AudioEvent``/
``VideoEvent``, and ends with exactly one of ``TurnDone``, ``TurnInterrupted`` or ``ErrorEvent``.

Live mode (:meth:`Conversation.live`, :mod:`lexperience.live`) adds four events about the
microphone stream between and across turns: ``SpeechStarted``, ``SpeechEnded``,
``InterimTranscript`` and ``FalseInterruption``. Their ``t`` is the *session* time (seconds of
microphone audio the live session has consumed when it emitted the event), and their
``turn_id`` is the turn started most recently (0 before the first one): the reply the speech
overlaps or follows.

Every event type has its hook in :class:`~lexperience.Hooks` (``HOOK_FOR_EVENT`` there).
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict

from .errors import LexperienceError
from .media import AudioChunk, VideoFrame
from .reply import Reply
from .transcript import Transcript

__all__ = [
    "AudioEvent",
    "EVENT_TYPES",
    "ErrorEvent",
    "Event",
    "FalseInterruption",
    "InterimTranscript",
    "PartialTranscript",
    "SentenceEvent",
    "SpeechEnded",
    "SpeechStarted",
    "TextDelta",
    "TranscriptEvent",
    "TurnDone",
    "TurnInterrupted",
    "TurnStarted",
    "VideoEvent",
]


class _Base(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    turn_id: int
    t: float


class TurnStarted(_Base):
    """A turn began; ``input`` says whether it started from audio or typed text."""

    type: Literal["turn_started"] = "turn_started"
    input: Literal["audio", "text"]


class PartialTranscript(_Base):
    """Speech-to-text is still running: ``text`` is the transcript so far, ``delta`` its newest
    piece (from STT backends that stream, see :class:`~lexperience.protocols.StreamingSTT`)."""

    type: Literal["partial_transcript"] = "partial_transcript"
    text: str
    delta: str


class TranscriptEvent(_Base):
    """Speech-to-text finished."""

    type: Literal["transcript"] = "transcript"
    transcript: Transcript


class TextDelta(_Base):
    """A piece of the reply text as the LLM streams it."""

    type: Literal["text_delta"] = "text_delta"
    text: str


class SentenceEvent(_Base):
    """A complete reply sentence, handed to TTS. ``index`` counts from 0."""

    type: Literal["sentence"] = "sentence"
    index: int
    text: str


class AudioEvent(_Base):
    """A chunk of reply speech; ``offset`` is where it starts in the reply audio, in seconds."""

    type: Literal["audio"] = "audio"
    chunk: AudioChunk
    offset: float


class VideoEvent(_Base):
    """A video frame of the avatar; ``frame.timestamp`` lines up with the reply audio."""

    type: Literal["video"] = "video"
    frame: VideoFrame


class TurnDone(_Base):
    """The turn finished; ``reply`` holds everything it produced, and its metrics."""

    type: Literal["turn_done"] = "turn_done"
    reply: Reply


class TurnInterrupted(_Base):
    """The turn was interrupted; the history keeps ``heard_text`` (what the listener heard)."""

    type: Literal["turn_interrupted"] = "turn_interrupted"
    heard_text: str
    played_seconds: float
    reply: Reply


class SpeechStarted(_Base):
    """Live mode: the user started speaking at ``at`` (seconds into the microphone stream);
    ``while_replying`` says the host was speaking (this may become a barge-in)."""

    type: Literal["speech_started"] = "speech_started"
    at: float
    while_replying: bool = False


class SpeechEnded(_Base):
    """Live mode: the user stopped speaking at ``at`` after ``duration`` seconds of speech (the
    turn ends once the end-of-turn silence has passed too)."""

    type: Literal["speech_ended"] = "speech_ended"
    at: float
    duration: float


class InterimTranscript(_Base):
    """Live mode: what the user has said so far in the turn being spoken (``until``: the position
    in the microphone stream the transcript reaches). The final words arrive in the turn's
    :class:`TranscriptEvent`."""

    type: Literal["interim_transcript"] = "interim_transcript"
    text: str
    until: float


class FalseInterruption(_Base):
    """Live mode: the speech that interrupted reply ``interrupted_turn_id`` had no words (noise, a
    cough) or only a backchannel ("mhm"), ``transcript`` is what STT heard. ``resumed`` says the
    host goes on with the rest of that reply (in a new turn that follows at once); otherwise the
    reply ends where it was cut."""

    type: Literal["false_interruption"] = "false_interruption"
    interrupted_turn_id: int
    transcript: str
    resumed: bool


class ErrorEvent(_Base):
    """The turn failed. ``stage`` is the pipeline stage that failed, when known."""

    type: Literal["error"] = "error"
    error: LexperienceError
    stage: str | None = None


Event = Union[
    TurnStarted,
    PartialTranscript,
    TranscriptEvent,
    TextDelta,
    SentenceEvent,
    AudioEvent,
    VideoEvent,
    TurnDone,
    TurnInterrupted,
    ErrorEvent,
    SpeechStarted,
    SpeechEnded,
    InterimTranscript,
    FalseInterruption,
]
"""Any event of a turn or of a live session."""


#: Every event type, in the order a turn can yield them.
EVENT_TYPES: tuple[type[_Base], ...] = (
    TurnStarted,
    PartialTranscript,
    TranscriptEvent,
    TextDelta,
    SentenceEvent,
    AudioEvent,
    VideoEvent,
    TurnDone,
    TurnInterrupted,
    ErrorEvent,
    SpeechStarted,
    SpeechEnded,
    InterimTranscript,
    FalseInterruption,
)
