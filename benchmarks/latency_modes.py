"""The two modes ``benchmarks/latency.py`` compares, each timing one turn on the caller's clock:
the library's streaming turn (:meth:`Conversation.stream`) and the prototype's sequential flow
(every stage to its end before the next)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import latency_server as sim

from lexperience import Conversation
from lexperience.events import (
    AudioEvent,
    ErrorEvent,
    SentenceEvent,
    TranscriptEvent,
    TurnDone,
    VideoEvent,
)
from lexperience.media import Audio, AudioChunk
from lexperience.messages import Message
from lexperience.text import SentenceSplitter, clean_for_speech

T = TypeVar("T")


@dataclass
class Turn:
    """One measured turn (seconds from the start of the turn)."""

    mode: str
    first_audio_s: float | None
    first_video_s: float | None
    total_s: float
    transcript_s: float | None
    first_token_s: float | None
    reply_audio_s: float
    sentences: list[str]
    loop_stall_s: float
    started_at: float = 0.0  # time.perf_counter() at the start (the server shares the clock)
    seen: dict[str, float] = field(default_factory=dict)  # when the caller saw what (absolute)
    server: list[dict[str, Any]] = field(default_factory=list)


# -- the two modes -------------------------------------------------------------------------------
async def streaming_turn(conv: Conversation, audio: Audio) -> Turn:
    """One turn through the library, timed on the caller's side of the event stream."""
    conv.clear_history()
    lag = sim.LoopLag()
    lag.start()
    first_audio = first_video = None
    reply = None
    seen: dict[str, float] = {}
    started = time.perf_counter()
    async with contextlib.aclosing(conv.stream(audio)) as events:
        async for event in events:
            now = time.perf_counter() - started
            if isinstance(event, TranscriptEvent):
                seen["transcript"] = now + started
            elif isinstance(event, SentenceEvent) and "first_sentence" not in seen:
                seen["first_sentence"] = now + started
            elif isinstance(event, AudioEvent) and first_audio is None:
                first_audio = now
                seen["first_audio"] = now + started
            elif isinstance(event, VideoEvent) and first_video is None:
                first_video = now
            elif isinstance(event, TurnDone):
                reply = event.reply
            elif isinstance(event, ErrorEvent):
                raise event.error
    total = time.perf_counter() - started
    stall = await lag.stop()
    assert reply is not None
    m = reply.metrics
    return Turn(
        mode="streaming",
        first_audio_s=first_audio,
        first_video_s=first_video,
        total_s=total,
        transcript_s=m.transcript_s,
        first_token_s=m.first_token_s,
        reply_audio_s=m.reply_audio_s,
        sentences=list(reply.sentences),
        loop_stall_s=stall,
        started_at=started,
        seen=seen,
    )


@contextlib.asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close ``stream`` (an async generator, usually) on the way out, as the pipeline does."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


async def _chunks(items: Sequence[AudioChunk]) -> AsyncIterator[AudioChunk]:
    for item in items:
        yield item


async def sequential_turn(conv: Conversation, audio: Audio) -> Turn:
    """The prototype's flow with the conversation's own backends: every stage runs to its end
    before the next one starts."""
    b, opts, persona = conv.backends, conv.options, conv.persona
    assert b.stt is not None
    lag = sim.LoopLag()
    lag.start()
    started = time.perf_counter()

    def now() -> float:
        return time.perf_counter() - started

    transcript = await b.stt.transcribe(audio, language=persona.language)
    transcript_s = now()
    messages = [Message.system(persona.system_message()), Message.user(transcript.text.strip())]
    splitter = SentenceSplitter(first_clause_words=opts.first_clause_words)
    sentences: list[str] = []
    first_token = None

    def keep(pieces: list[str]) -> None:
        for piece in pieces:
            spoken = clean_for_speech(piece)
            if spoken and len(sentences) < persona.max_sentences:
                sentences.append(spoken)

    # the same sentence budget as the pipeline, so that both modes speak the same text
    async with closing(b.llm.stream(messages, max_tokens=opts.max_tokens)) as deltas:
        async for delta in deltas:
            first_token = first_token if first_token is not None else now()
            keep(splitter.push(delta))
            if len(sentences) >= persona.max_sentences:
                break
    keep(splitter.flush())
    text = " ".join(sentences)
    chunks = [c async for c in b.tts.stream(text) if c.samples.size]
    audio_ready = now()
    reply_audio = sum(c.duration for c in chunks)
    video_ready = None
    if b.avatar is not None:
        frames = 0
        async for frame in b.avatar.animate(_chunks(chunks)):
            if conv.watermark is not None:
                conv.watermark.apply(frame.image)  # the same per-frame work as the pipeline
            frames += 1
        video_ready = now() if frames else None
    total = now()
    stall = await lag.stop()
    return Turn(
        mode="sequential",
        first_audio_s=audio_ready,
        first_video_s=video_ready,
        total_s=total,
        transcript_s=transcript_s,
        first_token_s=first_token,
        reply_audio_s=reply_audio,
        sentences=sentences,
        loop_stall_s=stall,
    )
