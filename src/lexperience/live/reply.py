"""One reply of a live session: :class:`ReplyRun` runs a conversation turn in the background and
hands its events to the session's outbox, holding them back while the reply is speculative, and
holding its ``TurnDone`` until the listener has heard the reply (a barge-in after the pipeline
finished still ends the turn as interrupted, with the history cut to what was heard).

:class:`ReplayLLM` is the stand-in LLM of a resumed reply: it says the rest of the reply again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from .._aio import Channel, cancel_and_wait
from ..errors import LexperienceError
from ..events import (
    AudioEvent,
    ErrorEvent,
    Event,
    SentenceEvent,
    TurnDone,
    TurnInterrupted,
)
from ..hooks import Hooks
from ..media import Audio
from ..messages import Message
from ..protocols import LLM
from ..reply import Reply
from ..transcript import Transcript
from ..turn import Commit, CommitGate, TurnPlan

if TYPE_CHECKING:
    from .session import LiveSession

__all__ = ["ReplayLLM", "ReplyRun"]

log = logging.getLogger(__name__)


class ReplayLLM:
    """Says ``text`` again, word by word (no model: a reply resumed after a false interruption)."""

    name = "replay"

    def __init__(self, text: str) -> None:
        self.text = text

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        for i, word in enumerate(self.text.split(" ")):
            yield word if i == 0 else " " + word


class ReplyRun:
    """A turn of the session's conversation, consumed in the background (see the module doc).

    Args:
        session: the live session whose outbox receives the events.
        audio: the user's speech (the turn's input).
        transcript: its transcript, made by the session.
        started_at: ``perf_counter`` time of the end of the user's speech (metrics origin).
        released: forward events at once (``False``: speculative, until :meth:`release`).
        llm: a stand-in LLM (a resumed reply).
        commit: what the history keeps instead of the conversation's usual commit.
        prefix: reply text heard before this run (a resumed reply continues it).
    """

    def __init__(
        self,
        session: LiveSession,
        *,
        audio: Audio,
        transcript: Transcript,
        started_at: float | None,
        released: bool,
        llm: LLM | None = None,
        commit: Commit | None = None,
        prefix: str = "",
    ) -> None:
        self.session = session
        self.audio = audio
        self.transcript = transcript
        self.prefix = prefix
        self.gate = CommitGate()
        plan = TurnPlan(
            transcript=transcript, llm=llm, commit=commit, gate=self.gate, hooks=Hooks(),
            started_at=started_at,
        )  # fmt: skip
        conv = session.conversation
        self._stream = conv._stream(audio, None, None, plan)
        self._held: Channel[Event] = Channel(session.options.hold_events)
        self._released = asyncio.Event()
        if released:
            self._released.set()
        self.turn_id: int | None = None
        self.sentences: dict[int, str] = {}
        self.spans: dict[int, list[float]] = {}  # sentence index -> [start, end] released audio
        self.audio_released = False
        self.done_event: TurnDone | None = None  # held until the reply has been heard
        self.done_at = 0.0  # session time the pipeline finished
        self.final_reply: Reply | None = None
        self.closed = False  # its closing event went out (or it was discarded)
        self._cutting = False
        self.pump = asyncio.ensure_future(self._pump())
        self.forward = asyncio.ensure_future(self._forward())

    # -- state ----------------------------------------------------------------------------------
    @property
    def released(self) -> bool:
        return self._released.is_set()

    @property
    def pipeline_done(self) -> bool:
        return self.pump.done()

    def release(self) -> None:
        """Let the held events go out (a speculative reply turned out right)."""
        self._released.set()

    # -- background work ------------------------------------------------------------------------
    async def _pump(self) -> None:
        try:
            async for event in self._stream:
                if self.turn_id is None:
                    self.turn_id = event.turn_id
                    self.session.last_turn_id = event.turn_id
                await self._held.send(event)
        except LexperienceError:
            pass  # the turn sent its ErrorEvent first
        finally:
            self._held.close()
            await self._stream.aclose()

    async def _forward(self) -> None:
        await self._released.wait()
        outbox = self.session.outbox
        async for event in self._held:
            if isinstance(event, TurnDone):
                self.final_reply = event.reply
                self.done_event = event
                self.done_at = self.session.now
                continue
            if isinstance(event, (TurnInterrupted, ErrorEvent)):
                if isinstance(event, TurnInterrupted):
                    self.final_reply = event.reply
                self.closed = True
            elif self._cutting:
                continue
            elif isinstance(event, SentenceEvent):
                self.sentences[event.index] = event.text
            elif isinstance(event, AudioEvent):
                index = event.chunk.sentence_index
                end = event.offset + event.chunk.duration
                span = self.spans.setdefault(index, [event.offset, end])
                span[1] = end
                self.audio_released = True
            await outbox.put_turn(event)

    # -- endings --------------------------------------------------------------------------------
    async def finish(self) -> None:
        """The reply was heard to the end: its ``TurnDone`` goes out, the history keeps it."""
        done, self.done_event = self.done_event, None
        self.gate.confirm()
        if done is not None and not self.closed:
            self.closed = True
            await self.session.outbox.put_turn(done)
        await self._join()

    async def cut(self, played: float) -> None:
        """Stop the reply now; the listener heard ``played`` seconds of it. The history keeps
        the heard part (unless the gate was discarded) and one ``TurnInterrupted`` goes out."""
        self._cutting = True
        outbox = self.session.outbox
        if self.turn_id is not None:
            outbox.cut(self.turn_id)
        done = self.done_event
        if done is not None:  # the pipeline had finished: end the turn as interrupted here
            self.done_event = None
            pipeline = self.gate.pipeline
            heard = pipeline.heard_text(played) if pipeline is not None else done.reply.text
            self.gate.confirm(played_seconds=played)
            self.closed = True
            reply = done.reply.model_copy(update={"text": heard, "interrupted": True})
            self.final_reply = reply
            t = done.t + max(0.0, self.session.now - self.done_at)
            ended = TurnInterrupted(
                turn_id=done.turn_id, t=t, heard_text=heard, played_seconds=played, reply=reply
            )
            await outbox.put_turn(ended)
            await self._join()
            return
        turn = self.session.conversation._turn
        if not self.pump.done():
            if (
                turn is not None
                and self.turn_id is not None
                and turn.pipeline.turn_id == self.turn_id
            ):
                await self.session.conversation.interrupt(played_seconds=played)
            else:  # the turn has not started yet (waiting for the conversation): nothing to hear
                await cancel_and_wait(self.pump)
        if not self.released:
            self.gate.discard()
            self.closed = True
            await cancel_and_wait(self.pump, self.forward)
            return
        await self._join()
        self.gate.confirm()

    async def discard(self) -> None:
        """Drop the reply without a trace in the history (speculation that turned out wrong, or
        the user went on speaking before any of it was heard)."""
        self.gate.discard()
        await self.cut(0.0)

    async def close(self, played: float | None) -> None:
        """The session is closing: stop everything; the history keeps what was heard."""
        self._cutting = True
        if self.turn_id is not None:
            self.session.outbox.cut(self.turn_id)
        if not self.released:
            self.gate.discard()
        elif self.done_event is not None:
            self.gate.confirm(played_seconds=played)
        turn = self.session.conversation._turn
        if not self.pump.done() and turn is not None and turn.pipeline.turn_id == self.turn_id:
            with contextlib.suppress(Exception):
                await self.session.conversation.interrupt(played_seconds=played)
        await cancel_and_wait(self.pump, self.forward)
        self.gate.confirm()

    async def _join(self) -> None:
        """Wait for the pipeline and the forwarding to end (the closing event is queued)."""
        await asyncio.wait({self.pump})
        await asyncio.wait({self.forward})

    # -- what was said ----------------------------------------------------------------------------
    def all_sentences(self) -> list[str]:
        """Every sentence the LLM produced (spoken or not yet)."""
        if self.final_reply is not None and self.final_reply.sentences:
            return list(self.final_reply.sentences)
        return [self.sentences[i] for i in sorted(self.sentences)]

    def cut_index(self, played: float) -> int:
        """The index of the sentence playing at ``played`` seconds (the first not fully heard)."""
        for index in sorted(self.spans):
            if self.spans[index][1] > played + 1e-6:
                return index
        return max(self.spans, default=-1) + 1


def amend_commit(session: LiveSession, prefix: str) -> Callable[..., None]:
    """The commit of a resumed reply: the history's last reply becomes ``prefix`` + what the
    resumed reply said (or the heard part of it)."""

    def commit(pipeline: object, text: str, interrupted: bool) -> None:
        merged = " ".join(p for p in (prefix, text) if p)
        session.conversation._amend_reply(merged, interrupted)

    return commit
