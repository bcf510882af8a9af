"""The "Live" tab's conversation: :class:`LiveView`.

The browser's microphone streams continuously (Gradio's ``gr.Audio(streaming=True)`` sends a
chunk every ``stream_every`` seconds); :meth:`LiveView.push` queues each chunk for a
:class:`~lexperience.live.LiveSession` that runs in one task per tab (:meth:`LiveView.start`).
The session detects speech, ends turns, answers, and lets the user interrupt the reply by
speaking (barge-in). Every event updates the view: the chat log (the user's words, the reply as
it is written, an interrupted reply cut to what was heard), a status log (speech started /
ended, interim transcripts, interruptions, false interruptions) and the player, which gets a
new :class:`~lexperience.ui.stream.ReplyStream` per reply and is told to stop (``{"url":
None}``) the moment a reply is interrupted. :meth:`updates` yields after each change, for the
Gradio handler that sends them.

What the listener heard: the page's player reports the position it played a few times a second
(``POST /lexperience/played/<key>``, :meth:`LiveView.report`) to the session's
:class:`~lexperience.live.PlaybackClock`, which goes on from the latest report in real time.
Until the first report of a reply, the clock assumes real-time playback from its first audio.

The view ends with its tab (:meth:`close`), when the user presses Stop (:meth:`stop`: cut at
once) or stops the microphone (:meth:`end_input`: the last turn is answered first); no task
is left running after either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import numpy as np

from .._aio import cancel_and_wait
from ..conversation import Conversation
from ..errors import LexperienceError
from ..events import (
    AudioEvent,
    ErrorEvent,
    Event,
    FalseInterruption,
    InterimTranscript,
    SpeechEnded,
    SpeechStarted,
    TextDelta,
    TranscriptEvent,
    TurnDone,
    TurnInterrupted,
    TurnStarted,
    VideoEvent,
)
from ..live import LiveOptions, LiveSession
from ..live.vad import VAD
from ..media import AudioChunk
from .stream import ReplyStream
from .turns import ChatEntry, media_path

__all__ = ["LiveView", "mic_chunk"]

log = logging.getLogger(__name__)

_LOG_LINES = 12  # status lines shown
_COALESCE = 0.04  # seconds an update waits for more changes to send them together


def mic_chunk(value: Any) -> AudioChunk | None:
    """A Gradio microphone chunk (``(rate, samples)``, int16 or float, mono or not) as an
    :class:`AudioChunk` of mono float samples; ``None`` for an empty one."""
    if value is None:
        return None
    if isinstance(value, AudioChunk):
        return value
    rate, data = value
    samples = np.asarray(data)
    if samples.size == 0:
        return None
    if np.issubdtype(samples.dtype, np.integer):
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        samples = samples.astype(np.float32) / scale
    if samples.ndim == 2:  # (samples, channels)
        samples = samples.mean(axis=1)
    return AudioChunk(np.clip(samples.astype(np.float32), -1.0, 1.0), int(rate))


class _Turn:
    """One reply of the session as the view shows it."""

    def __init__(
        self, turn_id: int, stream: ReplyStream, user: ChatEntry | None, answer: ChatEntry
    ) -> None:
        self.turn_id = turn_id
        self.stream = stream
        self.user = user
        self.answer = answer


class LiveView:
    """A live conversation with its chat log, status and reply media (see the module docs).

    Args:
        conversation: the conversation (per browser session; the backends may be shared).
        options: the live session's knobs.
        vad: the voice activity detector (default: a Silero VAD per session).
        key: a secret prefix of this view's media URLs.
        on_stream: called with each new :class:`ReplyStream` (the app registers it for the
            media route).
    """

    def __init__(
        self,
        conversation: Conversation,
        *,
        options: LiveOptions | None = None,
        vad: VAD | None = None,
        key: str | None = None,
        on_stream: Callable[[ReplyStream], None] | None = None,
    ) -> None:
        self.conversation = conversation
        self.options = options or LiveOptions()
        self.vad = vad
        self.key = key or secrets.token_urlsafe(16)
        self.on_stream = on_stream
        self.chat: list[ChatEntry] = []
        self.lines: deque[str] = deque(maxlen=_LOG_LINES)
        self.state = "off"
        self.player: dict[str, Any] = {"url": None}
        self.error: str | None = None
        #: every event but the media ones, in order (tests and the status read them)
        self.events: deque[Event] = deque(maxlen=2000)
        self._turns: dict[int, _Turn] = {}
        self._turn_of: dict[str, int] = {}  # stream key -> turn id (the player's reports)
        self._session: LiveSession | None = None
        self.reports = 0  # played positions the page reported
        self._streams = 0
        self._mic: asyncio.Queue[AudioChunk | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._version = 0
        self._interim: ChatEntry | None = None
        self._resuming = False
        self.mic_seconds = 0.0  # microphone audio received
        self._stopped = False  # Stop was pressed: chunks are ignored until the next start()

    # -- what the browser shows -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the live session is under way (listening or finishing its last reply)."""
        return self._task is not None and not self._task.done()

    @property
    def listening(self) -> bool:
        return self.running and self._mic is not None

    def messages(self) -> list[dict[str, Any]]:
        entries = [*self.chat, self._interim] if self._interim is not None else self.chat
        return [entry.to_gradio() for entry in entries]

    def status(self) -> str:
        """The status panel (Markdown): the state, then the latest session events."""
        head = f"**{self.state}**"
        if self.error:
            head += f" · error: {self.error}"
        return "\n".join([head, "", *(f"- {line}" for line in self.lines)])

    def _say(self, line: str) -> None:
        self.lines.append(line)

    # -- the microphone -------------------------------------------------------------------------
    def start(self) -> None:
        """Start listening (a no-op while listening); a session still finishing its last reply
        after :meth:`end_input` is stopped first."""
        self._stopped = False
        self._listen()

    def _listen(self) -> None:
        if self.listening:
            return
        old = self._task
        self._mic = asyncio.Queue()
        self.error = None
        self.state = "listening"
        self._say("microphone on: listening")
        self._task = asyncio.ensure_future(self._run(self._mic, old))
        self._wake()

    def push(self, value: Any) -> None:
        """A microphone chunk from the browser (starts listening if needed)."""
        chunk = mic_chunk(value)
        if chunk is None or self._stopped:
            return
        self._listen()
        self.mic_seconds += chunk.duration
        assert self._mic is not None
        self._mic.put_nowait(chunk)

    def end_input(self) -> None:
        """The microphone stopped: what was said is answered, then the session ends."""
        if self._mic is not None:
            self._mic.put_nowait(None)
            self._mic = None
            self._say("microphone off")
            self._wake()

    async def stop(self) -> None:
        """Stop now: the reply is cut (the history keeps what was heard), nothing keeps running;
        microphone chunks are ignored until the next :meth:`start`."""
        self._stopped = True
        self._mic = None
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
            self._say("stopped")
        self.state = "off"
        self._wake()

    async def close(self) -> None:
        """The tab closed."""
        await self.stop()

    async def clear(self) -> None:
        """Stop and start afresh: no history, no chat log."""
        await self.stop()
        self.conversation.clear_history()
        self.chat.clear()
        self.lines.clear()
        self.player = {"url": None}

    @staticmethod
    async def _chunks(queue: asyncio.Queue[AudioChunk | None]) -> AsyncIterator[AudioChunk]:
        while True:
            chunk = await queue.get()
            if chunk is None:
                return
            yield chunk

    async def _run(
        self, queue: asyncio.Queue[AudioChunk | None], previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await cancel_and_wait(previous)
        session = self._session = LiveSession(self.conversation, self.options, vad=self.vad)
        try:
            async with contextlib.aclosing(session.run(self._chunks(queue))) as events:
                async for event in events:
                    await self._on_event(event)
                    self._wake()
        except LexperienceError as exc:
            self.error = str(exc)
            log.warning("the live session failed: %s", exc)
        finally:
            for turn in self._turns.values():
                if not turn.stream.ended:  # the session was stopped mid-reply
                    await turn.stream.abort()
                    turn.answer.note = turn.answer.note or "stopped"
                    self.player = {"url": None}
            self._interim = None
            if self._mic is queue:
                self._mic = None
            self.state = "off"
            self._wake()

    def report(self, stream_key: str, seconds: float) -> None:
        """The page's player has played ``seconds`` of the reply streamed as ``stream_key``."""
        session, turn_id = self._session, self._turn_of.get(stream_key)
        if session is None or turn_id is None or not self.running:
            return
        self.reports += 1
        session.clock.report(turn_id, seconds, session.now)

    # -- events -----------------------------------------------------------------------------------
    async def _on_event(self, event: Event) -> None:
        if isinstance(event, (AudioEvent, VideoEvent)):
            turn = self._turns.get(event.turn_id)
            if turn is not None:
                await turn.stream.feed(event)
            return
        self.events.append(event)
        if isinstance(event, SpeechStarted):
            self.state = "you are speaking"
            over = " over the reply" if event.while_replying else ""
            self._say(f"{event.at:.2f} s: speech started{over}")
        elif isinstance(event, SpeechEnded):
            self.state = "listening"
            self._say(f"{event.at:.2f} s: speech ended ({event.duration:.1f} s)")
        elif isinstance(event, InterimTranscript):
            self._interim = ChatEntry("user", event.text, "…")
            self._say(f"{event.until:.2f} s: heard so far: “{event.text}”")
        elif isinstance(event, TurnStarted):
            self._begin(event.turn_id)
        elif isinstance(event, TranscriptEvent):
            turn = self._turns.get(event.turn_id)
            if turn is not None and turn.user is not None:
                turn.user.content = event.transcript.text.strip()
                turn.user.note = None
        elif isinstance(event, TextDelta):
            turn = self._turns.get(event.turn_id)
            if turn is not None:
                turn.answer.content += event.text
        elif isinstance(event, TurnDone):
            await self._end(event.turn_id, event.reply.text, None)
            self._say(f"reply {event.turn_id} heard to the end")
        elif isinstance(event, TurnInterrupted):
            note = f"interrupted after {event.played_seconds:.1f} s"
            await self._end(event.turn_id, event.heard_text, note, cut=True)
            self._say(f"reply {event.turn_id} {note}")
        elif isinstance(event, FalseInterruption):
            what = "resumed" if event.resumed else "ended there"
            self._resuming = event.resumed
            heard = f" (“{event.transcript}”)" if event.transcript else ""
            self._say(f"false interruption{heard}: reply {event.interrupted_turn_id} {what}")
        elif isinstance(event, ErrorEvent):
            self.error = str(event.error)
            self._say(f"error: {event.error}")
            turn = self._turns.get(event.turn_id)
            if turn is not None:
                await turn.stream.abort()
                turn.answer.note = f"cut short: {event.error}"

    def _begin(self, turn_id: int) -> None:
        conv = self.conversation
        fps = float(conv.backends.avatar.fps) if conv.backends.avatar is not None else None
        self._streams += 1
        stream = ReplyStream(f"{self.key}-{self._streams}", fps=fps)
        if self.on_stream is not None:
            self.on_stream(stream)
        answer = ChatEntry("assistant", "")
        user: ChatEntry | None = None
        if self._resuming:  # the rest of a reply after a false interruption: no new question
            self._resuming = False
            answer.note = "resumed"
            self.chat.append(answer)
        else:
            user = self._interim or ChatEntry("user", "", "listening…")
            user.note = None if user.content else user.note
            self.chat += [user, answer]
        self._interim = None
        self._turns = {k: t for k, t in self._turns.items() if not t.stream.ended}
        self._turns[turn_id] = _Turn(turn_id, stream, user, answer)
        self._turn_of = {stream.key: turn_id}  # only the reply playing now reports
        self.player = {
            "url": media_path(stream.key), "turn": self._streams, "fps": fps,
            "report": f"lexperience/played/{self.key}",
        }  # fmt: skip
        self.state = "the host replies"

    async def _end(self, turn_id: int, text: str, note: str | None, *, cut: bool = False) -> None:
        turn = self._turns.get(turn_id)
        if turn is None:
            return
        if cut:
            await turn.stream.abort()
            self.player = {"url": None}  # the browser stops playing at once
        else:
            await turn.stream.finish()
        turn.answer.content = text
        turn.answer.note = note or turn.answer.note
        if self.state == "the host replies":
            self.state = "listening" if self.listening else "off"

    # -- sending changes ----------------------------------------------------------------------------
    def _wake(self) -> None:
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def updates(self) -> AsyncGenerator[None, None]:
        """Yield now, then after every change, until the session ends."""
        seen = self._version
        yield
        while self.running:
            if self._version == seen:
                await self._changed.wait()
                await asyncio.sleep(_COALESCE)
            seen = self._version
            yield
        if self._version != seen:
            yield
