"""Typed hooks: user callbacks run as a turn's events happen.

Every event type of :mod:`lexperience.events` has its hook (:data:`HOOK_FOR_EVENT`), and
``on_event`` sees every event. Each hook is an ``async def`` (a plain function works too) that
receives the event; ``on_reply`` receives the finished :class:`~lexperience.Reply` (right after
``on_turn_done``). Hooks run in order, in the task that consumes the turn's events, before the
event is yielded by :meth:`Conversation.stream`: the specific hook first, then ``on_event``. A hook
that raises fails the turn with :class:`HookError` (never swallowed); the conversation stays
usable.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from .errors import HookError
from .events import (
    AudioEvent,
    ErrorEvent,
    Event,
    FalseInterruption,
    InterimTranscript,
    PartialTranscript,
    SentenceEvent,
    SpeechEnded,
    SpeechStarted,
    TextDelta,
    TranscriptEvent,
    TurnDone,
    TurnInterrupted,
    TurnStarted,
    VideoEvent,
)
from .reply import Reply

__all__ = ["HOOK_FOR_EVENT", "Hook", "Hooks"]

E = TypeVar("E")
Hook = Callable[[E], Awaitable[None] | None]
"""A callback taking one event; may be a coroutine function."""


@dataclass
class Hooks:
    """The hooks a :class:`Conversation` calls; leave any of them ``None``."""

    on_turn_started: Hook[TurnStarted] | None = None
    on_partial_transcript: Hook[PartialTranscript] | None = None
    on_transcript: Hook[TranscriptEvent] | None = None
    on_text_delta: Hook[TextDelta] | None = None
    on_sentence: Hook[SentenceEvent] | None = None
    on_audio: Hook[AudioEvent] | None = None
    on_video_frame: Hook[VideoEvent] | None = None
    on_turn_done: Hook[TurnDone] | None = None
    on_turn_interrupted: Hook[TurnInterrupted] | None = None
    on_error: Hook[ErrorEvent] | None = None
    on_speech_started: Hook[SpeechStarted] | None = None
    on_speech_ended: Hook[SpeechEnded] | None = None
    on_interim_transcript: Hook[InterimTranscript] | None = None
    on_false_interruption: Hook[FalseInterruption] | None = None
    on_reply: Hook[Reply] | None = None
    on_event: Hook[Event] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not callable(value):
                raise TypeError(f"hook {f.name} must be callable, got {type(value).__name__}")

    async def call(self, name: str, arg: Any) -> None:
        """Run hook ``name`` with ``arg``; wrap anything it raises in :class:`HookError`."""
        fn = getattr(self, name)
        if fn is None:
            return
        try:
            result = fn(arg)
            if inspect.isawaitable(result):
                await result
        except HookError:
            raise
        except Exception as exc:
            raise HookError(name, exc) from exc

    async def dispatch(self, event: Event) -> None:
        """Run the hooks of ``event``: its own, ``on_reply`` for a finished turn, ``on_event``."""
        await self.call(HOOK_FOR_EVENT[type(event)], event)
        if isinstance(event, TurnDone):
            await self.call("on_reply", event.reply)
        await self.call("on_event", event)


#: Which hook each event type triggers (every event type has one).
HOOK_FOR_EVENT: dict[type, str] = {
    TurnStarted: "on_turn_started",
    PartialTranscript: "on_partial_transcript",
    TranscriptEvent: "on_transcript",
    TextDelta: "on_text_delta",
    SentenceEvent: "on_sentence",
    AudioEvent: "on_audio",
    VideoEvent: "on_video_frame",
    TurnDone: "on_turn_done",
    TurnInterrupted: "on_turn_interrupted",
    ErrorEvent: "on_error",
    SpeechStarted: "on_speech_started",
    SpeechEnded: "on_speech_ended",
    InterimTranscript: "on_interim_transcript",
    FalseInterruption: "on_false_interruption",
}
