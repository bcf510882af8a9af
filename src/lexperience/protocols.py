"""The four contracts a backend implements: :class:`STT`, :class:`LLM`, :class:`TTS`, :class:`Avatar`.

Two optional extensions: :class:`StreamingSTT` (an STT that also streams partial transcripts) and
:class:`FrameFilter` (what the conversation applies to every frame, e.g. the watermark).

They are structural (``typing.Protocol``): a class needs no base class, only the methods. All four
are ``runtime_checkable`` so ``isinstance(obj, TTS)`` checks the method names.

Rules every backend follows:

* Streaming methods are async generators and must be cheap to cancel: the pipeline cancels them on
  :meth:`Conversation.interrupt`, and a backend must not leave work running (threads stop at the
  next chunk boundary).
* Blocking work (model inference, blocking SDK calls) runs in a worker thread, never on the event
  loop; lazy generators of blocking libraries are consumed inside that thread.
* Models load once: in ``__init__`` or in an optional ``async def aopen()``; resources are released
  in an optional ``async def aclose()``. :class:`Conversation` calls both when present.
* Failures raise :class:`lexperience.errors.BackendError` (or a subclass) with ``retryable`` set;
  bad input raises :class:`lexperience.errors.InvalidInputError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Protocol, Union, runtime_checkable

import numpy as np

from .media import Audio, AudioChunk, VideoFrame
from .messages import Message
from .transcript import Transcript

__all__ = ["LLM", "STT", "TTS", "Avatar", "FrameFilter", "StreamingSTT"]


@runtime_checkable
class STT(Protocol):
    """Speech to text."""

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        """Transcribe a whole clip. ``language`` is a hint (ISO 639-1), ``None`` to detect."""
        ...


@runtime_checkable
class StreamingSTT(STT, Protocol):
    """An STT that can also stream: the pipeline prefers :meth:`transcribe_stream` when present
    and turns each text piece into a :class:`~lexperience.events.PartialTranscript` event."""

    def transcribe_stream(
        self, audio: Audio, *, language: str | None = None
    ) -> AsyncIterator[Union[str, Transcript]]:
        """Yield text deltas as they are recognised, then exactly one final :class:`Transcript`."""
        ...


@runtime_checkable
class LLM(Protocol):
    """A chat model that streams its reply as text deltas."""

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the reply to ``messages`` piece by piece (any split: tokens, words, lines)."""
        ...


@runtime_checkable
class TTS(Protocol):
    """Text to speech that streams audio chunks."""

    sample_rate: int

    def stream(self, text: str) -> AsyncIterator[AudioChunk]:
        """Yield the speech for ``text`` (one sentence, usually) in chunks, first chunk early."""
        ...


@runtime_checkable
class Avatar(Protocol):
    """Turns a stream of speech into a stream of video frames at a constant ``fps``.

    For every second of audio it receives, an avatar yields exactly ``fps`` frames (rounded over
    the whole stream: frame boundaries at ``round(t * fps)`` of the total audio time), so audio and
    video never drift apart. Live avatars yield frames as audio arrives; clip-based avatars (a
    cloud model that returns one video per sentence) yield each sentence's frames in a burst, so
    a player should buffer frames against their ``timestamp``.
    """

    fps: float

    def animate(self, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[VideoFrame]:
        """Yield frames for ``audio`` as it arrives, numbered from 0."""
        ...


@runtime_checkable
class FrameFilter(Protocol):
    """Something applied to every avatar frame before anyone sees it (the watermark is one).

    ``apply`` takes an ``HxWx3`` uint8 RGB image and returns the image to show (a new array, or
    the input modified in place). It runs on the event loop once per frame: keep it to a
    millisecond or so (precompute what does not change per frame).
    """

    def apply(self, image: np.ndarray) -> np.ndarray: ...
