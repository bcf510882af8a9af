"""``WS /v1/conversations/{id}/stream``: turns over one WebSocket, events as they happen.

The client sends JSON messages (:data:`~lexperience.server.schema.ClientMessage`): a text
question, or ``audio_start``, binary 16-bit PCM chunks and ``audio_end`` for a spoken one, and
``interrupt`` at any time. The server answers with ``session`` first, then every event of each
turn (:mod:`lexperience.server.schema`). One stream per conversation at a time.

Live mode: ``live_start``, then a continuous stream of binary PCM (mono, or two interleaved
channels: microphone and the client's loudspeaker), ``played`` reports of the playback position,
and ``live_end``; the server runs :class:`~lexperience.live.LiveSession` on it and streams its
events (speech started/ended, interim transcripts, every turn's events), then ``live_ended``.

Close codes: 4401 bad token, 4404 unknown conversation, 4409 a stream is already open, 1001 the
server is shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

import numpy as np
from pydantic import TypeAdapter, ValidationError

from .._aio import Channel, ChannelClosed, cancel_and_wait
from ..errors import ConversationBusyError, InvalidInputError, LexperienceError
from ..events import ErrorEvent, TurnDone, TurnInterrupted, TurnStarted
from ..live.input import DuplexChunk
from ..media import AudioChunk
from .codec import EventEncoder, error_body
from .limits import RateLimited, ServerBusy
from .schema import (
    WIRE_EVENTS,
    ClientAudioEnd,
    ClientAudioStart,
    ClientInterrupt,
    ClientLiveEnd,
    ClientLiveStart,
    ClientMessage,
    ClientPlayed,
    ClientText,
    LiveEnded,
    SessionStarted,
)
from .state import ServiceState
from .store import Entry

__all__ = ["serve_stream"]

log = logging.getLogger(__name__)

_CLIENT: TypeAdapter[Any] = TypeAdapter(ClientMessage)
_AUDIO_BACKLOG = 64  # chunks buffered from the client before its reads wait
_MAX_CHUNK_BYTES = 1024 * 1024


class _Session:
    """One open stream: its reader (client messages) and at most one running turn."""

    def __init__(self, ws: Any, state: ServiceState, entry: Entry, client: str, *,
                 binary: bool, video: Literal["jpeg", "mp4", "none"]) -> None:  # fmt: skip
        self.ws = ws
        self.state = state
        self.entry = entry
        self.client = client
        avatar = entry.conversation.backends.avatar
        self.encoder = EventEncoder(
            binary=binary,
            video=video,
            fps=float(avatar.fps) if avatar is not None else None,
            jpeg_quality=state.settings.jpeg_quality,
            media_urls=lambda reply: state.media_urls(entry, reply),
        )
        self.binary = binary
        self.video = video
        self.turn: asyncio.Task[None] | None = None
        self.audio: Channel[AudioChunk] | None = None
        self.audio_rate = 16_000
        self.live: Any = None  # the LiveSession while live mode is on
        self.live_audio: Channel[Any] | None = None
        self.live_channels = 1
        self._send_lock = asyncio.Lock()

    async def send(self, message: str | bytes) -> None:
        async with self._send_lock:
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            else:
                await self.ws.send_text(message)

    async def send_error(self, error: BaseException, *, retry_after: float | None = None) -> None:
        wire = WIRE_EVENTS[ErrorEvent]
        body = error_body(error, retry_after=retry_after)
        await self.send(wire(turn_id=0, t=0.0, error=body, stage=body.stage).model_dump_json())

    # -- the reader -----------------------------------------------------------------------------
    async def run(self) -> None:
        await self.send(
            SessionStarted(
                conversation_id=self.entry.id, binary=self.binary, video=self.encoder.video
            ).model_dump_json()
        )
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await self._on_text(message["text"])
            elif message.get("bytes") is not None:
                await self._on_audio(message["bytes"])

    async def _on_text(self, text: str) -> None:
        try:
            request = _CLIENT.validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            await self.send_error(InvalidInputError(f"bad message ({where}: {first['msg']})"))
            return
        if isinstance(request, (ClientLiveStart, ClientLiveEnd, ClientPlayed)):
            await self._on_live(request)
        elif self.live_audio is not None and isinstance(request, (ClientText, ClientAudioStart)):
            await self.send_error(ConversationBusyError("live mode is on: send live_end first"))
        elif isinstance(request, ClientInterrupt):
            if self.audio is not None:
                self.audio.close()
            await self.entry.conversation.interrupt(played_seconds=request.played_seconds)
        elif isinstance(request, ClientText):
            await self._start(request.text)
        elif isinstance(request, ClientAudioStart):
            self.audio = Channel(_AUDIO_BACKLOG)
            self.audio_rate = request.sample_rate
            await self._start(_drain(self.audio))
        elif isinstance(request, ClientAudioEnd):
            if self.audio is None:
                await self.send_error(InvalidInputError("audio_end without audio_start"))
            else:
                self.audio.close()
                self.audio = None

    async def _on_audio(self, data: bytes) -> None:
        if self.live_audio is not None:
            await self._on_live_audio(data)
            return
        if self.audio is None:
            await self.send_error(InvalidInputError("audio bytes without audio_start"))
            return
        if len(data) > _MAX_CHUNK_BYTES or len(data) % 2:
            await self.send_error(InvalidInputError("an audio chunk must be whole 16-bit samples"))
            return
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        with contextlib.suppress(ChannelClosed):  # the turn already ended (refused, interrupted)
            await self.audio.send(AudioChunk(samples, self.audio_rate))

    # -- turns ----------------------------------------------------------------------------------
    async def _start(self, user_input: Any) -> None:
        if self.state.closing:
            await self.send_error(ServerBusy(5.0), retry_after=5.0)
            return
        if self.turn is not None and not self.turn.done():
            await self.send_error(ConversationBusyError("a turn is already running"))
            return
        try:
            self.state.limiter.take(self.client)
        except RateLimited as exc:
            await self.send_error(exc, retry_after=exc.retry_after)
            if self.audio is not None:
                self.audio.close()
            return
        self.turn = asyncio.ensure_future(self._turn(user_input))

    async def _turn(self, user_input: Any) -> None:
        conversation = self.entry.conversation
        try:
            async with self.state.admission.slot():
                events = conversation.stream(user_input)
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, (TurnDone, TurnInterrupted)):
                            await self.state.keep_media(self.entry, event.reply)
                        for message in await self.encoder.encode(event):
                            await self.send(message)
                        self.entry.touch()
        except ServerBusy as exc:
            await self.send_error(exc, retry_after=exc.retry_after)
        except LexperienceError:
            pass  # the stream sent its ErrorEvent before raising
        except Exception as exc:  # the socket went away mid-turn
            log.info("stream of %s ended mid-turn: %s", self.entry.id, type(exc).__name__)
        finally:
            if self.audio is not None:
                self.audio.close()
                self.audio = None

    # -- live mode ------------------------------------------------------------------------------
    async def _on_live(self, request: Any) -> None:
        if isinstance(request, ClientPlayed):
            if self.live is not None:
                self.live.clock.report(request.turn_id, request.seconds, self.live.now)
            return
        if isinstance(request, ClientLiveEnd):
            if self.live_audio is None:
                await self.send_error(InvalidInputError("live_end without live_start"))
            else:
                self.live_audio.close()
            return
        # every live_start gets one live_ended: at the end, or right after the refusal's error
        refused = LiveEnded(turns=0).model_dump_json()
        if self.state.closing:
            await self.send_error(ServerBusy(5.0), retry_after=5.0)
            await self.send(refused)
            return
        if self.live_audio is not None or (self.turn is not None and not self.turn.done()):
            await self.send_error(ConversationBusyError("a turn or a live session is running"))
            await self.send(refused)
            return
        try:
            self.state.limiter.take(self.client)
            session = _live_session(self.entry.conversation, request)
        except RateLimited as exc:
            await self.send_error(exc, retry_after=exc.retry_after)
            await self.send(refused)
            return
        except LexperienceError as exc:
            await self.send_error(exc)
            await self.send(refused)
            return
        self.live, self.live_audio = session, Channel(_AUDIO_BACKLOG)
        self.audio_rate, self.live_channels = request.sample_rate, request.channels
        self.turn = asyncio.ensure_future(self._live_run(session, self.live_audio))

    async def _on_live_audio(self, data: bytes) -> None:
        assert self.live_audio is not None
        width = 2 * self.live_channels
        if len(data) > _MAX_CHUNK_BYTES or len(data) % width:
            await self.send_error(InvalidInputError(
                f"a live audio message must be whole frames of {self.live_channels} 16-bit "
                "samples"))  # fmt: skip
            return
        pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        item: Any
        if self.live_channels == 2:
            frames = pcm.reshape(-1, 2)
            item = DuplexChunk(AudioChunk(frames[:, 0].copy(), self.audio_rate),
                               AudioChunk(frames[:, 1].copy(), self.audio_rate))  # fmt: skip
        else:
            item = AudioChunk(pcm, self.audio_rate)
        with contextlib.suppress(ChannelClosed):  # live mode already ended
            await self.live_audio.send(item)

    async def _live_run(self, session: Any, audio: Channel[Any]) -> None:
        turns = 0
        try:
            async with self.state.admission.slot():  # a live session holds one turn slot
                events = session.run(_drain(audio))
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, TurnStarted):
                            turns += 1
                        if isinstance(event, (TurnDone, TurnInterrupted)):
                            await self.state.keep_media(self.entry, event.reply)
                        for message in await self.encoder.encode(event):
                            await self.send(message)
                        self.entry.touch()
        except ServerBusy as exc:
            await self.send_error(exc, retry_after=exc.retry_after)
        except LexperienceError as exc:
            await self.send_error(exc)
        except Exception as exc:  # the socket went away
            log.info("live stream of %s ended: %s", self.entry.id, type(exc).__name__)
            return
        finally:
            audio.close()
            self.live, self.live_audio = None, None
        with contextlib.suppress(Exception):  # (unless the socket went away meanwhile)
            await self.send(LiveEnded(turns=turns).model_dump_json())

    async def close(self) -> None:
        if self.live_audio is not None:
            self.live_audio.close()
        if self.audio is not None:
            self.audio.close()
        if self.turn is not None and not self.turn.done():
            await self.entry.conversation.interrupt()
            await cancel_and_wait(self.turn)
        self.encoder.close()


def _live_session(conversation: Any, request: ClientLiveStart) -> Any:
    from ..live import LiveOptions, LiveSession

    options: dict[str, Any] = {"preemptive": request.preemptive, "barge_in": request.barge_in}
    if request.end_of_turn_silence is None:
        return LiveSession(conversation, LiveOptions(**options))
    return LiveSession(
        conversation, LiveOptions.with_end_of_turn(request.end_of_turn_silence, **options)
    )


async def _drain(channel: Channel[Any]) -> Any:
    async for chunk in channel:
        yield chunk


async def serve_stream(ws: Any, state: ServiceState, conversation_id: str) -> None:
    """Run one WebSocket stream (the route handler of ``/v1/conversations/{id}/stream``)."""
    await ws.accept()
    token = _bearer(ws.headers.get("authorization")) or ws.query_params.get("access_token")
    client = state.client_key(token, ws.client.host if ws.client else None)
    if client is None:
        await ws.close(code=4401, reason="missing or wrong token")
        return
    entry = state.store.get(conversation_id)
    if entry is None:
        await ws.close(code=4404, reason="unknown conversation")
        return
    if entry.streams:
        await ws.close(code=4409, reason="this conversation already has a stream open")
        return
    binary = ws.query_params.get("binary", "0").lower() in ("1", "true", "yes")
    video = ws.query_params.get("video") or state.settings.video
    if video not in ("jpeg", "mp4", "none"):
        await ws.close(code=1008, reason="video must be jpeg, mp4 or none")
        return
    entry.streams += 1
    session = _Session(ws, state, entry, client, binary=binary, video=video)
    try:
        await session.run()
    except Exception as exc:  # a broken connection
        log.info("stream of %s closed: %s", conversation_id, type(exc).__name__)
    finally:
        entry.streams -= 1
        await session.close()


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None
