"""lexperience: conversational talking avatars that listen, think, speak and show a face, streamed.

The top-level package imports no backend: backends load lazily by name through
:mod:`lexperience.registry`, and each one's optional packages come with its pip extra.
"""

import logging as _logging

from ._version import __version__
from .context import ContextProvider, StaticContext, TurnContext
from .conversation import Conversation, UserInput
from .episode import Episode, EpisodeContext, Passage, Segment
from .errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    ConversationBusyError,
    HookError,
    InvalidInputError,
    LexperienceError,
    MissingCredentialsError,
    MissingDependencyError,
    RateLimitError,
    TurnCancelledError,
)
from .events import (
    AudioEvent,
    ErrorEvent,
    Event,
    PartialTranscript,
    SentenceEvent,
    TextDelta,
    TranscriptEvent,
    TurnDone,
    TurnInterrupted,
    TurnStarted,
    VideoEvent,
)
from .hooks import Hooks
from .media import Audio, AudioChunk, VideoFrame
from .messages import Message
from .metrics import TurnMetrics
from .options import TurnOptions
from .output.watermark import Watermark
from .persona import DEFAULT_PERSONA, Persona
from .protocols import LLM, STT, TTS, Avatar, FrameFilter, StreamingSTT
from .registry import create
from .reply import EncodedVideo, Reply
from .transcript import Transcript, Word
from .visemes import VisemeCue

__all__ = [
    "DEFAULT_PERSONA",
    "LLM",
    "STT",
    "TTS",
    "Audio",
    "AudioChunk",
    "AudioEvent",
    "AuthenticationError",
    "Avatar",
    "BackendError",
    "BackendTimeoutError",
    "ConfigurationError",
    "ContextProvider",
    "Conversation",
    "ConversationBusyError",
    "EncodedVideo",
    "Episode",
    "EpisodeContext",
    "ErrorEvent",
    "Event",
    "FrameFilter",
    "HookError",
    "Hooks",
    "InvalidInputError",
    "LexperienceError",
    "Message",
    "MissingCredentialsError",
    "MissingDependencyError",
    "PartialTranscript",
    "Passage",
    "Persona",
    "RateLimitError",
    "Reply",
    "Segment",
    "SentenceEvent",
    "StaticContext",
    "StreamingSTT",
    "TextDelta",
    "Transcript",
    "TranscriptEvent",
    "TurnCancelledError",
    "TurnContext",
    "TurnDone",
    "TurnInterrupted",
    "TurnMetrics",
    "TurnOptions",
    "TurnStarted",
    "UserInput",
    "VideoEvent",
    "VideoFrame",
    "VisemeCue",
    "Watermark",
    "Word",
    "__version__",
    "create",
]

# A library logs, it does not configure logging: the application decides where records go.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
