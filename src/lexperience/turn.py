"""One running turn of a :class:`~lexperience.Conversation`: its pipeline task, its event channel,
and the one way it ends (done, failed or interrupted) with the history left consistent.

Internal. The conversation creates a :class:`Turn` per call of ``stream()`` (``areply``/``reply``
use ``stream``), holds its turn lock while the turn runs, and forwards ``interrupt()`` here, also
from another event loop or thread.

Live mode (:mod:`lexperience.live`) runs turns with a :class:`TurnPlan`: the input already
transcribed, a stand-in LLM (to resume a reply), its own hooks, and a :class:`CommitGate` that
holds the history commit until the reply is confirmed (a speculative turn started before the
user finished speaking commits nothing unless its transcript turns out final).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._aio import Channel, CrossLoopEvent, cancel_and_wait
from ._redact import redact
from .errors import LexperienceError
from .events import AudioEvent, ErrorEvent, Event, TurnDone, TurnInterrupted
from .hooks import Hooks
from .media import Audio
from .pipeline import TurnPipeline
from .protocols import LLM
from .reply import Reply
from .transcript import Transcript

__all__ = ["Commit", "CommitGate", "KnownTranscript", "Turn", "TurnPlan"]

log = logging.getLogger(__name__)

#: What the conversation does with a finished turn: (pipeline, heard text, interrupted).
Commit = Callable[[TurnPipeline, str, bool], None]
#: What the turn runs: the pipeline's input, prepared inside the turn's task (decoding a file,
#: collecting a live stream); it may call ``pipeline.restart_clock()``.
Prepare = Callable[[TurnPipeline], Awaitable[Audio | str]]


class CommitGate:
    """Holds a turn's history commit until a verdict: :meth:`confirm` applies it (at once, or when
    the turn ends if it is still running), :meth:`discard` drops it for good. A turn whose gate
    is discarded leaves the history exactly as it was."""

    def __init__(self) -> None:
        self.state: Literal["pending", "confirmed", "discarded"] = "pending"
        self.pipeline: TurnPipeline | None = None
        self._held: tuple[Commit, str, bool] | None = None

    def wrap(self, commit: Commit) -> Commit:
        def gated(pipeline: TurnPipeline, text: str, interrupted: bool) -> None:
            self.pipeline = pipeline
            if self.state == "confirmed":
                commit(pipeline, text, interrupted)
            elif self.state == "pending":
                self._held = (commit, text, interrupted)

        return gated

    def confirm(self, *, played_seconds: float | None = None) -> None:
        """Apply the commit (now, or when the turn ends). ``played_seconds``: the listener heard
        only this much of a reply that had finished: keep the heard part, marked interrupted."""
        if self.state != "pending":
            return
        self.state = "confirmed"
        held, self._held = self._held, None
        if held is None or self.pipeline is None:
            return
        commit, text, interrupted = held
        pipeline = self.pipeline
        if (
            played_seconds is not None
            and not interrupted
            and played_seconds < pipeline.audio_seconds - 1e-6
        ):
            text, interrupted = pipeline.heard_text(played_seconds), True
        commit(pipeline, text, interrupted)

    def discard(self) -> None:
        if self.state == "pending":
            self.state = "discarded"
            self._held = None


class KnownTranscript:
    """An STT stand-in that returns a transcript made before the turn (live mode transcribes
    while the user speaks); the turn still emits its ``TranscriptEvent``."""

    name = "live"

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        return self.transcript


@dataclass
class TurnPlan:
    """How a turn differs from a plain ``stream()`` turn (live mode; internal).

    Attributes:
        transcript: the input audio's transcript, already made: the STT backend is not called.
        llm: answer with this LLM instead of the conversation's (a reply being resumed).
        commit: what the history keeps, instead of the conversation's own commit.
        gate: hold the commit until ``gate.confirm()``; ``gate.discard()`` drops it.
        hooks: the hooks the turn runs (live mode runs the conversation's hooks itself, when it
            releases each event).
        started_at: ``time.perf_counter()`` origin of the turn's clock (the end of the user's
            speech, before the end-of-turn silence and the transcript).
    """

    transcript: Transcript | None = None
    llm: LLM | None = None
    commit: Commit | None = None
    gate: CommitGate | None = None
    hooks: Hooks | None = None
    started_at: float | None = None


class Turn:
    """Book-keeping of the running turn (see the module docstring)."""

    def __init__(
        self, pipeline: TurnPipeline, events: Channel[Event], hooks: Hooks, commit: Commit
    ) -> None:
        self.pipeline = pipeline
        self.events = events
        self.hooks = hooks
        self._commit = commit
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[Reply] | None = None
        self.consumer: asyncio.Task[Any] | None = asyncio.current_task()
        self.delivered_seconds = 0.0
        self.interrupt_requested = False
        self.played_seconds: float | None = None
        self.committed = False
        self.final_reply: Reply | None = None
        self.settled = CrossLoopEvent()
        self._finishing: asyncio.Future[None] | None = None

    # -- running ------------------------------------------------------------------------------
    async def run(self, prepare: Prepare) -> AsyncGenerator[Event, None]:
        """Start the pipeline and yield its events, then exactly one closing event."""
        pipeline = self.pipeline

        async def work() -> Reply:
            return await pipeline.run(await prepare(pipeline))

        self.task = asyncio.ensure_future(work())
        # the pipeline ended (done, failed or cancelled): the event stream ends with it
        self.task.add_done_callback(lambda _: self.events.close())
        try:
            async for event in self.events:
                if self.interrupt_requested:
                    break
                await self.hooks.dispatch(event)
                if isinstance(event, AudioEvent):
                    self.delivered_seconds = event.offset + event.chunk.duration
                yield event
                if self.interrupt_requested:
                    break
            closing = await self._closing_event()
            await self.hooks.dispatch(closing)
            yield closing
            if isinstance(closing, ErrorEvent):
                raise closing.error
        finally:
            await self.settle()

    async def _closing_event(self) -> Event:
        """The event that ends the turn: ``TurnInterrupted``, ``ErrorEvent`` or ``TurnDone``
        (recording the reply in the history as it goes)."""
        pipeline = self.pipeline
        assert self.task is not None
        if not self.interrupt_requested:
            await asyncio.wait({self.task})  # the channel closed: the task is done or finishing
            if self.task.cancelled():  # cancelled from outside: that is an interruption too
                self.interrupt_requested = True
        if self.interrupt_requested:
            await self.finish_interrupted()
            reply = self.final_reply
            assert reply is not None
            return TurnInterrupted(
                turn_id=pipeline.turn_id,
                t=pipeline.metrics.now(),
                heard_text=reply.text,
                played_seconds=self.played(),
                reply=reply,
            )
        error = self.task.exception()
        if error is not None:
            err = _as_lexperience_error(error)
            self.committed = True  # a failed turn leaves the history as it was
            if pipeline.sink is not None:
                await pipeline.sink.abort()
            log.debug("turn %d failed: %s", pipeline.turn_id, err)
            return ErrorEvent(
                turn_id=pipeline.turn_id,
                t=pipeline.metrics.now(),
                error=err,
                stage=getattr(err, "stage", None),
            )
        reply = self.task.result()
        self._commit(pipeline, reply.text, False)
        self.committed = True
        self.final_reply = reply
        return TurnDone(turn_id=pipeline.turn_id, t=pipeline.metrics.now(), reply=reply)

    # -- ending ---------------------------------------------------------------------------------
    def played(self) -> float:
        if self.played_seconds is not None:
            return min(self.played_seconds, self.pipeline.audio_seconds)
        return self.delivered_seconds

    def request_interrupt(self, played_seconds: float | None) -> None:
        self.interrupt_requested = True
        if played_seconds is not None:
            self.played_seconds = max(0.0, played_seconds)

    async def finish_interrupted(self) -> None:
        """Stop the pipeline and record what was heard (on the turn's loop). Concurrent and
        repeated calls share one run: each returns once the heard reply is recorded."""
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._finish_interrupted())
        await asyncio.shield(self._finishing)

    async def _finish_interrupted(self) -> None:
        task = self.task
        if task is not None:
            await cancel_and_wait(task)
        if self.committed:
            return
        self.committed = True
        failed = task is not None and not task.cancelled() and task.exception() is not None
        sink = self.pipeline.sink
        video = None
        if sink is not None:
            if failed:
                await sink.abort()
            else:
                video = await sink.finish()  # what was encoded up to the interruption
        played = self.played()
        reply = self.pipeline.build_reply(interrupted=True, played_seconds=played, video=video)
        self.final_reply = reply
        if not failed:
            self._commit(self.pipeline, reply.text, True)
        log.debug("turn %d interrupted after %.2f s of audio", self.pipeline.turn_id, played)

    async def settle(self) -> None:
        """On any exit (done, error, hook failure, early close) leave nothing running and the
        history consistent; then wake whoever waits for this turn to end."""
        try:
            if not self.committed:
                self.interrupt_requested = True
            if self.interrupt_requested or self._finishing is not None:
                await self.finish_interrupted()  # idempotent: joins a run already under way
            elif self.task is not None:
                await cancel_and_wait(self.task)
        finally:
            self.settled.set()

    async def interrupt_from_any_loop(self) -> None:
        """:meth:`finish_interrupted` from another event loop or thread, then wait for the turn
        to be settled by its consumer's loop."""
        try:
            future = asyncio.run_coroutine_threadsafe(self.finish_interrupted(), self.loop)
        except RuntimeError:  # that loop is closed: nothing runs there any more
            return
        await asyncio.wrap_future(future)


def _as_lexperience_error(error: BaseException) -> LexperienceError:
    if isinstance(error, LexperienceError):
        return error
    err = LexperienceError(redact(f"internal error: {type(error).__name__}: {error}"))
    err.__cause__ = error
    return err
