"""The live session's STT runs: :class:`Transcripts`.

One STT runs at a time (a local model is CPU-bound; a cloud one is billed per request). A
decision (the end of a turn, a barge-in check, a preemptive reply) cancels a pending interim
transcript instead of waiting behind it, and a new revision of the user's turn cancels the
transcripts of the older ones, which are stale. Each revision's transcript is made once and
kept on its :class:`~.userturn.UserTurn`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._aio import cancel_and_wait
from ..errors import InvalidInputError, LexperienceError
from ..events import ErrorEvent, InterimTranscript
from ..media import Audio
from ..transcript import Transcript
from .userturn import UserTurn

if TYPE_CHECKING:
    from .session import LiveSession

__all__ = ["Transcripts"]


class Transcripts:
    """The STT side of a :class:`~.session.LiveSession` (see the module docstring)."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self._lock = asyncio.Lock()
        self._interim: asyncio.Task[Any] | None = None

    @property
    def busy(self) -> bool:
        """Whether an STT run is under way."""
        return self._lock.locked()

    def start(
        self, user: UserTurn, revision: int, end: float, *, interim: bool = False
    ) -> asyncio.Task[Transcript | None]:
        """Transcribe ``user``'s audio up to ``end`` (session time) as ``revision``; an interim
        transcript only emits its ``InterimTranscript``."""
        s = self.session
        audio = s._audio(user.start - s.options.pre_roll, end)
        if not interim:  # transcripts of what the user said before are stale now
            for old, stale in user.stt.items():
                if old < revision and not stale.done():
                    stale.cancel()
        task = s._spawn(self._run(audio, user, end if interim else None))
        if interim:
            self._interim = task
        else:
            user.stt[revision] = task
        return task

    async def _run(self, audio: Audio, user: UserTurn, interim_until: float | None) -> Any:
        s = self.session
        stt = s.conversation.backends.stt
        interim = self._interim
        if interim_until is None and interim is not None and not interim.done():
            await cancel_and_wait(interim)  # a decision waits for no interim transcript
        try:
            async with self._lock:
                transcript = await stt.transcribe(audio, language=s.conversation.persona.language)
        except InvalidInputError:  # silence, or too short for this STT: no words
            return Transcript(text="")
        except LexperienceError as exc:
            s._emit(ErrorEvent, error=exc, stage="stt")
            return None
        if not isinstance(transcript, Transcript):
            return None
        if interim_until is not None and user is s.user and transcript.text.strip():
            s._emit(InterimTranscript, text=transcript.text.strip(), until=interim_until)
        return transcript

    async def get(self, user: UserTurn, revision: int) -> Transcript | None:
        """The transcript of ``revision`` (made now, up to the end of its speech, if nobody
        asked for it yet)."""
        if revision in user.transcripts:
            return user.transcripts[revision]
        task = user.stt.get(revision) or self.start(user, revision, self.session._stt_end(user))
        transcript = await task
        if transcript is not None:
            user.transcripts[revision] = transcript
        return transcript
