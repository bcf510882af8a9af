"""The :class:`Conversation`: a persona, its backends, a history, and turns streamed stage into stage."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ._aio import Channel, CrossLoopLock
from ._optional import is_installed
from ._portal import Portal
from .assembly import build_backend, resolve_backends
from .context import ContextProvider, StaticContext
from .errors import (
    ConfigurationError,
    ConversationBusyError,
    InvalidInputError,
    LexperienceError,
    TurnCancelledError,
)
from .events import Event, TurnDone, TurnInterrupted
from .heard import SpokenReply
from .hooks import Hooks
from .media import Audio, AudioChunk
from .messages import Message
from .options import TurnOptions
from .output.watermark import Watermark
from .persona import DEFAULT_PERSONA, Persona
from .pipeline import ReplySink, TurnPipeline
from .protocols import LLM, STT, TTS, Avatar
from .reply import Reply
from .turn import KnownTranscript, Turn, TurnPlan
from .user_input import UserInput, to_input

if TYPE_CHECKING:
    from .live import DuplexChunk, LiveOptions

__all__ = ["Conversation", "UserInput", "build_backend"]

log = logging.getLogger(__name__)

OnBusy = Literal["wait", "interrupt", "error"]


class Conversation:
    """A talking persona: ask with audio or text, get speech and video back, streamed.

    Args:
        stt: speech-to-text backend, or its registry name (``None``: text input only).
        llm: the chat model, or its registry name.
        tts: text-to-speech backend, or its registry name.
        avatar: video backend, or its registry name (``None``: audio only).
        persona: who the avatar is (default: the fictional host :data:`DEFAULT_PERSONA`).
        hooks: async callbacks run on each event, see :class:`Hooks`.
        context: context providers consulted each turn (the persona's ``knowledge`` is added
            automatically).
        history_limit: the most messages kept in the history (oldest dropped first).
        watermark: ``True`` (default) stamps a visible "AI-generated" mark on every frame;
            a :class:`Watermark` customises it; ``False`` turns it off explicitly.
        options: pipeline limits, see :class:`TurnOptions`.
        on_busy: what a new turn does while one runs: ``"wait"`` for it (default),
            ``"interrupt"`` it (barge-in), or raise ``ConversationBusyError`` (``"error"``).

    Use ``await conv.areply(x)`` in async code, ``conv.reply(x)`` in scripts and notebooks, and
    ``async for event in conv.stream(x)`` to handle everything as it happens.
    """

    def __init__(
        self,
        *,
        stt: STT | str | None = None,
        llm: LLM | str,
        tts: TTS | str,
        avatar: Avatar | str | None = None,
        persona: Persona | None = None,
        hooks: Hooks | None = None,
        context: Sequence[ContextProvider] = (),
        history_limit: int = 20,
        watermark: bool | Watermark = True,
        options: TurnOptions | None = None,
        on_busy: OnBusy = "wait",
    ) -> None:
        self.persona = persona or DEFAULT_PERSONA
        self.backends = resolve_backends(self.persona, stt=stt, llm=llm, tts=tts, avatar=avatar)
        self.hooks = hooks or Hooks()
        providers = list(context)
        if self.persona.knowledge:
            providers.insert(0, StaticContext(self.persona.knowledge, heading="Background:"))
        self.context: list[ContextProvider] = providers
        if history_limit < 0:
            raise ConfigurationError("history_limit must be >= 0")
        self.history_limit = history_limit
        if watermark is True:
            self.watermark: Watermark | None = Watermark()
        elif watermark is False:
            self.watermark = None
        elif isinstance(watermark, Watermark):
            self.watermark = watermark
        else:
            raise ConfigurationError("watermark must be True, False or a Watermark")
        self.options = options or TurnOptions()
        if on_busy not in ("wait", "interrupt", "error"):
            raise ConfigurationError("on_busy must be 'wait', 'interrupt' or 'error'")
        self.on_busy: OnBusy = on_busy
        self._history: list[Message] = []
        self._spoken: SpokenReply | None = None  # the newest finished reply, for a late stop
        self._turn_count = 0
        self._turn: Turn | None = None
        self._slot = CrossLoopLock()  # one turn at a time, whatever loop or thread asks
        self._open_lock = CrossLoopLock()
        self._opened = False
        self._portal: Portal | None = None

    @classmethod
    def local(cls, *, avatar: bool = True, **kwargs: Any) -> Conversation:
        """The offline stack: faster-whisper, llama.cpp, Piper and the portrait avatar.

        Needs ``pip install "lexperience[local]"``; no API key, no network.
        """
        return cls(
            stt="faster-whisper",
            llm="llama-cpp",
            tts="piper",
            avatar="portrait" if avatar else None,
            **kwargs,
        )

    # -- state --------------------------------------------------------------------------------
    @property
    def history(self) -> list[Message]:
        """A copy of the messages exchanged so far (user and assistant, oldest first)."""
        return list(self._history)

    def clear_history(self) -> None:
        self._history.clear()
        self._spoken = None

    def load_history(self, messages: Sequence[Message]) -> None:
        """Replace the history with ``messages`` (user and assistant only, starting with a user
        message), e.g. to carry a conversation over to another process; the newest
        ``history_limit`` are kept."""
        if self.busy:
            raise ConversationBusyError("the history cannot be replaced while a turn runs")
        items = list(messages)
        for message in items:
            if not isinstance(message, Message) or message.role == "system":
                raise InvalidInputError("a history holds user and assistant messages only")
        if items and items[0].role != "user":
            raise InvalidInputError("a history starts with a user message")
        self._history = items
        self._spoken = None
        excess = len(self._history) - self.history_limit
        if excess > 0:
            del self._history[:excess]
            while self._history and self._history[0].role != "user":
                del self._history[0]

    @property
    def busy(self) -> bool:
        """Whether a turn is running."""
        return self._turn is not None

    def _amend_reply(self, text: str, interrupted: bool) -> None:
        """Replace the newest reply in the history (live mode resuming a reply cut short by a
        false interruption: what was heard before the cut, then the rest)."""
        if self._history and self._history[-1].role == "assistant" and text:
            self._history[-1] = Message.assistant(text, interrupted=interrupted)

    def _commit(self, pipeline: TurnPipeline, assistant_text: str, interrupted: bool) -> None:
        if not pipeline.user_text:
            return  # the turn never got a question: nothing to remember
        self._history.append(Message.user(pipeline.user_text))
        self._spoken = None
        if assistant_text:
            self._history.append(Message.assistant(assistant_text, interrupted=interrupted))
            if not interrupted:
                self._spoken = SpokenReply.of(
                    assistant_text, pipeline.spans, pipeline.audio_seconds
                )
        excess = len(self._history) - self.history_limit
        if excess > 0:
            del self._history[:excess]
            while self._history and self._history[0].role != "user":
                del self._history[0]  # never start the history with an orphan reply

    # -- lifecycle ----------------------------------------------------------------------------
    async def aopen(self) -> None:
        """Load the backends' models (calls each backend's optional ``aopen()``) once."""
        if self._opened:
            return
        async with self._open_lock:
            if not self._opened:
                await self._open_backends()

    async def _open_backends(self) -> None:
        for obj in (self.backends.stt, self.backends.llm, self.backends.tts, self.backends.avatar):
            opener = getattr(obj, "aopen", None)
            if opener is not None:
                await opener()
        primer = getattr(self.backends.llm, "aprime", None)
        if primer is not None:
            # an in-process LLM can evaluate the unchanging system prompt now, not in turn 1
            await primer(self.persona.prompt_messages())
        self._opened = True

    async def aclose(self) -> None:
        """Interrupt any running turn and release the backends (their optional ``aclose()``)."""
        await self.interrupt()
        for obj in (self.backends.stt, self.backends.llm, self.backends.tts, self.backends.avatar):
            closer = getattr(obj, "aclose", None)
            if closer is not None:
                await closer()
        self._opened = False

    async def __aenter__(self) -> Conversation:
        await self.aopen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def close(self) -> None:
        """Synchronous :meth:`aclose` (for scripts and notebooks)."""
        if self._portal is not None:
            self._portal.call(self.aclose())
            self._portal.close()
            self._portal = None

    def __enter__(self) -> Conversation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- turns --------------------------------------------------------------------------------
    async def _acquire_turn(self) -> None:
        """Take the conversation's turn slot (one turn at a time across loops and threads),
        applying ``on_busy``."""
        turn = self._turn
        if turn is not None and turn.consumer is asyncio.current_task():
            raise ConversationBusyError(
                "a new turn cannot start from inside a hook of the running turn"
            )
        if self.on_busy == "error":
            if not self._slot.try_acquire():
                raise ConversationBusyError("a turn is already running in this conversation")
            return
        if self.on_busy == "interrupt" and self._slot.locked():
            await self.interrupt()  # barge-in: the running turn keeps what was heard
        await self._slot.acquire()

    def _sink(self, options: TurnOptions) -> ReplySink | None:
        """The encoder of the reply video, when asked for and possible."""
        if not options.encode_video or self.backends.avatar is None:
            return None
        from .output.recorder import VideoRecorder

        return VideoRecorder(
            fps=float(self.backends.avatar.fps), ai_generated_tag=options.ai_generated_tag
        )

    def _turn_options(self, keep_frames: bool | None, encode_video: bool | None) -> TurnOptions:
        update: dict[str, Any] = {}
        if keep_frames is not None:
            update["keep_frames"] = keep_frames
        if encode_video is not None:
            update["encode_video"] = encode_video
        options = self.options.model_copy(update=update) if update else self.options
        if options.encode_video and self.backends.avatar is not None and not is_installed("av"):
            # no encoder here (the ``media`` extra is missing): keep the raw frames instead
            log.debug("PyAV is not installed: keeping raw frames instead of encoding the video")
            options = options.model_copy(update={"encode_video": False, "keep_frames": True})
        return options

    async def stream(
        self,
        user_input: UserInput,
        *,
        keep_frames: bool | None = None,
        encode_video: bool | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Run one turn and yield its events as they happen (see :mod:`lexperience.events`).

        The last event is :class:`TurnDone`, :class:`TurnInterrupted` or :class:`ErrorEvent`; after
        an ``ErrorEvent`` the error is raised. Hooks run before each event is yielded.
        ``keep_frames`` keeps the raw video frames in the final ``Reply``; ``encode_video``
        encodes the reply video into ``Reply.video`` as it streams (both default to
        :attr:`options`). Close the iterator early (``break`` inside ``contextlib.aclosing``) to
        abandon the turn: that counts as an interruption at the audio delivered so far.

        One conversation runs one turn at a time, whichever loop or thread asks (``reply()``,
        ``areply()`` and ``stream()`` mixed); ``on_busy`` says what a second one does.
        """
        inner = self._stream(user_input, keep_frames, encode_video, None)
        try:
            async for event in inner:
                yield event
        finally:
            await inner.aclose()

    async def _stream(
        self,
        user_input: UserInput,
        keep_frames: bool | None,
        encode_video: bool | None,
        plan: TurnPlan | None,
    ) -> AsyncGenerator[Event, None]:
        """:meth:`stream`, optionally changed by a :class:`~lexperience.turn.TurnPlan` (live mode:
        a transcript made beforehand, a stand-in LLM, a gated commit, its own hooks)."""
        await self._acquire_turn()
        try:
            await self.aopen()
            self._turn_count += 1
            options = self._turn_options(keep_frames, encode_video)
            events: Channel[Event] = Channel(options.event_queue)
            backends = self.backends
            commit: Callable[[TurnPipeline, str, bool], None] = self._commit
            hooks = self.hooks
            if plan is not None:
                if plan.transcript is not None:
                    backends = dataclasses.replace(backends, stt=KnownTranscript(plan.transcript))
                if plan.llm is not None:
                    backends = dataclasses.replace(backends, llm=plan.llm)
                commit = plan.commit or commit
                if plan.gate is not None:
                    commit = plan.gate.wrap(commit)
                hooks = plan.hooks or hooks
            pipeline = TurnPipeline(
                turn_id=self._turn_count,
                backends=backends,
                persona=self.persona,
                history=self._history,
                providers=self.context,
                options=options,
                emit=events.send,
                frame_filter=self.watermark,
                sink=self._sink(options),
            )
            if plan is not None and plan.started_at is not None:
                pipeline.metrics.t0 = plan.started_at  # latencies from the end of the speech
            turn = Turn(pipeline, events, hooks, commit)
            self._turn = turn

            async def prepare(p: TurnPipeline) -> Audio | str:
                return await to_input(user_input, self.options, p.restart_clock)

            runner = turn.run(prepare)
            try:
                async for event in runner:
                    yield event
            finally:
                await runner.aclose()
        finally:
            self._turn = None
            self._slot.release()

    def live(
        self,
        audio_in: AsyncIterable[AudioChunk | DuplexChunk],
        *,
        options: LiveOptions | None = None,
        played: Callable[[int], float] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Talk continuously: listen to a microphone stream and answer each time the user stops.

        ``audio_in`` yields microphone :class:`AudioChunk` s (any rate) or
        :class:`~lexperience.live.DuplexChunk` s (a microphone chunk with the loudspeaker signal
        played meanwhile, so the host's own voice cannot interrupt it). Yields the events of
        every turn, as :meth:`stream` does, plus ``SpeechStarted``, ``SpeechEnded``,
        ``InterimTranscript`` and ``FalseInterruption``. The user talking over the reply
        interrupts it (barge-in). ``played(turn_id)`` tells how many seconds of that turn's
        reply the listener has heard (default: real-time playback from its first audio).
        See :class:`~lexperience.live.LiveSession` and :class:`~lexperience.live.LiveOptions`.
        """
        from .live import LiveSession

        return LiveSession(self, options, played=played).run(audio_in)

    async def interrupt(self, *, played_seconds: float | None = None) -> None:
        """Cancel the running turn now, or stop the newest reply's playback after its turn ended.

        ``played_seconds`` is how much of the reply audio the listener actually heard (a player
        knows; default: everything the stream delivered). The history keeps the user's question
        and only that part of the reply, marked ``interrupted``. Returns once every stage has
        stopped. Works from any task, event loop or thread (a Stop button's handler), and from a
        hook of the turn itself.

        When no turn runs, a player that stops the reply it is still playing passes
        ``played_seconds``: the history's newest reply is cut to what was heard (once; a second
        call, a call without ``played_seconds`` or one after a newer turn changes nothing).
        """
        turn = self._turn
        if turn is None or turn.committed:
            spoken = self._spoken
            if played_seconds is not None and spoken is not None:
                trimmed = spoken.trimmed(self._history, played_seconds)
                if trimmed is not None:
                    self._history, self._spoken = trimmed, None
            return
        turn.request_interrupt(played_seconds)
        if turn.loop is not asyncio.get_running_loop():
            await turn.interrupt_from_any_loop()
            return
        if turn.consumer is asyncio.current_task():
            # called from a hook: the turn's event loop stops at its next step
            if turn.task is not None:
                turn.task.cancel()
            return
        await turn.finish_interrupted()  # the consumer wakes: the pipeline task is done

    async def areply(self, user_input: UserInput, *, keep_frames: bool = False) -> Reply:
        """Run one turn to the end and return the :class:`Reply`.

        The reply video is encoded while it streams (``Reply.video``, an in-memory MP4), so a
        reply holds kilobytes of H.264 rather than hundreds of megabytes of frames; pass
        ``keep_frames=True`` for the raw frames too. Without the ``media`` extra (no encoder) the
        raw frames are kept instead.

        Raises:
            InvalidInputError: empty, silent, oversized or unreadable input.
            BackendError: a backend failed (``retryable`` tells whether to try again).
            HookError: one of your hooks raised.
            TurnCancelledError: :meth:`interrupt` stopped the turn; ``.reply`` holds what was
                heard.
        """
        events = self.stream(user_input, keep_frames=keep_frames, encode_video=True)
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, TurnDone):
                    return event.reply
                if isinstance(event, TurnInterrupted):
                    raise TurnCancelledError(event.heard_text, reply=event.reply)
        raise LexperienceError("the turn ended without a result")  # pragma: no cover

    def reply(self, user_input: UserInput, *, keep_frames: bool = False) -> Reply:
        """Blocking :meth:`areply` for scripts and notebooks (works inside a running event loop:
        the turn runs on the conversation's own background loop)."""
        if self._portal is None:
            self._portal = Portal()
        if self._portal.in_portal_thread():
            raise ConversationBusyError("reply() was called from inside the conversation's loop")
        return self._portal.call(self.areply(user_input, keep_frames=keep_frames))
