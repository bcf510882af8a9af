"""From in-process events to WebSocket messages (see :mod:`lexperience.server.schema`).

:class:`EventEncoder` serves one connection. Audio becomes 16-bit PCM; frames become JPEGs, or,
with ``video="mp4"``, one MP4 segment per sentence (:class:`~lexperience.output.SegmentWriter`).
Encoding runs in one worker thread per connection, so it never blocks the event loop and the
messages keep their order.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fractions
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._optional import require
from ..errors import BackendError, LexperienceError
from ..events import AudioEvent, Event, VideoEvent
from ..media import AudioChunk, VideoFrame
from ..reply import Reply
from .schema import (
    WIRE_EVENTS,
    VideoSegment,
    WireAudio,
    WireError,
    WireFrame,
    WireReply,
    pack_binary,
)

__all__ = ["EventEncoder", "error_body", "reply_body"]

Message = str | bytes
MediaUrls = Callable[[Reply], dict[str, str]]


def error_body(error: BaseException, *, retry_after: float | None = None) -> WireError:
    """The wire form of an error (typed lexperience errors keep their class name and fields)."""
    if isinstance(error, LexperienceError):
        return WireError(
            type=type(error).__name__,
            message=error.message,
            retryable=error.retryable,
            stage=getattr(error, "stage", None),
            backend=getattr(error, "backend", None),
            status=getattr(error, "status", None) if isinstance(error, BackendError) else None,
            retry_after=retry_after,
        )
    return WireError(
        type=type(error).__name__, message=str(error), retryable=retry_after is not None,
        retry_after=retry_after,
    )  # fmt: skip


def reply_body(reply: Reply, media: dict[str, str]) -> WireReply:
    return WireReply(
        turn_id=reply.turn_id,
        transcript=reply.transcript,
        user_text=reply.user_text,
        text=reply.text,
        sentences=reply.sentences,
        interrupted=reply.interrupted,
        audio_seconds=reply.audio.duration if reply.audio is not None else 0.0,
        video_frames=reply.metrics.video_frames,
        fps=reply.fps,
        metrics=reply.metrics,
        media=media,
    )


class _Jpeg:
    """A JPEG encoder (PyAV's MJPEG) for frames of one size."""

    def __init__(self, width: int, height: int, quality: int) -> None:
        av = require("av", "server", feature="sending video frames")
        self._av = av
        ctx = av.CodecContext.create("mjpeg", "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuvj420p"
        ctx.time_base = fractions.Fraction(1, 25)
        q = max(2, min(31, round(2 + (100 - quality) * 29 / 99)))  # 100 -> 2 (best), 1 -> 31
        ctx.options = {"qmin": str(q), "qmax": str(q)}
        self._ctx = ctx
        self.size = (width, height)
        self._pts = 0

    def encode(self, image: np.ndarray) -> bytes:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame = frame.reformat(format="yuvj420p")
        frame.pts = self._pts
        self._pts += 1
        return b"".join(bytes(p) for p in self._ctx.encode(frame))


class EventEncoder:
    """Turns one connection's events into messages, in order, off the event loop."""

    def __init__(
        self,
        *,
        binary: bool,
        video: Literal["jpeg", "mp4", "none"],
        fps: float | None,
        jpeg_quality: int,
        media_urls: MediaUrls,
    ) -> None:
        self.binary = binary
        self.video = video if fps is not None else "none"  # no avatar: no video
        self.fps = fps or 25.0
        self.jpeg_quality = jpeg_quality
        self.media_urls = media_urls
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lexperience-ws")
        self._jpeg: _Jpeg | None = None
        self._segments: Any = None
        self._segment_dir: tempfile.TemporaryDirectory[str] | None = None
        self._turn_id = 0

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def encode(self, event: Event) -> list[Message]:
        """The messages for ``event`` (none, one, or a few when a segment completes)."""
        if isinstance(event, AudioEvent):
            out = [self._audio(event)]
            if self.video == "mp4":
                out += await self._run(self._segment, event)
            return out
        if isinstance(event, VideoEvent):
            if self.video == "jpeg":
                return [await self._run(self._frame, event)]
            if self.video == "mp4":
                return list(await self._run(self._segment, event))
            return []
        wire = WIRE_EVENTS[type(event)]
        fields: dict[str, Any] = dict(event)
        if "reply" in fields:
            if self.video == "mp4":
                fields_extra = await self._run(self._close_segments)
            else:
                fields_extra = []
            fields["reply"] = reply_body(fields["reply"], self.media_urls(fields["reply"]))
            return [*fields_extra, wire(**fields).model_dump_json()]
        if "error" in fields:
            fields["error"] = error_body(fields["error"])
            if self.video == "mp4":
                await self._run(self._drop_segments)
        return [wire(**fields).model_dump_json()]

    # -- media ----------------------------------------------------------------------------------
    def _media(self, base: dict[str, Any], key: str, payload: bytes) -> Message:
        if self.binary:
            return pack_binary(base, payload)
        base[key]["data"] = base64.b64encode(payload).decode("ascii")
        return _json(base)

    def _audio(self, event: AudioEvent) -> Message:
        chunk: AudioChunk = event.chunk
        wire = WireAudio(
            sample_rate=chunk.sample_rate,
            samples=int(chunk.samples.shape[0]),
            sentence_index=chunk.sentence_index,
            text=chunk.text,
            visemes=[(c.start, c.end, c.viseme) for c in chunk.visemes],
        )
        base = WIRE_EVENTS[AudioEvent](
            turn_id=event.turn_id, t=event.t, chunk=wire, offset=event.offset
        ).model_dump()
        return self._media(base, "chunk", chunk.to_audio().to_pcm16())

    def _frame(self, event: VideoEvent) -> Message:
        frame: VideoFrame = event.frame
        if self._jpeg is None or self._jpeg.size != (frame.width, frame.height):
            self._jpeg = _Jpeg(frame.width, frame.height, self.jpeg_quality)
        data = self._jpeg.encode(frame.image)
        wire = WireFrame(
            index=frame.index, timestamp=frame.timestamp, fps=frame.fps,
            width=frame.width, height=frame.height,
        )  # fmt: skip
        base = WIRE_EVENTS[VideoEvent](turn_id=event.turn_id, t=event.t, frame=wire).model_dump()
        return self._media(base, "frame", data)

    def _segment(self, event: AudioEvent | VideoEvent) -> list[Message]:
        if self._segments is None:
            from ..output.segments import SegmentWriter

            self._segment_dir = tempfile.TemporaryDirectory(prefix="lexperience-ws-")
            self._segments = SegmentWriter(self._segment_dir.name, fps=self.fps)
            self._turn_id = event.turn_id
        return [self._segment_message(s) for s in self._segments.add_event(event)]

    def _segment_message(self, segment: Any) -> Message:
        data = Path(segment.path).read_bytes()
        Path(segment.path).unlink(missing_ok=True)
        base = VideoSegment(
            turn_id=self._turn_id, index=segment.index, sentence_index=segment.sentence_index,
            start=segment.start, duration=segment.duration, frames=segment.frames,
        ).model_dump()  # fmt: skip
        if self.binary:
            return pack_binary(base, data)
        base["data"] = base64.b64encode(data).decode("ascii")
        return _json(base)

    def _close_segments(self) -> list[Message]:
        if self._segments is None:
            return []
        try:
            return [self._segment_message(s) for s in self._segments.close()]
        finally:
            self._drop_segments()

    def _drop_segments(self) -> None:
        if self._segments is not None:
            self._segments.abort()
            self._segments = None
        if self._segment_dir is not None:
            self._segment_dir.cleanup()
            self._segment_dir = None

    def close(self) -> None:
        """Release the worker thread (pending encodes finish first)."""
        self._pool.submit(self._drop_segments)
        self._pool.shutdown(wait=False)


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, separators=(",", ":"))
