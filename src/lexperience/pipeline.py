"""The streaming pipeline of one turn: STT -> LLM -> sentence splitter -> TTS -> avatar.

Stages are coroutines joined by bounded :class:`~lexperience._aio.Channel` s and run
concurrently: the first sentence goes to TTS while the LLM is still writing, and the avatar
animates audio chunks as TTS yields them. Every await on a backend goes through a
:class:`~lexperience.guards.StageGuard` (stage deadline, typed and redacted errors). If one stage
fails, the others are cancelled and awaited (:func:`~lexperience._aio.gather_or_cancel`), so
nothing keeps running.

This module is internal to :class:`~lexperience.Conversation`; its public face is the event stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ._aio import Channel, ChannelClosed, gather_or_cancel
from .context import (
    ContextProvider,
    StaticContext,
    TurnContext,
    as_messages,
    estimate_tokens,
    fit_budget,
)
from .errors import BackendError, InvalidInputError
from .events import (
    AudioEvent,
    Event,
    PartialTranscript,
    SentenceEvent,
    TextDelta,
    TranscriptEvent,
    TurnStarted,
    VideoEvent,
)
from .guards import StageGuard
from .heard import SentenceSpan, heard_text
from .media import Audio, AudioChunk, VideoFrame
from .messages import Message
from .metrics import MetricsRecorder
from .options import TurnOptions
from .persona import Persona
from .protocols import LLM, STT, TTS, Avatar, FrameFilter
from .reply import EncodedVideo, Reply
from .text import SentenceSplitter, clean_for_speech
from .transcript import Transcript

__all__ = ["Backends", "ReplySink", "TurnPipeline", "backend_name"]

log = logging.getLogger(__name__)

#: Input clips longer than this are checked (level, silence) in a worker thread.
_CHECK_OFF_LOOP_SECONDS = 10.0


@dataclass
class Backends:
    """The backends of a conversation and their display names (for error messages)."""

    stt: STT | None
    llm: LLM
    tts: TTS
    avatar: Avatar | None
    names: dict[str, str]


class ReplySink(Protocol):
    """Where the pipeline sends the reply's audio and frames as they stream (an encoder)."""

    async def add_audio(self, chunk: AudioChunk) -> None: ...

    async def add_frame(self, frame: VideoFrame) -> None: ...

    async def finish(self) -> EncodedVideo | None: ...

    async def abort(self) -> None: ...


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
        emit: Callable[[Event], Awaitable[None]],
        frame_filter: FrameFilter | None = None,
        sink: ReplySink | None = None,
    ) -> None:
        self.turn_id = turn_id
        self.b = backends
        self.persona = persona
        self.history = tuple(history)
        self.providers = tuple(providers)
        self.opts = options
        self.frame_filter = frame_filter
        self.sink = sink
        self._emit = emit
        self.metrics = MetricsRecorder()
        self.guard = StageGuard(backends.names, options.stage_timeout, self.metrics.busy)
        self.transcript: Transcript | None = None
        self.user_text: str | None = None
        self.raw_text = ""
        self.sentences: list[str] = []
        self._clauses = 0  # pieces in self.sentences that are a first clause, not a sentence
        self._first_audio = asyncio.Event()  # set at the first audio chunk, or when TTS ends
        self.spans: list[SentenceSpan] = []
        self.chunks: list[AudioChunk] = []
        self.frames: list[VideoFrame] = []
        self.audio_seconds = 0.0
        self.sample_rate: int | None = None
        self.fps: float | None = getattr(backends.avatar, "fps", None)

    # -- plumbing -----------------------------------------------------------------------------
    async def emit(self, event_type: type[Any], **fields: Any) -> None:
        await self._emit(event_type(turn_id=self.turn_id, t=self.metrics.now(), **fields))

    def _mark(self, name: str) -> None:
        if name not in self.metrics.marks:
            self.metrics.mark_once(name)
            log.debug("turn %d: %s at %.0f ms", self.turn_id, name, self.metrics.marks[name] * 1e3)

    def restart_clock(self) -> None:
        """Count every latency from now (a live microphone stream just ended)."""
        self.metrics = MetricsRecorder()
        self.guard.busy = self.metrics.busy

    # -- the turn -----------------------------------------------------------------------------
    async def run(self, user_input: Audio | str) -> Reply:
        await self.emit(TurnStarted, input="text" if isinstance(user_input, str) else "audio")
        if isinstance(user_input, str):
            self.user_text = self._check_text(user_input)
        elif self.opts.prime_llm and getattr(self.b.llm, "aprime", None) is not None:
            # An in-process LLM evaluates the prompt's known start (persona, history) while STT
            # runs, so that after the transcript only the question itself is left to evaluate.
            transcript, _ = await gather_or_cancel([self._transcribe(user_input), self._prime()])
            assert isinstance(transcript, Transcript)
            self.transcript = transcript
            self.user_text = transcript.text.strip()
        else:
            self.transcript = await self._transcribe(user_input)
            self.user_text = self.transcript.text.strip()
        messages = await self._messages(self.user_text)
        sentences: Channel[tuple[int, str]] = Channel(self.opts.sentence_queue)
        audio: Channel[AudioChunk] | None = (
            Channel(self.opts.audio_queue) if self.b.avatar is not None else None
        )
        stages: list[Awaitable[None]] = [
            self._llm_stage(messages, sentences),
            self._tts_stage(sentences, audio),
        ]
        if audio is not None:
            stages.append(self._avatar_stage(audio))
        await gather_or_cancel(stages)
        video = await self.sink.finish() if self.sink is not None else None
        reply = self.build_reply(interrupted=False, video=video)
        log.debug("turn %d done: %s", self.turn_id, reply.metrics.summary())
        return reply

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

    def _check_audio(self, audio: Audio) -> None:
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

    async def _transcribe(self, audio: Audio) -> Transcript:
        stt = self.b.stt
        if stt is None:
            raise InvalidInputError("this conversation has no STT backend: pass text, not audio")
        if len(audio) == 0:
            raise InvalidInputError("the audio is empty (0 samples)")
        if audio.duration > _CHECK_OFF_LOOP_SECONDS:
            await asyncio.to_thread(self._check_audio, audio)  # minutes of samples: off the loop
        else:
            self._check_audio(audio)
        self.metrics.input_audio_s = audio.duration
        started = time.perf_counter()
        streaming = getattr(stt, "transcribe_stream", None)
        if streaming is not None:
            stream = streaming(audio, language=self.persona.language)
            transcript = await self._transcribe_streaming(stream)
        else:
            transcript = await self.guard.call(
                "stt", stt.transcribe(audio, language=self.persona.language)
            )
        self.metrics.busy["stt"] = time.perf_counter() - started
        if not isinstance(transcript, Transcript):
            raise self.guard.wrap("stt", TypeError(f"transcribe() returned {type(transcript)}"))
        self._mark("transcript")
        await self.emit(TranscriptEvent, transcript=transcript)
        if not transcript.text.strip():
            raise InvalidInputError("no speech was recognised in the audio")
        return transcript

    async def _transcribe_streaming(self, stream: Any) -> Any:
        so_far = ""
        final: Any = None
        async for item in self.guard.iterate("stt", stream):
            if isinstance(item, str):
                if item and final is None:
                    so_far += item
                    await self.emit(PartialTranscript, text=so_far, delta=item)
            else:
                final = item
        if final is None:
            raise self.guard.wrap("stt", TypeError("transcribe_stream() yielded no Transcript"))
        return final

    async def _provided(self, ctx: TurnContext, static: bool) -> list[Message]:
        """The messages of the static (``StaticContext``) or the per-turn providers."""
        chosen = [p for p in self.providers if isinstance(p, StaticContext) == static]
        provided: list[Message] = []
        if chosen:
            # one failing provider cancels the others and waits for them
            results = await gather_or_cancel(
                [self.guard.call("context", p.provide(ctx)) for p in chosen]
            )
            for result in results:
                provided.extend(as_messages(result))
        return provided

    async def _prefix(self, ctx: TurnContext) -> list[Message]:
        """What every prompt of this conversation starts with, in an order that stays the same
        from turn to turn (so an in-process LLM reuses it evaluated): the persona's system
        message and few-shot examples, the static context (``Persona.knowledge``), the history."""
        static = fit_budget(await self._provided(ctx, True), self.opts.context_budget_tokens)
        return [*self.persona.prompt_messages(), *static, *self.history]

    async def _prime(self) -> None:
        """Have the LLM evaluate the prompt's prefix now (best effort: a failure only costs the
        time it saves, and the turn's own call reports any real problem)."""
        primer = getattr(self.b.llm, "aprime", None)
        if primer is None:
            return
        try:
            await primer(await self._prefix(TurnContext(self.turn_id, "", self.history,
                                                        self.persona)))  # fmt: skip
        except Exception as exc:
            log.debug("turn %d: priming the LLM failed: %s", self.turn_id, exc)

    async def _messages(self, user_text: str) -> list[Message]:
        ctx = TurnContext(self.turn_id, user_text, self.history, self.persona)
        static = fit_budget(await self._provided(ctx, True), self.opts.context_budget_tokens)
        left = self.opts.context_budget_tokens - sum(estimate_tokens(m.content) for m in static)
        per_turn = fit_budget(await self._provided(ctx, False), max(0, left))
        # The per-turn context (an episode's passage, retrieval) goes after the history, just
        # before the question: the prefix before it is the same every turn, so it stays cached.
        return [
            *self.persona.prompt_messages(),
            *static,
            *self.history,
            *per_turn,
            Message.user(user_text),
        ]

    async def _llm_stage(self, messages: list[Message], out: Channel[tuple[int, str]]) -> None:
        try:
            splitter = SentenceSplitter(first_clause_words=self.opts.first_clause_words)
            budget = self.persona.max_sentences
            hold = self.opts.hold_llm_for_first_audio and bool(
                getattr(self.b.llm, "shares_cpu", False)
            )
            stream = self.b.llm.stream(messages, max_tokens=self.opts.max_tokens)
            deltas = self.guard.iterate("llm", stream)
            try:
                async for delta in deltas:
                    self._mark("first_token")
                    self.metrics.counts["deltas"] += 1
                    if not delta:
                        continue
                    self.raw_text += delta
                    await self.emit(TextDelta, text=delta)
                    for sentence, clause in splitter.push_pieces(delta):
                        await self._sentence(sentence, out, clause=clause)
                        if self._spoken_sentences() >= budget:
                            break
                    if self._spoken_sentences() >= budget:
                        break  # the reply-length budget is spent: stop the LLM (stream closed)
                    if hold and self.sentences and not self._first_audio.is_set():
                        # an in-process LLM shares the CPU with TTS: it waits (back-pressure)
                        # while the first piece is synthesised; it is seconds ahead of speech
                        await self._first_audio.wait()
                else:
                    for sentence in splitter.flush():
                        if self._spoken_sentences() < budget:
                            await self._sentence(sentence, out)
            finally:
                await deltas.aclose()
            if not self.sentences:
                raise BackendError(
                    "the LLM returned no speakable text", backend=self.b.names.get("llm"),
                    stage="llm", retryable=True,
                )  # fmt: skip
        finally:
            out.close()

    def _spoken_sentences(self) -> int:
        """Whole sentences handed to TTS: a first clause sent ahead is part of its sentence."""
        return len(self.sentences) - self._clauses

    async def _sentence(
        self, sentence: str, out: Channel[tuple[int, str]], *, clause: bool = False
    ) -> None:
        spoken = clean_for_speech(sentence)
        if not spoken:
            return
        index = len(self.sentences)
        self.sentences.append(spoken)
        self._clauses += clause
        self.metrics.counts["sentences"] += 1
        self._mark("first_sentence")
        await self.emit(SentenceEvent, index=index, text=spoken)
        await out.send((index, spoken))

    async def _tts_stage(
        self, sentences: Channel[tuple[int, str]], audio_out: Channel[AudioChunk] | None
    ) -> None:
        try:
            async for index, text in sentences:
                await self._speak(index, text, audio_out)
        finally:
            self._first_audio.set()  # never leave the LLM stage waiting
            if audio_out is not None:
                audio_out.close()

    async def _speak(self, index: int, text: str, audio_out: Channel[AudioChunk] | None) -> None:
        span = SentenceSpan(index, text, self.audio_seconds, self.audio_seconds)
        self.spans.append(span)
        chunks = self.guard.iterate("tts", self.b.tts.stream(text), busy="tts")
        try:
            async for chunk in chunks:
                if not isinstance(chunk, AudioChunk):
                    raise self.guard.wrap(
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
                self._mark("first_audio")
                self._first_audio.set()
                await self.emit(AudioEvent, chunk=chunk, offset=offset)
                if self.sink is not None:
                    await self.sink.add_audio(chunk)
                if audio_out is not None:
                    await audio_out.send(chunk)
        finally:
            await chunks.aclose()
        span.complete = True
        if span.end == span.start:
            raise BackendError(
                f"no audio came back for the sentence {text[:60]!r}",
                backend=self.b.names.get("tts"), stage="tts", retryable=True,
            )  # fmt: skip

    async def _avatar_stage(self, audio_in: Channel[AudioChunk]) -> None:
        assert self.b.avatar is not None
        waited = 0.0

        async def feed() -> AsyncGenerator[AudioChunk, None]:
            nonlocal waited
            while True:
                started = time.perf_counter()
                try:
                    chunk = await audio_in.recv()
                except ChannelClosed:  # TTS is done
                    return
                finally:
                    waited += time.perf_counter() - started
                yield chunk

        source = feed()
        # No per-frame deadline: an avatar legitimately waits for audio as long as TTS does.
        frames = self.guard.iterate(
            "avatar", self.b.avatar.animate(source), busy="avatar", deadline=False
        )
        try:
            async for frame in frames:
                if not isinstance(frame, VideoFrame):
                    raise self.guard.wrap("avatar", TypeError(f"animate() yielded {type(frame)}"))
                if self.frame_filter is not None:
                    frame = VideoFrame(self.frame_filter.apply(frame.image), frame.index, frame.fps)
                self._mark("first_video")
                self.metrics.counts["frames"] += 1
                self.fps = frame.fps
                if self.opts.keep_frames:
                    self.frames.append(frame)
                await self.emit(VideoEvent, frame=frame)
                if self.sink is not None:
                    await self.sink.add_frame(frame)
        finally:
            await frames.aclose()
            await source.aclose()
            self.metrics.busy["avatar"] = max(0.0, self.metrics.busy["avatar"] - waited)

    # -- results ------------------------------------------------------------------------------
    def reply_audio(self) -> Audio | None:
        if not self.chunks or self.sample_rate is None:
            return None
        return Audio.concatenate([c.to_audio() for c in self.chunks], self.sample_rate)

    def heard_text(self, played_seconds: float) -> str:
        """The reply text a listener heard after ``played_seconds`` of the reply audio."""
        return heard_text(self.spans, played_seconds)

    def build_reply(
        self,
        *,
        interrupted: bool,
        played_seconds: float | None = None,
        video: EncodedVideo | None = None,
    ) -> Reply:
        text = " ".join(self.sentences)
        if interrupted:
            text = self.heard_text(played_seconds if played_seconds is not None else 0.0)
        return Reply(
            turn_id=self.turn_id,
            transcript=self.transcript,
            user_text=self.user_text or "",
            text=text,
            sentences=list(self.sentences),
            audio=self.reply_audio(),
            frames=list(self.frames),
            video=video,
            fps=self.fps if self.b.avatar is not None else None,
            metrics=self.metrics.build(),
            interrupted=interrupted,
        )
