"""The state a live session keeps about the user's turn (:class:`UserTurn`, :class:`Barged`) and
two small helpers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .. import registry
from ..errors import LexperienceError
from ..transcript import Transcript
from .reply import ReplyRun

__all__ = ["Barged", "UserTurn", "as_error", "is_local"]


@dataclass
class Barged:
    """The reply a user turn's speech cut, kept to resume it after a false interruption."""

    run: ReplyRun
    played: float


@dataclass
class UserTurn:
    """The user's turn being spoken (it lasts until its reply is heard)."""

    start: float
    end: float | None = None
    revision: int = 0  # +1 per speech segment: transcripts are valid for one revision
    overlap: bool = False  # began over the host's reply without (yet) interrupting it
    barged: Barged | None = None
    decided: bool = False  # a barge-in's false-interruption check has been made
    eot: bool = False  # the end-of-turn silence passed: its reply is being prepared
    interim_at: float = 0.0
    speech: float = 0.0  # seconds of speech in its finished segments
    preempted: int = -1  # the revision a preemptive transcript was asked for
    transcripts: dict[int, Transcript] = field(default_factory=dict)
    stt: dict[int, asyncio.Task[Transcript | None]] = field(default_factory=dict)
    spec: ReplyRun | None = None
    answer: ReplyRun | None = None


def as_error(error: BaseException | None) -> LexperienceError:
    if isinstance(error, LexperienceError):
        return error
    return LexperienceError(f"internal error in the live session: {type(error).__name__}")


def is_local(conversation: Any, kind: str) -> bool:
    """Whether the conversation's ``kind`` backend runs here (a cloud one needs an API key)."""
    name = conversation.backends.names.get(kind)
    try:
        spec = registry.get_spec(kind, name) if name else None
    except LexperienceError:
        spec = None
    return spec is None or not spec.env_vars
