"""Encode a reply's video while it streams: :class:`VideoRecorder`.

The pipeline hands it every audio chunk and frame as they are made; one worker thread per reply
encodes them (H.264 + AAC, :class:`~lexperience.output.mp4.Mp4Writer`) into a temporary file, and
:meth:`VideoRecorder.finish` returns the finished MP4 as :class:`~lexperience.reply.EncodedVideo`
bytes. A reply then holds about 100 KB per second of video instead of about 20 MB of raw frames,
and nothing is encoded on the event loop.

Back-pressure: at most ``max_pending`` items wait for the encoder; beyond that the stage that
adds one waits (in a thread, never blocking the loop). An encoder failure never fails the turn:
it is logged and the reply simply has no encoded video.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..media import AudioChunk, VideoFrame
from ..reply import EncodedVideo
from .mp4 import Mp4Writer

__all__ = ["VideoRecorder"]

log = logging.getLogger(__name__)

_FINISH, _ABORT = object(), object()


class VideoRecorder:
    """A :class:`~lexperience.pipeline.ReplySink` that encodes one reply into an MP4.

    Args:
        fps: the avatar's frame rate.
        ai_generated_tag: write the ``ai_generated`` metadata tag.
        max_pending: items queued for the encoder before adding one waits.
        crf: H.264 quality (lower is better and bigger).
        preset: x264 speed preset.
    """

    def __init__(
        self,
        *,
        fps: float,
        ai_generated_tag: bool = True,
        max_pending: int = 64,
        crf: int = 23,
        preset: str = "veryfast",
    ) -> None:
        self.ai_generated_tag = ai_generated_tag
        self._queue: queue.Queue[Any] = queue.Queue(max_pending)
        self._crf, self._preset = crf, preset
        self._thread: threading.Thread | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._writer: Mp4Writer | None = None
        self._early_frames: list[VideoFrame] = []
        self._fps = float(fps)
        self._frames = 0
        self._error: BaseException | None = None
        self._aborted = threading.Event()
        self._closed = False

    def __repr__(self) -> str:
        return f"VideoRecorder({self._frames} frames, {'closed' if self._closed else 'open'})"

    # -- the loop side ------------------------------------------------------------------------
    async def add_audio(self, chunk: AudioChunk) -> None:
        await self._put(chunk)

    async def add_frame(self, frame: VideoFrame) -> None:
        await self._put(frame)

    async def _put(self, item: Any) -> None:
        if self._closed or self._error is not None:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="lexperience-encoder", daemon=True
            )
            self._thread.start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await asyncio.to_thread(self._queue.put, item)  # back-pressure, off the loop

    async def finish(self) -> EncodedVideo | None:
        """Flush the encoder and return the MP4 (``None`` when no frame came or encoding failed)."""
        if self._closed:
            return None
        self._closed = True
        if self._thread is None:
            return None
        await asyncio.to_thread(self._stop_thread, _FINISH)
        try:
            if self._error is not None or self._writer is None or self._frames == 0:
                return None
            data = await asyncio.to_thread(self._writer.path.read_bytes)
            return EncodedVideo(
                data=data,
                fps=self._fps,
                frames=self._frames,
                duration=self._frames / self._fps,
                ai_generated_tag=self.ai_generated_tag,
            )
        finally:
            self._cleanup()

    async def abort(self) -> None:
        """Stop encoding and drop what was written (the turn failed)."""
        if self._closed:
            return
        self._closed = True
        self._aborted.set()
        if self._thread is not None:
            await asyncio.to_thread(self._stop_thread, _ABORT)
        self._cleanup()

    def _stop_thread(self, control: object) -> None:
        """Hand ``control`` to the encoder thread (unless it already ended) and join it."""
        thread = self._thread
        assert thread is not None
        while thread.is_alive():
            try:
                self._queue.put(control, timeout=0.05)
                break
            except queue.Full:
                continue
        thread.join()

    def _cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    # -- the encoder thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _FINISH or item is _ABORT or self._aborted.is_set():
                    break
                self._encode(item)
        except BaseException as exc:  # never fail the turn over its recording
            self._error = exc
            log.warning("encoding the reply video failed: %s: %s", type(exc).__name__, exc)
            self._drain()
        finally:
            if self._writer is not None:
                if self._error is not None or self._aborted.is_set():
                    self._writer.abort()
                else:
                    try:
                        self._writer.close()
                    except Exception as exc:
                        self._error = exc
                        self._writer.abort()
                        log.warning("finishing the reply video failed: %s", exc)

    def _drain(self) -> None:
        """Empty the queue so producers blocked on a full queue are released."""
        while True:
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._closed:
                    return
                continue
            if item is _FINISH or item is _ABORT:
                return

    def _encode(self, item: Any) -> None:
        if isinstance(item, AudioChunk):
            writer = self._ensure_writer(item.sample_rate)
            writer.add_audio(item.to_audio())
            return
        assert isinstance(item, VideoFrame)
        if self._writer is None:
            self._early_frames.append(item)  # a frame before any audio: hold it
            return
        self._writer.add_frame(item)
        self._frames += 1

    def _ensure_writer(self, sample_rate: int) -> Mp4Writer:
        if self._writer is not None:
            return self._writer
        self._dir = tempfile.TemporaryDirectory(prefix="lexperience-reply-")
        self._writer = Mp4Writer(
            Path(self._dir.name) / "reply.mp4",
            fps=self._fps,
            sample_rate=sample_rate,
            crf=self._crf,
            preset=self._preset,
            ai_generated_tag=self.ai_generated_tag,
        )
        for frame in self._early_frames:
            self._writer.add_frame(frame)
            self._frames += 1
        self._early_frames.clear()
        return self._writer
