"""One reply's media on its way to the browser: :class:`ReplyStream`.

The turn's consumer hands every ``AudioEvent`` / ``VideoEvent`` to :meth:`ReplyStream.feed`; an
encoder task takes them from a bounded channel (back-pressure on the turn when encoding lags)
and runs :class:`~lexperience.ui.livemp4.LiveMp4Encoder` in a worker thread, never on the event
loop. The bytes it returns are appended to the stream on the loop, where any number of readers
(the HTTP route the player fetches) follow them with :meth:`ReplyStream.read`, from the first
byte, while the reply is still being made. The finished bytes stay, so the reply can be played
again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal, TypeVar

from .._aio import Channel, ChannelClosed, cancel_and_wait
from ..events import AudioEvent, VideoEvent
from .livemp4 import LiveMp4Encoder

__all__ = ["ReplyStream"]

log = logging.getLogger(__name__)

T = TypeVar("T")

State = Literal["waiting", "streaming", "done", "aborted"]


class ReplyStream:
    """A growing fragmented MP4 of one reply.

    Args:
        key: its name in media URLs (unguessable: it is the only access check).
        fps: the avatar's frame rate, ``None`` for audio only.
        max_pending: events queued for the encoder before :meth:`feed` waits.
        max_bytes: the most bytes kept (a reply longer than this is cut, with a warning).
    """

    def __init__(
        self,
        key: str,
        *,
        fps: float | None,
        max_pending: int = 48,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.key = key
        self.fps = fps
        self.max_bytes = max_bytes
        self.state: State = "waiting"
        self.mime_type: str | None = None
        self.start_offset = 0.0
        self.created = time.perf_counter()
        self.first_bytes_at: float | None = None  # perf_counter()
        self.first_bytes_wall: float | None = None  # time.time(), comparable with a browser
        self._chunks: list[bytes] = []
        self._size = 0
        self._changed = asyncio.Event()
        self._events: Channel[AudioEvent | VideoEvent] = Channel(max_pending)
        self._encoder = LiveMp4Encoder(fps=fps)
        # one thread per reply: the encoder's calls run in order, an abort after a running one
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lexperience-ui")
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"ReplyStream({self.key!r}, {self.state}, {self._size} bytes)"

    # -- writing --------------------------------------------------------------------------------
    async def feed(self, event: AudioEvent | VideoEvent) -> None:
        """Queue a turn's media event for the encoder."""
        if self.state in ("done", "aborted"):
            return
        if self._task is None:
            self._task = asyncio.ensure_future(self._encode())
        try:
            await self._events.send(event)
        except ChannelClosed:  # aborted meanwhile
            return

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _encode(self) -> None:
        try:
            async for event in self._events:
                self._append(await self._run(self._encoder.add_event, event))
            self._append(await self._run(self._encoder.close))
            self._set_state("done")
        except asyncio.CancelledError:
            self._pool.submit(self._encoder.abort)  # queued after the call under way
            self._set_state("aborted")
            raise
        except Exception:
            log.exception("encoding the reply stream %s failed", self.key)
            self._pool.submit(self._encoder.abort)
            self._set_state("aborted")
        finally:
            self._pool.shutdown(wait=False)

    def _append(self, data: bytes) -> None:
        if not data:
            return
        if self._size + len(data) > self.max_bytes:
            log.warning(
                "reply stream %s passed %d bytes: the rest is dropped", self.key, self._size
            )
            self._events.close()
            return
        if self.mime_type is None:
            self.mime_type = self._encoder.mime_type
            self.start_offset = self._encoder.start_offset
            self.first_bytes_at = time.perf_counter()
            self.first_bytes_wall = time.time()
            self.state = "streaming"
        self._chunks.append(data)
        self._size += len(data)
        self._wake()

    def _set_state(self, state: State) -> None:
        self.state = state
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def finish(self) -> None:
        """The reply is complete: encode what is queued, flush, and end the stream."""
        self._events.close()
        if self._task is None:
            self._pool.shutdown(wait=False)
            self._set_state("done")  # no media at all (an error before any audio)
            return
        await asyncio.shield(self._task)

    async def abort(self) -> None:
        """Stop now (an interruption): what was streamed stays readable; the stream ends."""
        self._events.close()
        if self._task is not None:
            await cancel_and_wait(self._task)
        else:
            self._pool.shutdown(wait=False)
        if self.state not in ("done", "aborted"):
            self._set_state("aborted")

    # -- reading --------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.state in ("done", "aborted")

    @property
    def size(self) -> int:
        return self._size

    async def wait_started(self) -> None:
        """Wait until the first bytes (the init segment) exist or the stream ended empty."""
        while self.mime_type is None and not self.ended:
            await self._changed.wait()

    async def read(self) -> AsyncIterator[bytes]:
        """Every byte from the start, then the new ones as they come, until the stream ends."""
        index = 0
        while True:
            if index < len(self._chunks):
                pending = self._chunks[index:]
                index = len(self._chunks)
                yield b"".join(pending)
                continue
            if self.ended:
                return
            await self._changed.wait()
