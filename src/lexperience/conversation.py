"""The :class:`Conversation`: a persona, its backends, a history, and turns streamed stage into stage."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from types import TracebackType
from typing import Any, Literal, Union

import numpy as np

from . import registry
from ._portal import Portal
from .context import ContextProvider, StaticContext
from .errors import (
    ConfigurationError,
    ConversationBusyError,
    InvalidInputError,
    LexperienceError,
    TurnCancelledError,
)
from .events import AudioEvent, ErrorEvent, Event, TurnDone, TurnInterrupted
from .hooks import HOOK_FOR_EVENT, Hooks
from .media import Audio, AudioChunk
from .messages import Message
from .metrics import MetricsRecorder
from .options import TurnOptions
from .persona import DEFAULT_PERSONA, Persona
from .pipeline import Backends, TurnPipeline, backend_name
from .protocols import LLM, STT, TTS, Avatar
from .render.watermark import Watermark
from .reply import Reply

__all__ = ["Conversation", "UserInput", "build_backend"]

UserInput = Union[str, Audio, "os.PathLike[str]", bytes, bytearray, AsyncIterable[AudioChunk]]
"""What a turn accepts: typed text (``str``), an :class:`Audio` clip, an audio file path
(``pathlib.Path``), encoded audio file bytes, or a live stream of microphone
:class:`AudioChunk` s (an async iterable that ends when the user stops speaking)."""

OnBusy = Literal["wait", "interrupt", "error"]


def build_backend(
    kind: str, name: str, persona: Persona, options: dict[str, Any] | None = None
) -> Any:
    """Create backend ``name`` of ``kind`` through the registry, passing the persona's voice for
    that backend (``voice=``) and its portrait (``portrait=``) when the backend takes them and
    ``options`` does not set them already."""
    opts = dict(options or {})
    params = inspect.signature(registry.get_spec(kind, name).load()).parameters
    voice = persona.voice_for(name)
    if kind == "tts" and voice is not None and "voice" in params:
        opts.setdefault("voice", voice)
    if kind == "avatar" and persona.portrait is not None and "portrait" in params:
        opts.setdefault("portrait", persona.portrait)
    return registry.create(kind, name, **opts)


_PIPELINE_DONE: Any = object()  # put on a turn's queue when its pipeline task ends


class _Turn:
    """Book-keeping of the running turn: its task, event queue and what reached the consumer."""

    def __init__(self, pipeline: TurnPipeline, queue: asyncio.Queue[Event]) -> None:
        self.pipeline = pipeline
        self.queue = queue
        self.task: asyncio.Task[Reply] | None = None
        self.consumer: asyncio.Task[Any] | None = None
        self.delivered_seconds = 0.0
        self.interrupt_requested = False
        self.played_seconds: float | None = None
        self.committed = False
        self.final_reply: Reply | None = None


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
        names: dict[str, str] = {}

        def resolve(kind: str, value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, str):
                names[kind] = value
                return self._create(kind, value)
            names[kind] = backend_name(value)
            return value

        self.backends = Backends(
            stt=resolve("stt", stt),
            llm=resolve("llm", llm),
            tts=resolve("tts", tts),
            avatar=resolve("avatar", avatar),
            names=names,
        )
        self._check_protocols()
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
        self._turn_count = 0
        self._turn: _Turn | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._opened = False
        self._portal: Portal | None = None

    # -- construction helpers -----------------------------------------------------------------
    def _create(self, kind: str, value: str) -> Any:
        return build_backend(kind, value, self.persona)

    def _check_protocols(self) -> None:
        for stage, proto in (("stt", STT), ("llm", LLM), ("tts", TTS), ("avatar", Avatar)):
            obj = getattr(self.backends, stage)
            if obj is not None and not isinstance(obj, proto):
                raise ConfigurationError(
                    f"{stage}={type(obj).__name__} does not implement the {proto.__name__} "
                    "protocol (see lexperience.protocols)"
                )

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

    @property
    def busy(self) -> bool:
        """Whether a turn is running."""
        return self._turn is not None

    def _commit(self, pipeline: TurnPipeline, assistant_text: str, interrupted: bool) -> None:
        if not pipeline.user_text:
            return  # the turn never got a question: nothing to remember
        self._history.append(Message.user(pipeline.user_text))
        if assistant_text:
            self._history.append(Message.assistant(assistant_text, interrupted=interrupted))
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
        for obj in (self.backends.stt, self.backends.llm, self.backends.tts, self.backends.avatar):
            opener = getattr(obj, "aopen", None)
            if opener is not None:
                await opener()
        primer = getattr(self.backends.llm, "aprime", None)
        if primer is not None:
            # an in-process LLM can evaluate the unchanging system prompt now, not in turn 1
            await primer([Message.system(self.persona.system_message())])
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
    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _collect(self, chunks: AsyncIterable[AudioChunk]) -> Audio:
        """Gather a live microphone stream into one clip, refusing it as soon as it runs too long."""
        parts: list[Audio] = []
        seconds = 0.0
        limit = self.options.max_input_seconds
        async for chunk in chunks:
            if not isinstance(chunk, AudioChunk):
                raise InvalidInputError(
                    f"a live audio stream must yield AudioChunk, got {type(chunk).__name__}"
                )
            parts.append(chunk.to_audio())
            seconds += chunk.duration
            if seconds > limit:
                raise InvalidInputError(
                    f"the audio stream ran past {limit:.0f} s (TurnOptions.max_input_seconds)"
                )
        if not parts:
            raise InvalidInputError("the audio stream ended without any audio")
        return Audio.concatenate(parts)

    def _to_input(self, user_input: UserInput) -> Audio | str:
        if isinstance(user_input, (str, Audio)):
            return user_input
        if isinstance(user_input, (os.PathLike, bytes, bytearray)):
            # fail fast on an oversized file instead of decoding hours of audio first
            return Audio.load(user_input, max_seconds=self.options.max_input_seconds)
        if isinstance(user_input, np.ndarray):
            raise InvalidInputError(
                "a bare numpy array has no sample rate: wrap it as Audio.from_numpy(array, rate)"
            )
        raise InvalidInputError(
            f"cannot answer a {type(user_input).__name__}: pass text, Audio, a Path, bytes or an async stream of AudioChunk"
        )

    async def stream(
        self, user_input: UserInput, *, keep_frames: bool | None = None
    ) -> AsyncGenerator[Event, None]:
        """Run one turn and yield its events as they happen (see :mod:`lexperience.events`).

        The last event is :class:`TurnDone`, :class:`TurnInterrupted` or :class:`ErrorEvent`; after
        an ``ErrorEvent`` the error is raised. Hooks run before each event is yielded.
        Close the iterator early (``break`` inside ``contextlib.aclosing``) to abandon the
        turn: that counts as an interruption at the audio delivered so far.
        """
        lock = self._get_lock()
        if lock.locked():
            if self.on_busy == "error":
                raise ConversationBusyError("a turn is already running in this conversation")
            if self.on_busy == "interrupt":
                await self.interrupt()
        async with lock:
            await self.aopen()
            self._turn_count += 1
            options = self.options
            if keep_frames is not None and keep_frames != options.keep_frames:
                options = options.model_copy(update={"keep_frames": keep_frames})
            queue: asyncio.Queue[Event] = asyncio.Queue(options.event_queue)
            pipeline = TurnPipeline(
                turn_id=self._turn_count,
                backends=self.backends,
                persona=self.persona,
                history=self._history,
                providers=self.context,
                options=options,
                watermark=self.watermark,
                emit=queue.put,
            )
            turn = _Turn(pipeline, queue)
            self._turn = turn
            turn.consumer = asyncio.current_task()
            events = self._drive(turn, user_input)
            try:
                async for event in events:
                    yield event
            finally:
                await events.aclose()
                await self._settle(turn)
                self._turn = None

    async def _drive(self, turn: _Turn, user_input: UserInput) -> AsyncGenerator[Event, None]:
        pipeline = turn.pipeline

        async def run() -> Reply:
            if isinstance(user_input, AsyncIterable):
                clip = await self._collect(user_input)
                # the user stopped speaking now: every latency is measured from this moment
                pipeline.metrics = MetricsRecorder()
                return await pipeline.run(clip)
            return await pipeline.run(self._to_input(user_input))

        turn.task = asyncio.ensure_future(run())

        def wake(_: asyncio.Future[Reply]) -> None:
            # The pipeline ended (done, failed or cancelled): wake a consumer blocked on get().
            # If the queue is full the consumer is not blocked, and it checks task.done()
            # before its next get().
            with contextlib.suppress(asyncio.QueueFull):
                turn.queue.put_nowait(_PIPELINE_DONE)

        turn.task.add_done_callback(wake)
        while True:
            if turn.interrupt_requested:
                break
            if turn.queue.empty() and turn.task.done():
                break
            event = await turn.queue.get()
            if event is _PIPELINE_DONE or turn.interrupt_requested:
                continue
            hook = HOOK_FOR_EVENT.get(type(event))
            if hook is not None:
                await self.hooks.call(hook, event)
            if isinstance(event, AudioEvent):
                turn.delivered_seconds = event.offset + event.chunk.duration
            yield event

        if turn.interrupt_requested:
            await self._finish_interrupted(turn)
            reply = turn.final_reply
            assert reply is not None
            yield TurnInterrupted(
                turn_id=pipeline.turn_id,
                t=pipeline.metrics.now(),
                heard_text=reply.text,
                played_seconds=self._played(turn),
                reply=reply,
            )
            return
        error = turn.task.exception() if not turn.task.cancelled() else None
        if error is not None:
            err = (
                error
                if isinstance(error, LexperienceError)
                else LexperienceError(f"internal error: {type(error).__name__}: {error}")
            )
            if err is not error:
                err.__cause__ = error
            event = ErrorEvent(
                turn_id=pipeline.turn_id,
                t=pipeline.metrics.now(),
                error=err,
                stage=getattr(err, "stage", None),
            )
            turn.committed = True  # a failed turn leaves the history as it was
            await self.hooks.call("on_error", event)
            yield event
            raise err
        reply = turn.task.result()
        self._commit(pipeline, reply.text, interrupted=False)
        turn.committed = True
        turn.final_reply = reply
        await self.hooks.call("on_reply", reply)
        yield TurnDone(turn_id=pipeline.turn_id, t=pipeline.metrics.now(), reply=reply)

    def _played(self, turn: _Turn) -> float:
        if turn.played_seconds is not None:
            return min(turn.played_seconds, turn.pipeline.audio_seconds)
        return turn.delivered_seconds

    async def _finish_interrupted(self, turn: _Turn) -> None:
        """Stop the pipeline and record what was heard (idempotent)."""
        task = turn.task
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            await asyncio.wait({task})  # never raises the task's error; our own cancel propagates
        if turn.committed:
            return
        turn.committed = True
        failed = task is not None and task.done() and not task.cancelled() and task.exception()
        played = self._played(turn)
        reply = turn.pipeline.build_reply(interrupted=True, played_seconds=played)
        turn.final_reply = reply
        if not failed:
            self._commit(turn.pipeline, reply.text, interrupted=True)

    async def _settle(self, turn: _Turn) -> None:
        """On any exit of the event loop (done, error, hook failure, early close), leave nothing
        running and the history consistent."""
        if not turn.committed:
            turn.interrupt_requested = True
            await self._finish_interrupted(turn)
        elif turn.task is not None and not turn.task.done():
            turn.task.cancel()
            await asyncio.wait({turn.task})

    async def interrupt(self, *, played_seconds: float | None = None) -> None:
        """Cancel the running turn now; no-op when none runs.

        ``played_seconds`` is how much of the reply audio the listener actually heard (a player
        knows; default: everything the stream delivered). The history keeps the user's question
        and only that part of the reply, marked ``interrupted``. Returns once every stage has
        stopped.
        """
        turn = self._turn
        if turn is None or turn.committed:
            return
        turn.interrupt_requested = True
        if played_seconds is not None:
            turn.played_seconds = max(0.0, played_seconds)
        if turn.consumer is asyncio.current_task():
            # called from a hook: the event loop of this turn stops at its next step
            if turn.task is not None:
                turn.task.cancel()
            return
        await self._finish_interrupted(turn)  # the consumer wakes: the pipeline task is done

    async def areply(self, user_input: UserInput) -> Reply:
        """Run one turn to the end and return the :class:`Reply` (video frames included).

        Raises:
            InvalidInputError: empty, silent, oversized or unreadable input.
            BackendError: a backend failed (``retryable`` tells whether to try again).
            HookError: one of your hooks raised.
            TurnCancelledError: :meth:`interrupt` stopped the turn; ``.reply`` holds what was
                heard.
        """
        async with contextlib.aclosing(self.stream(user_input, keep_frames=True)) as events:
            async for event in events:
                if isinstance(event, TurnDone):
                    return event.reply
                if isinstance(event, TurnInterrupted):
                    raise TurnCancelledError(event.heard_text, reply=event.reply)
        raise LexperienceError("the turn ended without a result")  # pragma: no cover

    def reply(self, user_input: UserInput) -> Reply:
        """Blocking :meth:`areply` for scripts and notebooks (works inside a running event loop:
        the turn runs on the conversation's own background loop)."""
        if self._portal is None:
            self._portal = Portal()
        if self._portal.in_portal_thread():
            raise ConversationBusyError("reply() was called from inside the conversation's loop")
        return self._portal.call(self.areply(user_input))
