"""The streaming pipeline of one turn: STT -> LLM -> sentence splitter -> TTS -> avatar.

Stages are coroutines joined by bounded queues and run concurrently: the first sentence goes to
TTS while the LLM is still writing, and the avatar animates audio chunks as TTS yields them.
Each stage's awaits on a backend are guarded: a timeout becomes :class:`BackendTimeoutError`, any
foreign exception becomes :class:`BackendError` naming the stage and backend. If one stage fails,
the others are cancelled and awaited, so nothing keeps running.

This module is internal to :class:`~lexperience.Conversation`; its public face is the event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .context import ContextProvider, TurnContext, as_messages, fit_budget
from .errors import BackendError, BackendTimeoutError, InvalidInputError, LexperienceError
from .events import (
    AudioEvent,
    Event,
    SentenceEvent,
    TextDelta,
    TranscriptEvent,
    TurnStarted,
    VideoEvent,
)
from .media import Audio, AudioChunk, VideoFrame
from .messages import Message
from .metrics import MetricsRecorder
from .options import TurnOptions
from .persona import Persona
from .protocols import LLM, STT, TTS, Avatar
from .render.watermark import Watermark
from .reply import Reply
from .text import SentenceSplitter, clean_for_speech
from .transcript import Transcript

T = TypeVar("T")

_END = object()  # end-of-stream marker in the stage queues
_timeout = getattr(asyncio, "timeout", None)


@dataclass
class Backends:
    """The backends of a conversation and their display names (for error messages)."""

    stt: STT | None
    llm: LLM
    tts: TTS
    avatar: Avatar | None
    names: dict[str, str]


@dataclass
class SentenceSpan:
    """Where one spoken sentence lies in the reply audio."""

    index: int
    text: str
    start: float
    end: float
    complete: bool = False  # TTS finished the sentence (else ``end`` is only how far it got)


async def _wait_for_keeping_cancel(awaitable: Awaitable[T], timeout: float) -> T:
    """``asyncio.wait_for`` for Python 3.10 without its flaw: when the result and a cancellation
    of the caller arrive together, 3.10's ``wait_for`` returns the result and drops the
    cancellation (an interrupted turn could then hang). ``asyncio.wait`` never does."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise asyncio.TimeoutError
    return task.result()


def backend_name(obj: object) -> str:
    return str(getattr(obj, "name", None) or type(obj).__name__)


class TurnPipeline:
    """Runs one turn and records everything it produced (internal)."""

    def __init__(
        self,
        *,
        turn_id: int,
        backends: Backends,
        persona: Persona,
        history: Sequence[Message],
        providers: Sequence[ContextProvider],
        options: TurnOptions,
        watermark: Watermark | None,
        emit: Callable[[Event], Awaitable[None]],
    ) -> None:
        self.turn_id = turn_id
        self.b = backends
        self.persona = persona
        self.history = tuple(history)
        self.providers = tuple(providers)
        self.opts = options
        self.watermark = watermark
        self._emit = emit
        self.metrics = MetricsRecorder()
        self.transcript: Transcript | None = None
        self.user_text: str | None = None
        self.raw_text = ""
        self.sentences: list[str] = []
        self.spans: list[SentenceSpan] = []
        self.chunks: list[AudioChunk] = []
        self.frames: list[VideoFrame] = []
        self.audio_seconds = 0.0
        self.sample_rate: int | None = None
        self.fps: float | None = getattr(backends.avatar, "fps", None)

    # -- plumbing -----------------------------------------------------------------------------
    async def emit(self, event_type: type[Any], **fields: Any) -> None:
        await self._emit(event_type(turn_id=self.turn_id, t=self.metrics.now(), **fields))

    def _wrap(self, stage: str, exc: BaseException) -> LexperienceError:
        name = self.b.names.get(stage)
        if isinstance(exc, BackendError):
            exc.stage = exc.stage or stage
            exc.backend = exc.backend or name
            return exc
        if isinstance(exc, LexperienceError):
            return exc
        err = BackendError(f"{type(exc).__name__}: {exc}", backend=name, stage=stage)
        err.__cause__ = exc
        return err

    async def guard(self, stage: str, awaitable: Awaitable[T]) -> T:
        """Await a backend call with the stage timeout and typed error mapping."""
        timeout = self.opts.stage_timeout
        try:
            if timeout is None:
                return await awaitable
            if _timeout is not None:  # Python 3.11+: no extra task per awaited item
                async with _timeout(timeout):
                    return await awaitable
            return await _wait_for_keeping_cancel(awaitable, timeout)
        except asyncio.TimeoutError as exc:
            what = f"no result within {timeout:g} s" if timeout else f"timed out ({exc})"
            raise BackendTimeoutError(what, backend=self.b.names.get(stage), stage=stage) from exc
        except (asyncio.CancelledError, StopAsyncIteration):
            raise
        except Exception as exc:
            wrapped = self._wrap(stage, exc)
            if wrapped is exc:
                raise
            raise wrapped from exc

    async def iterate(
        self, stage: str, stream: AsyncIterator[T], *, busy: str | None = None, guard: bool = True
    ) -> AsyncGenerator[T, None]:
        """Iterate a backend stream under :meth:`guard`, timing the waits, closing it at the end."""
        it = stream.__aiter__()
        try:
            while True:
                started = time.perf_counter()
                try:
                    if guard:
                        item = await self.guard(stage, it.__anext__())
                    else:
                        item = await it.__anext__()
                except StopAsyncIteration:
                    return
                except (asyncio.CancelledError, LexperienceError):
                    raise
                except Exception as exc:
                    raise self._wrap(stage, exc) from exc
                finally:
                    if busy is not None:
                        self.metrics.busy[busy] += time.perf_counter() - started
                yield item
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # the stream is being abandoned; its own error is moot
                    pass

    # -- the turn -----------------------------------------------------------------------------
    async def run(self, user_input: Audio | str) -> Reply:
        await self.emit(TurnStarted, input="text" if isinstance(user_input, str) else "audio")
        if isinstance(user_input, str):
            self.user_text = self._check_text(user_input)
        else:
            self.transcript = await self._transcribe(user_input)
            self.user_text = self.transcript.text.strip()
        messages = await self._messages(self.user_text)
        sentence_q: asyncio.Queue[Any] = asyncio.Queue(self.opts.sentence_queue)
        audio_q: asyncio.Queue[Any] | None = (
            asyncio.Queue(self.opts.audio_queue) if self.b.avatar is not None else None
        )
        stages: list[Coroutine[Any, Any, None]] = [
            self._llm_stage(messages, sentence_q),
            self._tts_stage(sentence_q, audio_q),
        ]
        if audio_q is not None:
            stages.append(self._avatar_stage(audio_q))
        await run_all(stages)
        return self.build_reply(interrupted=False)

    def _check_text(self, text: str) -> str:
        cleaned = text.replace("\x00", "").strip()
        if not cleaned:
            raise InvalidInputError("the question is empty")
        if len(cleaned) > self.opts.max_input_chars:
            raise InvalidInputError(
                f"the question is {len(cleaned)} characters long; the limit is "
                f"{self.opts.max_input_chars} (TurnOptions.max_input_chars)"
            )
        return cleaned

    async def _transcribe(self, audio: Audio) -> Transcript:
        if self.b.stt is None:
            raise InvalidInputError("this conversation has no STT backend: pass text, not audio")
        if len(audio) == 0:
            raise InvalidInputError("the audio is empty (0 samples)")
        if audio.duration > self.opts.max_input_seconds:
            raise InvalidInputError(
                f"the audio is {audio.duration:.0f} s long; the limit is "
                f"{self.opts.max_input_seconds:.0f} s (TurnOptions.max_input_seconds)"
            )
        if audio.is_silent(self.opts.silence_threshold_dbfs):
            raise InvalidInputError(
                f"the audio is silence only (peak {audio.peak_dbfs():.0f} dBFS): no speech to "
                "transcribe"
            )
        self.metrics.input_audio_s = audio.duration
        started = time.perf_counter()
        transcript = await self.guard(
            "stt", self.b.stt.transcribe(audio, language=self.persona.language)
        )
        self.metrics.busy["stt"] = time.perf_counter() - started
        if not isinstance(transcript, Transcript):
            raise self._wrap("stt", TypeError(f"transcribe() returned {type(transcript)}"))
        self.metrics.mark_once("transcript")
        await self.emit(TranscriptEvent, transcript=transcript)
        if not transcript.text.strip():
            raise InvalidInputError("no speech was recognised in the audio")
        return transcript

    async def _messages(self, user_text: str) -> list[Message]:
        ctx = TurnContext(self.turn_id, user_text, self.history, self.persona)
        provided: list[Message] = []
        if self.providers:
            results = await asyncio.gather(
                *(self.guard("context", p.provide(ctx)) for p in self.providers)
            )
            for result in results:
                provided.extend(as_messages(result))
        provided = fit_budget(provided, self.opts.context_budget_tokens)
        return [
            Message.system(self.persona.system_message()),
            *provided,
            *self.history,
            Message.user(user_text),
        ]

    async def _llm_stage(self, messages: list[Message], out: asyncio.Queue[Any]) -> None:
        splitter = SentenceSplitter(first_clause_words=self.opts.first_clause_words)
        budget = self.persona.max_sentences
        stream = self.b.llm.stream(messages, max_tokens=self.opts.max_tokens)
        done = False
        async with contextlib.aclosing(self.iterate("llm", stream)) as deltas:
            async for delta in deltas:
                self.metrics.mark_once("first_token")
                self.metrics.counts["deltas"] += 1
                if not delta:
                    continue
                self.raw_text += delta
                await self.emit(TextDelta, text=delta)
                for sentence in splitter.push(delta):
                    await self._sentence(sentence, out)
                    if len(self.sentences) >= budget:
                        done = True
                        break
                if done:
                    break  # the reply-length budget is spent: stop the LLM (its stream is closed)
        if not done:
            for sentence in splitter.flush():
                if len(self.sentences) < budget:
                    await self._sentence(sentence, out)
        if not self.sentences:
            raise BackendError(
                "the LLM returned no speakable text", backend=self.b.names.get("llm"),
                stage="llm", retryable=True,
            )  # fmt: skip
        await out.put(_END)

    async def _sentence(self, sentence: str, out: asyncio.Queue[Any]) -> None:
        spoken = clean_for_speech(sentence)
        if not spoken:
            return
        index = len(self.sentences)
        self.sentences.append(spoken)
        self.metrics.counts["sentences"] += 1
        self.metrics.mark_once("first_sentence")
        await self.emit(SentenceEvent, index=index, text=spoken)
        await out.put((index, spoken))

    async def _tts_stage(
        self, sentences: asyncio.Queue[Any], audio_out: asyncio.Queue[Any] | None
    ) -> None:
        while True:
            item = await sentences.get()
            if item is _END:
                break
            index, text = item
            span = SentenceSpan(index, text, self.audio_seconds, self.audio_seconds)
            self.spans.append(span)
            tts_stream = self.iterate("tts", self.b.tts.stream(text), busy="tts")
            async with contextlib.aclosing(tts_stream) as chunks:
                async for chunk in chunks:
                    if not isinstance(chunk, AudioChunk):
                        raise self._wrap(
                            "tts", TypeError(f"stream() yielded {type(chunk).__name__}")
                        )
                    if chunk.samples.size == 0:
                        continue
                    if self.sample_rate is None:
                        self.sample_rate = chunk.sample_rate
                    elif chunk.sample_rate != self.sample_rate:
                        chunk = replace(
                            chunk,
                            samples=chunk.to_audio().resample(self.sample_rate).samples,
                            sample_rate=self.sample_rate,
                        )
                    chunk = replace(chunk, text=text, sentence_index=index)
                    offset = self.audio_seconds
                    self.audio_seconds += chunk.duration
                    span.end = self.audio_seconds
                    self.chunks.append(chunk)
                    self.metrics.reply_audio_s = self.audio_seconds
                    self.metrics.mark_once("first_audio")
                    await self.emit(AudioEvent, chunk=chunk, offset=offset)
                    if audio_out is not None:
                        await audio_out.put(chunk)
            span.complete = True
            if span.end == span.start:
                raise BackendError(
                    f"no audio came back for the sentence {text[:60]!r}",
                    backend=self.b.names.get("tts"), stage="tts", retryable=True,
                )  # fmt: skip
        if audio_out is not None:
            await audio_out.put(_END)

    async def _avatar_stage(self, audio_in: asyncio.Queue[Any]) -> None:
        assert self.b.avatar is not None
        waited = 0.0

        async def feed() -> AsyncGenerator[AudioChunk, None]:
            nonlocal waited
            while True:
                started = time.perf_counter()
                item = await audio_in.get()
                waited += time.perf_counter() - started
                if item is _END:
                    return
                yield item

        source = feed()
        try:
            # No per-frame timeout: an avatar legitimately waits for audio as long as TTS does.
            frames = self.b.avatar.animate(source)
            frame_stream = self.iterate("avatar", frames, busy="avatar", guard=False)
            async with contextlib.aclosing(frame_stream) as frame_items:
                async for frame in frame_items:
                    if not isinstance(frame, VideoFrame):
                        raise self._wrap("avatar", TypeError(f"animate() yielded {type(frame)}"))
                    if self.watermark is not None:
                        frame = VideoFrame(
                            self.watermark.apply(frame.image), frame.index, frame.fps
                        )
                    self.metrics.mark_once("first_video")
                    self.metrics.counts["frames"] += 1
                    self.fps = frame.fps
                    if self.opts.keep_frames:
                        self.frames.append(frame)
                    await self.emit(VideoEvent, frame=frame)
        finally:
            self.metrics.busy["avatar"] = max(0.0, self.metrics.busy["avatar"] - waited)
            await source.aclose()

    # -- results ------------------------------------------------------------------------------
    def reply_audio(self) -> Audio | None:
        if not self.chunks or self.sample_rate is None:
            return None
        return Audio.concatenate([c.to_audio() for c in self.chunks], self.sample_rate)

    def heard_text(self, played_seconds: float) -> str:
        """The reply text a listener heard after ``played_seconds`` of the reply audio.

        Whole sentences that finished playing are kept; a sentence cut mid-way keeps the share of
        its words proportional to the share of its audio that played, and ends with "…".
        """
        parts: list[str] = []
        for span in self.spans:
            if span.complete and span.start < span.end <= played_seconds + 1e-6:
                parts.append(span.text)
                continue
            if span.start < played_seconds:
                words = span.text.split()
                # an unfinished sentence's length is unknown: estimate it from its text
                length = (
                    span.end - span.start
                    if span.complete
                    else max(span.end - span.start, self._estimate_seconds(span.text, span))
                )
                share = min(1.0, (played_seconds - span.start) / length)
                keep = int(len(words) * share)
                if keep:
                    parts.append(" ".join(words[:keep]) + " …")
            break
        return " ".join(parts)

    def _estimate_seconds(self, text: str, span: SentenceSpan) -> float:
        """Expected length of a sentence's speech, from the speaking rate seen so far."""
        done = [s for s in self.spans if s.complete and s.end > s.start]
        if done:
            rate = sum(s.end - s.start for s in done) / max(1, sum(len(s.text) for s in done))
        else:
            rate = 0.065  # seconds per character of typical English speech
        return len(text) * rate

    def build_reply(self, *, interrupted: bool, played_seconds: float | None = None) -> Reply:
        audio = self.reply_audio()
        text = " ".join(self.sentences)
        if interrupted:
            text = self.heard_text(played_seconds if played_seconds is not None else 0.0)
        return Reply(
            turn_id=self.turn_id,
            transcript=self.transcript,
            user_text=self.user_text or "",
            text=text,
            sentences=list(self.sentences),
            audio=audio,
            frames=list(self.frames),
            fps=self.fps if self.b.avatar is not None else None,
            metrics=self.metrics.build(),
            interrupted=interrupted,
        )


async def run_all(coros: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run ``coros`` concurrently; on the first failure cancel the rest, await them, re-raise.

    (``asyncio.TaskGroup`` does this on Python 3.11+, but raises an ExceptionGroup and is missing
    on 3.10; the pipeline wants the first typed error as it is.)
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:  # in stage order, so an upstream failure wins over its knock-ons
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
