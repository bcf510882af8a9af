"""One conversation as a tab shows it: :class:`ConversationView`.

It owns a :class:`~lexperience.Conversation` (built on the process's shared backends), the chat
log the browser shows, and the media of the reply being played. :meth:`ConversationView.ask`
runs a turn: every event of ``conversation.stream()`` updates the chat and goes to the
:class:`~lexperience.ui.stream.ReplyStream` the browser's player follows, and the method yields
after each visible change so the Gradio handler can send it.

What the listener heard: the player reports the position it played (``played`` seconds of reply
audio). During the turn :meth:`stop` passes it to :meth:`Conversation.interrupt`; after the turn
(the reply was made faster than it plays, the usual case) it passes it too: the conversation cuts
its newest reply in the history to what was heard, and the chat log shows that cut. Either way
the next turn's LLM only remembers saying what the listener heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._aio import cancel_and_wait
from ..conversation import Conversation
from ..errors import LexperienceError
from ..events import (
    AudioEvent,
    ErrorEvent,
    PartialTranscript,
    SentenceEvent,
    TextDelta,
    TranscriptEvent,
    TurnDone,
    TurnInterrupted,
    VideoEvent,
)
from ..metrics import TurnMetrics
from .stream import ReplyStream

__all__ = ["ChatEntry", "ConversationView", "Question"]

log = logging.getLogger(__name__)

Question = str | Path
"""A typed question, or the path of a recorded or uploaded audio file."""

_TEXT_EVERY = 0.12  # seconds between chat updates while the reply text streams


@dataclass
class ChatEntry:
    """One message of the chat log (user or persona)."""

    role: str
    content: str
    note: str | None = None  # shown under the message: "stopped at 3.2 s", an error

    def to_gradio(self) -> dict[str, Any]:
        content = self.content or "…"
        if self.note:
            content = f"{content}\n\n*{self.note}*"
        return {"role": self.role, "content": content}


@dataclass
class _Reply:
    """The reply being (or last) played."""

    stream: ReplyStream
    turn: int
    audio_seconds: float = 0.0  # reply audio streamed so far
    done: bool = False  # the turn finished with TurnDone (the history holds all of it)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    text: str = ""  # the reply's text, once done
    trimmed: bool = False
    asked_at: float = field(default_factory=time.time)  # wall clock, comparable with a browser's


class ConversationView:
    """A conversation with its chat log and its reply media (see the module docs).

    Args:
        conversation: the conversation (per browser session; the backends may be shared).
        key: a secret prefix of this view's media URLs.
        on_stream: called with each new :class:`ReplyStream` (the app registers it for the
            media route).
    """

    def __init__(
        self,
        conversation: Conversation,
        *,
        key: str | None = None,
        on_stream: Callable[[ReplyStream], None] | None = None,
    ) -> None:
        self.conversation = conversation
        self.key = key or secrets.token_urlsafe(16)
        self.on_stream = on_stream
        self.chat: list[ChatEntry] = []
        self.metrics: TurnMetrics | None = None
        self.error: str | None = None
        self.reply: _Reply | None = None
        self._turns = 0
        self._running = False
        self._warming: asyncio.Task[None] | None = None
        self.last_stop: float | None = None  # the position the last Stop reported (tests read it)

    # -- what the browser shows -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a turn of this view is under way."""
        return self._running

    def messages(self) -> list[dict[str, Any]]:
        """The chat log in Gradio's ``messages`` format."""
        return [entry.to_gradio() for entry in self.chat]

    def player_state(self) -> dict[str, Any]:
        """What the browser's player needs: the reply's media URL and how to read positions."""
        reply = self.reply
        if reply is None:
            return {"url": None}
        return {
            "url": media_path(reply.stream.key),
            "turn": reply.turn,
            "fps": reply.stream.fps,
        }

    # -- turns ----------------------------------------------------------------------------------
    def warm(self) -> None:
        """Open the conversation in the background (a local LLM evaluates the persona's prompt
        now), so the first question does not wait for it."""
        if self._warming is None:
            self._warming = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        try:
            await self.conversation.aopen()
        except Exception as exc:  # the first turn opens it again and reports the error
            log.warning("opening the conversation failed: %s", exc)

    async def ask(
        self, question: Question, *, played: float | None = None
    ) -> AsyncGenerator[None, None]:
        """Run one turn; yields after every change the browser should see.

        ``played`` is where the player stood when the listener asked (they may have cut the
        previous reply short by asking).
        """
        await self.stop(played)
        self._turns += 1
        conv = self.conversation
        fps = float(conv.backends.avatar.fps) if conv.backends.avatar is not None else None
        stream = ReplyStream(f"{self.key}-{self._turns}", fps=fps)
        reply = _Reply(stream=stream, turn=self._turns)
        self.reply = reply
        if self.on_stream is not None:
            self.on_stream(stream)
        typed = isinstance(question, str)
        user = ChatEntry("user", question if isinstance(question, str) else "", None)
        if not typed:
            user.note = "listening…"
        answer = ChatEntry("assistant", "")
        self.chat += [user, answer]
        self.metrics = None
        self.error = None
        self._running = True
        yield
        last_text = 0.0
        events = conv.stream(question, encode_video=False)
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, (AudioEvent, VideoEvent)):
                        if isinstance(event, AudioEvent):
                            end = event.offset + event.chunk.duration
                            reply.audio_seconds = max(reply.audio_seconds, end)
                        await stream.feed(event)
                    elif isinstance(event, PartialTranscript):
                        user.content = event.text
                        yield
                    elif isinstance(event, TranscriptEvent):
                        user.content = event.transcript.text
                        user.note = None
                        yield
                    elif isinstance(event, TextDelta):
                        answer.content += event.text
                        if time.perf_counter() - last_text >= _TEXT_EVERY:
                            last_text = time.perf_counter()
                            yield
                    elif isinstance(event, SentenceEvent):
                        yield
                    elif isinstance(event, TurnDone):
                        await stream.finish()
                        reply.done = True
                        reply.text = event.reply.text
                        answer.content = event.reply.text
                        self.metrics = event.reply.metrics
                    elif isinstance(event, TurnInterrupted):
                        await stream.abort()
                        answer.content = event.heard_text
                        answer.note = f"stopped after {event.played_seconds:.1f} s"
                        self.metrics = event.reply.metrics
                    elif isinstance(event, ErrorEvent):
                        await stream.abort()
                        self._failed(user, answer, event.error)
        except LexperienceError as exc:  # raised after its ErrorEvent, or before the turn
            if self.error is None:
                self._failed(user, answer, exc)
        finally:
            self._running = False
            if not stream.ended:
                await stream.abort()
            reply.settled.set()
        yield

    def _failed(self, user: ChatEntry, answer: ChatEntry, error: LexperienceError) -> None:
        self.error = str(error)
        if not answer.content:
            self.chat.remove(answer)
            user.note = f"not answered: {error}"
        else:
            answer.note = f"cut short: {error}"
        if user.note == "listening…":
            user.note = f"not answered: {error}"

    # -- stopping -------------------------------------------------------------------------------
    async def stop(self, played: float | None) -> bool:
        """The listener stopped the reply after ``played`` seconds (``None``: the player had
        nothing to play). Returns whether the chat log changed here (after the turn)."""
        reply = self.reply
        if played is not None:
            self.last_stop = played
        if reply is None:
            return False
        if self._running:
            await self.conversation.interrupt(played_seconds=played)
            await reply.settled.wait()
        if not reply.done or reply.trimmed or played is None:
            return False
        reply.trimmed = True  # a second Stop changes nothing
        # the conversation cuts its newest reply to what was heard (it may already have, when the
        # turn ended just as the Stop above reached it)
        await self.conversation.interrupt(played_seconds=played)
        history = self.conversation.history
        last = history[-1] if history else None
        if last is None or (last.role == "assistant" and last.content == reply.text):
            return False  # heard to the end: nothing was cut
        heard = last.content if last.role == "assistant" and last.interrupted else ""
        for entry in reversed(self.chat):
            if entry.role == "assistant":
                entry.content = heard
                entry.note = f"stopped after {played:.1f} s"
                break
        return True

    async def clear(self) -> None:
        """Start afresh: stop the turn, forget the history and the chat log."""
        await self.close()
        self.conversation.clear_history()
        self.chat.clear()
        self.reply = None
        self.metrics = None
        self.error = None

    async def close(self) -> None:
        """Stop any running turn (the backends are shared: they stay open)."""
        if self._warming is not None and not self._warming.done():
            await cancel_and_wait(self._warming)
        if self._running:
            await self.conversation.interrupt()
        if self.reply is not None and not self.reply.stream.ended:
            await self.reply.stream.abort()


def media_path(key: str) -> str:
    """The (relative) URL of a reply stream."""
    return f"lexperience/media/{key}.mp4"
