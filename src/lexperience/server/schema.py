"""The service's wire schema, shared by the server and :mod:`lexperience.client`.

The WebSocket sends every event of :mod:`lexperience.events` as one JSON message. The models here
are *derived* from the event classes, not written a second time: each ``Wire<Event>`` has the
event's fields, with the four in-process types replaced by their wire forms:

=====================  =============================================================
in process             on the wire
=====================  =============================================================
``AudioChunk``         :class:`WireAudio`: 16-bit PCM (base64, or a binary frame)
``VideoFrame``         :class:`WireFrame`: a JPEG (base64, or a binary frame)
``Reply``              :class:`WireReply`: text, transcript, metrics, media URLs
``LexperienceError``   :class:`WireError`: type, message, retryable, stage, ...
=====================  =============================================================

A test checks that every event type has its wire model with the same ``type`` and field names.

Binary mode (``?binary=1``): an ``audio`` or ``video`` event goes as one binary WebSocket message,
``[4-byte big-endian header length][header JSON][payload]``, where the header is the event's JSON
with ``data`` set to ``null``; everything else stays a text message.

Importing this module needs pydantic only (no FastAPI), so clients can use it.
"""

from __future__ import annotations

import json
import struct
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from ..errors import LexperienceError
from ..events import EVENT_TYPES
from ..media import AudioChunk, VideoFrame
from ..messages import Message
from ..metrics import TurnMetrics
from ..reply import Reply
from ..transcript import Transcript

__all__ = [
    "WIRE_EVENTS",
    "ClientAudioEnd",
    "ClientAudioStart",
    "ClientInterrupt",
    "ClientLiveEnd",
    "ClientLiveStart",
    "ClientMessage",
    "ClientPlayed",
    "ClientText",
    "ConversationInfo",
    "CreateConversation",
    "ErrorBody",
    "LiveEnded",
    "SessionStarted",
    "TextTurn",
    "VideoSegment",
    "WireAudio",
    "WireError",
    "WireEvent",
    "WireFrame",
    "WireReply",
    "pack_binary",
    "parse_server_message",
    "unpack_binary",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WireAudio(_Wire):
    """A chunk of reply speech: mono 16-bit little-endian PCM."""

    sample_rate: int
    samples: int
    sentence_index: int
    text: str | None = None
    visemes: list[tuple[float, float, str]] = Field(default_factory=list)
    encoding: Literal["pcm_s16le"] = "pcm_s16le"
    data: str | None = Field(default=None, description="base64 PCM; null in binary mode")


class WireFrame(_Wire):
    """One avatar frame as a JPEG."""

    index: int
    timestamp: float
    fps: float
    width: int
    height: int
    encoding: Literal["jpeg"] = "jpeg"
    data: str | None = Field(default=None, description="base64 JPEG; null in binary mode")


class WireError(_Wire):
    """A failure, as the error tree of :mod:`lexperience.errors` names it."""

    type: str = Field(description="the error class, e.g. BackendTimeoutError")
    message: str
    retryable: bool = False
    stage: str | None = None
    backend: str | None = None
    status: int | None = None
    retry_after: float | None = None


class WireReply(_Wire):
    """What a turn produced, with the URLs of its media."""

    turn_id: int
    transcript: Transcript | None = None
    user_text: str
    text: str
    sentences: list[str] = Field(default_factory=list)
    interrupted: bool = False
    audio_seconds: float = 0.0
    video_frames: int = 0
    fps: float | None = None
    metrics: TurnMetrics = Field(default_factory=TurnMetrics)
    media: dict[str, str] = Field(default_factory=dict, description="name -> URL (wav, mp4)")


_REPLACE: dict[Any, Any] = {
    AudioChunk: WireAudio,
    VideoFrame: WireFrame,
    Reply: WireReply,
    LexperienceError: WireError,
}


def _derive(event_type: type[BaseModel]) -> Any:
    fields: dict[str, Any] = {}
    for name, info in event_type.model_fields.items():
        annotation = _REPLACE.get(info.annotation, info.annotation)
        default = info.default if not info.is_required() else ...
        fields[name] = (annotation, default)
    return create_model(
        f"Wire{event_type.__name__}", __base__=_Wire, __doc__=event_type.__doc__, **fields
    )


#: The wire model of each event type, in the same order as ``lexperience.events.EVENT_TYPES``.
WIRE_EVENTS: dict[type[BaseModel], Any] = {e: _derive(e) for e in EVENT_TYPES}


class SessionStarted(_Wire):
    """The first message on a WebSocket: which conversation it serves and how media come."""

    type: Literal["session"] = "session"
    conversation_id: str
    binary: bool
    video: Literal["jpeg", "mp4", "none"]


class VideoSegment(_Wire):
    """With ``?video=mp4``: one self-contained H.264 + AAC MP4 per reply sentence, sent as soon
    as it is complete (instead of per-frame JPEGs)."""

    type: Literal["video_segment"] = "video_segment"
    turn_id: int
    index: int
    sentence_index: int
    start: float
    duration: float
    frames: int
    data: str | None = Field(default=None, description="base64 MP4; null in binary mode")


class LiveEnded(_Wire):
    """After ``live_end``: the live session answered what was said and stopped listening."""

    type: Literal["live_ended"] = "live_ended"
    turns: int = Field(description="turns the live session ran")


WireEvent: Any = Annotated[
    Union[tuple([*WIRE_EVENTS.values(), SessionStarted, VideoSegment, LiveEnded])],
    Field(discriminator="type"),
]
"""Any message the server sends on the WebSocket (a discriminated union on ``type``)."""

_SERVER_MESSAGES: TypeAdapter[Any] = TypeAdapter(WireEvent)


def parse_server_message(data: str | dict[str, Any]) -> BaseModel:
    """Parse one server message (JSON text or a decoded dict) into its wire model."""
    raw = json.loads(data) if isinstance(data, str) else data
    return _SERVER_MESSAGES.validate_python(raw)  # type: ignore[no-any-return]


def pack_binary(header: dict[str, Any], payload: bytes) -> bytes:
    """One binary WebSocket message: header length, header JSON, payload."""
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return struct.pack(">I", len(head)) + head + payload


def unpack_binary(message: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and payload of a message made by :func:`pack_binary`."""
    if len(message) < 4:
        raise ValueError("a binary message shorter than its header length")
    (size,) = struct.unpack(">I", message[:4])
    if size > len(message) - 4:
        raise ValueError("a binary message whose header runs past its end")
    header = json.loads(message[4 : 4 + size].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("a binary message whose header is not a JSON object")
    return header, message[4 + size :]


# -- what clients send ------------------------------------------------------------------------
class ClientText(_Wire):
    """Ask in text."""

    type: Literal["text"] = "text"
    text: str


class ClientAudioStart(_Wire):
    """Start a spoken question: binary messages of 16-bit PCM follow, then ``audio_end``."""

    type: Literal["audio_start"] = "audio_start"
    sample_rate: int = Field(default=16_000, ge=8_000, le=48_000)
    encoding: Literal["pcm_s16le"] = "pcm_s16le"


class ClientAudioEnd(_Wire):
    """The user stopped speaking: the turn's latencies count from here."""

    type: Literal["audio_end"] = "audio_end"


class ClientInterrupt(_Wire):
    """Stop the reply; ``played_seconds`` is how much of it the listener heard."""

    type: Literal["interrupt"] = "interrupt"
    played_seconds: float | None = Field(default=None, ge=0)


class ClientLiveStart(_Wire):
    """Start live mode: binary 16-bit PCM follows continuously (any amount per message) until
    ``live_end``; the server detects speech, answers each time the user stops, and lets the
    user interrupt (see the live-mode guide). ``channels=2``: interleaved, the second channel
    is what the client's loudspeaker played at the same time (the echo reference)."""

    type: Literal["live_start"] = "live_start"
    sample_rate: int = Field(default=16_000, ge=8_000, le=48_000)
    channels: Literal[1, 2] = 1
    encoding: Literal["pcm_s16le"] = "pcm_s16le"
    preemptive: bool | None = Field(default=None, description="null: the server decides")
    end_of_turn_silence: float | None = Field(default=None, ge=0.2, le=3.0)
    barge_in: bool = True


class ClientLiveEnd(_Wire):
    """Stop live mode: what was said is answered, then ``live_ended`` comes."""

    type: Literal["live_end"] = "live_end"


class ClientPlayed(_Wire):
    """Live mode: the client has played ``seconds`` of turn ``turn_id``'s reply (sent now and
    then while playing; a barge-in keeps that much of the reply in the history)."""

    type: Literal["played"] = "played"
    turn_id: int = Field(ge=1)
    seconds: float = Field(ge=0)


ClientMessage = Annotated[
    Union[
        ClientText,
        ClientAudioStart,
        ClientAudioEnd,
        ClientInterrupt,
        ClientLiveStart,
        ClientLiveEnd,
        ClientPlayed,
    ],
    Field(discriminator="type"),
]
"""Any JSON message a client sends on the WebSocket."""


# -- HTTP bodies --------------------------------------------------------------------------------
class CreateConversation(_Wire):
    """``POST /v1/conversations``: who the host is and which backends (registry names) to use;
    leave a backend out for the server's default. ``history`` seeds the conversation (a client
    moving a conversation to another worker)."""

    persona: str = Field(default="default", max_length=128)
    stt: str | None = Field(default=None, max_length=64)
    llm: str | None = Field(default=None, max_length=64)
    tts: str | None = Field(default=None, max_length=64)
    avatar: str | None = Field(default=None, max_length=64)
    history: list[Message] = Field(default_factory=list, max_length=200)


class ConversationInfo(_Wire):
    """A conversation as the service keeps it."""

    id: str
    persona: str
    backends: dict[str, str | None]
    turns: int
    busy: bool
    expires_in: float = Field(description="seconds until it is dropped if it stays idle")
    history: list[Message]


class TextTurn(_Wire):
    """``POST .../turns`` with JSON: a typed question."""

    text: str


class ErrorBody(_Wire):
    """Every error response of the service."""

    error: WireError
