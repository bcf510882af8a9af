"""Live mode: a continuous conversation over a microphone stream.

>>> async for event in conversation.live(microphone_chunks):   # doctest: +SKIP
...     play(event)

:class:`LiveSession` (what :meth:`Conversation.live` runs) detects speech with Silero VAD, ends
the user's turn after a configurable silence, answers, lets the user interrupt the reply by
speaking (barge-in, with the history trimmed to what was heard), resumes the reply after a false
interruption (a cough, a "mhm"), starts the reply before the turn ends (preemptive generation)
and removes the host's own voice from the microphone when it is given the loudspeaker signal
(:class:`DuplexChunk`, :class:`EchoCanceller`). :class:`LiveOptions` holds the knobs;
:class:`SimulatedRoom` plays a scripted session faster than real time for tests and benchmarks.
"""

from ..events import FalseInterruption, InterimTranscript, SpeechEnded, SpeechStarted
from .echo import EchoCanceller
from .input import DuplexChunk, StreamResampler
from .options import DEFAULT_BACKCHANNELS, LiveOptions
from .playback import PlaybackClock
from .session import LiveSession
from .vad import VAD, SileroVAD
from .words import has_words, is_backchannel, normalise, same_words

__all__ = [
    "DEFAULT_BACKCHANNELS",
    "VAD",
    "DuplexChunk",
    "EchoCanceller",
    "FalseInterruption",
    "InterimTranscript",
    "LiveOptions",
    "LiveSession",
    "PlaybackClock",
    "SileroVAD",
    "SpeechEnded",
    "SpeechStarted",
    "StreamResampler",
    "has_words",
    "is_backchannel",
    "normalise",
    "same_words",
]
