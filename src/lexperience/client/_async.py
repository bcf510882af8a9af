"""The asynchronous client of ``lexperience serve``: :class:`AsyncClient`."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode, urljoin

import numpy as np
from pydantic import BaseModel

from .._aio import cancel_and_wait
from .._optional import require
from ..errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    ConversationBusyError,
    InvalidInputError,
    LexperienceError,
    RateLimitError,
)
from ..live.input import DuplexChunk
from ..media import Audio, AudioChunk
from ..messages import Message
from ..server.schema import (
    ConversationInfo,
    CreateConversation,
    WireReply,
    parse_server_message,
    unpack_binary,
)

__all__ = ["AsyncClient", "AsyncConversation", "AsyncStream", "ServiceError"]

Question = str | Audio | bytes | os.PathLike[str]
_TURN_END = ("turn_done", "turn_interrupted", "error")


class ServiceError(BackendError):
    """The service failed or went away (HTTP 5xx, a dropped connection)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None, error_type: str | None = None) -> None:  # fmt: skip
        super().__init__(message, backend="lexperience-service", stage=None, retryable=retryable,
                         status=status)  # fmt: skip
        self.retry_after = retry_after
        self.error_type = error_type


def _typed_error(status: int, body: Any, reason: str) -> LexperienceError:
    """The lexperience error for an error response of the service."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):  # not our JSON: a proxy's page (nginx 502 when a worker died)
        detail = "the worker serving this conversation is gone" if status in (502, 504) else reason
        return ServiceError(
            f"the service answered HTTP {status} ({detail}); a conversation it held is lost: "
            "create a new one (its history can be passed on)",
            status=status, retryable=status >= 500, error_type="Unavailable",
        )  # fmt: skip
    message = str(error.get("message") or reason)
    retry_after = error.get("retry_after")
    kind = str(error.get("type") or "")
    if status == 401:
        return AuthenticationError(message, backend="lexperience-service", status=401)
    if status == 400:
        return ConfigurationError(message)
    if status == 409:
        return ConversationBusyError(message)
    if status in (413, 422):
        return InvalidInputError(message)
    if status == 429:
        err = RateLimitError(message, backend="lexperience-service", status=429)
        err.retry_after = retry_after  # type: ignore[attr-defined]
        return err
    if status == 504 or kind == "BackendTimeoutError":
        return BackendTimeoutError(message, backend=error.get("backend"), stage=error.get("stage"),
                                   status=status)  # fmt: skip
    return ServiceError(message, status=status, retryable=bool(error.get("retryable")) or status == 503,
                        retry_after=retry_after, error_type=kind)  # fmt: skip


class AsyncStream:
    """One WebSocket stream of a conversation: ask, read events, interrupt."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.session: Any = None

    async def _send(self, data: dict[str, Any] | bytes) -> None:
        await self._ws.send(data if isinstance(data, bytes) else json.dumps(data))

    async def ask(self, question: str) -> None:
        """Start a typed turn; read its events with :meth:`events`."""
        await self._send({"type": "text", "text": question})

    async def say(self, audio: Audio, *, chunk_seconds: float = 0.1) -> None:
        """Start a spoken turn: stream ``audio`` as 16-bit PCM chunks, then end it."""
        clip = audio if audio.sample_rate in (16_000, 24_000, 48_000) else audio.resample(16_000)
        await self._send({"type": "audio_start", "sample_rate": clip.sample_rate})
        step = max(1, int(chunk_seconds * clip.sample_rate))
        for start in range(0, len(clip), step):
            await self._send(clip.slice(start / clip.sample_rate,
                                        (start + step) / clip.sample_rate).to_pcm16())  # fmt: skip
        await self._send({"type": "audio_end"})

    async def interrupt(self, played_seconds: float | None = None) -> None:
        """Stop the running reply; the history keeps what was heard."""
        await self._send({"type": "interrupt", "played_seconds": played_seconds})

    # -- live mode ------------------------------------------------------------------------------
    async def live_start(self, *, sample_rate: int = 16_000, channels: int = 1,
                         preemptive: bool | None = None, end_of_turn_silence: float | None = None,
                         barge_in: bool = True) -> None:  # fmt: skip
        """Turn live mode on: send audio with :meth:`send_live_audio`, end with :meth:`live_end`."""
        self._live_rate, self._live_channels = sample_rate, channels
        await self._send({"type": "live_start", "sample_rate": sample_rate, "channels": channels,
                          "preemptive": preemptive, "end_of_turn_silence": end_of_turn_silence,
                          "barge_in": barge_in})  # fmt: skip

    async def send_live_audio(self, chunk: AudioChunk | DuplexChunk) -> None:
        """One piece of the microphone stream (with the loudspeaker's, on a 2-channel stream),
        resampled to the stream's rate."""
        rate = getattr(self, "_live_rate", 16_000)
        mic, ref = (chunk.mic, chunk.playback) if isinstance(chunk, DuplexChunk) else (chunk, None)
        pcm = mic.to_audio().resample(rate).samples
        if getattr(self, "_live_channels", 1) == 2:
            played = ref.to_audio().resample(rate).samples if ref is not None else pcm[:0]
            both = np.zeros((pcm.shape[0], 2), dtype=np.float32)
            both[:, 0] = pcm
            both[: played.shape[0], 1] = played[: pcm.shape[0]]
            pcm = both.reshape(-1)
        await self._send((np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes())

    async def played(self, turn_id: int, seconds: float) -> None:
        """Tell the server how much of a reply the listener has heard (live mode)."""
        await self._send({"type": "played", "turn_id": turn_id, "seconds": seconds})

    async def live_end(self) -> None:
        await self._send({"type": "live_end"})

    async def live(
        self,
        audio: Audio | AsyncIterable[AudioChunk | DuplexChunk],
        *,
        sample_rate: int = 16_000,
        channels: int = 1,
        chunk_seconds: float = 0.02,
        realtime: bool = False,
        **options: Any,
    ) -> AsyncGenerator[tuple[BaseModel, bytes | None], None]:
        """A whole live session: stream ``audio`` (a microphone stream, or a clip sent in
        ``chunk_seconds`` pieces, at real-time pace if ``realtime``), then ``live_end``; yield
        every server message until ``live_ended``. ``options``: ``preemptive``,
        ``end_of_turn_silence``, ``barge_in``."""
        await self.live_start(sample_rate=sample_rate, channels=channels, **options)

        async def send() -> None:
            async for chunk in _chunks(audio, chunk_seconds, realtime):
                await self.send_live_audio(chunk)
            await self.live_end()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                message, payload = await self.receive()
                yield message, payload
                if getattr(message, "type", None) == "live_ended":  # also after a refusal
                    break
            await asyncio.wait({sender})
        finally:
            await cancel_and_wait(sender)

    async def receive(self) -> tuple[BaseModel, bytes | None]:
        """The next server message (its wire model) and, in binary mode, its media payload.

        Raises:
            ServiceError: the stream broke (the server, or the worker holding the
                conversation, went away).
        """
        closed = require("websockets", "client").exceptions.ConnectionClosed
        try:
            raw = await self._ws.recv()
        except closed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            raise ServiceError(
                f"the stream closed (code {code}): the server or its worker went away; the "
                "conversation may be lost", retryable=True,
            ) from exc  # fmt: skip
        if isinstance(raw, bytes):
            header, payload = unpack_binary(raw)
            return parse_server_message(header), payload
        return parse_server_message(raw), None

    async def events(self) -> AsyncIterator[tuple[BaseModel, bytes | None]]:
        """The messages of the current turn, up to and including its closing event."""
        while True:
            message, payload = await self.receive()
            yield message, payload
            if getattr(message, "type", None) in _TURN_END:
                return

    async def close(self) -> None:
        await self._ws.close()


async def _chunks(
    audio: Audio | AsyncIterable[AudioChunk | DuplexChunk], seconds: float, realtime: bool
) -> AsyncIterator[AudioChunk | DuplexChunk]:
    if not isinstance(audio, Audio):
        async for chunk in audio:
            yield chunk
        return
    step = max(1, int(seconds * audio.sample_rate))
    for start in range(0, len(audio), step):
        piece = audio.samples[start : start + step]
        yield AudioChunk(piece, audio.sample_rate)
        await asyncio.sleep(piece.shape[0] / audio.sample_rate if realtime else 0)


class AsyncConversation:
    """A conversation on the service."""

    def __init__(self, client: AsyncClient, info: ConversationInfo) -> None:
        self._client = client
        self.info = info

    @property
    def id(self) -> str:
        return self.info.id

    async def ask(self, question: Question, *, content_type: str = "audio/wav") -> WireReply:
        """One whole turn over HTTP: text, an :class:`Audio`, audio file bytes or a path."""
        path = f"/v1/conversations/{self.id}/turns"
        if isinstance(question, str):
            body = await self._client._request("POST", path, json={"text": question})
        else:
            if isinstance(question, Audio):
                data, name = question.to_wav_bytes(), "question.wav"
            elif isinstance(question, (bytes, bytearray)):
                data, name = bytes(question), "question"
            else:
                file = Path(question)
                data, name = file.read_bytes(), file.name
            files = {"audio": (name, data, content_type)}
            body = await self._client._request("POST", path, files=files)
        return WireReply.model_validate(body)

    async def refresh(self) -> ConversationInfo:
        self.info = ConversationInfo.model_validate(
            await self._client._request("GET", f"/v1/conversations/{self.id}")
        )
        return self.info

    async def download(self, url: str) -> bytes:
        """The bytes of a reply medium (a URL from ``WireReply.media``)."""
        response = await self._client._raw("GET", url)
        return bytes(response.content)

    def stream(
        self, *, binary: bool = False, video: Literal["jpeg", "mp4", "none"] = "jpeg"
    ) -> Any:
        """A WebSocket stream (``async with conv.stream() as s: ...``)."""
        return self._client._stream(self.id, binary=binary, video=video)

    async def delete(self) -> None:
        await self._client._request("DELETE", f"/v1/conversations/{self.id}")


class AsyncClient:
    """Talks to ``lexperience serve`` over HTTP and WebSocket.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        token: the bearer token (default ``LEXPERIENCE_TOKEN``).
        timeout: seconds to wait for a response (a whole turn over HTTP).
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 120.0) -> None:
        httpx = require("httpx", "client", feature="the lexperience service client")
        self.base_url = base_url.rstrip("/")
        self._token = token if token is not None else os.environ.get("LEXPERIENCE_TOKEN") or None
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)
        self._httpx = httpx

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _raw(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, url, **kwargs)
        except self._httpx.TimeoutException as exc:
            raise BackendTimeoutError(f"the service did not answer in time ({type(exc).__name__})",
                                      backend="lexperience-service") from exc  # fmt: skip
        except self._httpx.HTTPError as exc:
            raise ServiceError(f"could not talk to the service at {self.base_url}: "
                               f"{type(exc).__name__}", retryable=True) from exc  # fmt: skip
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise _typed_error(response.status_code, body, response.reason_phrase)
        return response

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self._raw(method, url, **kwargs)
        return response.json() if response.content else None

    async def health(self) -> dict[str, Any]:
        return dict(await self._request("GET", "/healthz"))

    async def ready(self) -> bool:
        try:
            await self._request("GET", "/readyz")
        except ServiceError:
            return False
        return True

    async def create_conversation(
        self,
        *,
        persona: str = "default",
        stt: str | None = None,
        llm: str | None = None,
        tts: str | None = None,
        avatar: str | None = None,
        history: Sequence[Message] = (),
    ) -> AsyncConversation:
        body = CreateConversation(persona=persona, stt=stt, llm=llm, tts=tts, avatar=avatar,
                                  history=list(history))  # fmt: skip
        data = await self._request("POST", "/v1/conversations",
                                   json=body.model_dump(mode="json", exclude_none=True))  # fmt: skip
        return AsyncConversation(self, ConversationInfo.model_validate(data))

    def _stream(self, conversation_id: str, *, binary: bool, video: str) -> Any:
        import contextlib

        ws_mod = require("websockets", "client", feature="the lexperience service client")
        base = self.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        query = urlencode({"binary": int(binary), "video": video})
        url = urljoin(base + "/", f"v1/conversations/{conversation_id}/stream?{query}")
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None

        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[AsyncStream]:
            from websockets.asyncio.client import connect

            try:
                ws = await connect(url, additional_headers=headers, max_size=64 * 1024 * 1024,
                                   compression=None)  # fmt: skip
            except (OSError, ws_mod.exceptions.WebSocketException) as exc:
                raise ServiceError(f"could not open the stream: {type(exc).__name__}: {exc}",
                                   retryable=True) from exc  # fmt: skip
            stream = AsyncStream(ws)
            try:
                first, _ = await stream.receive()
            except ws_mod.exceptions.ConnectionClosed as exc:
                await ws.close()
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                reason = exc.rcvd.reason if exc.rcvd is not None else ""
                if code == 4401:
                    raise AuthenticationError(reason, backend="lexperience-service") from exc
                if code == 4404:
                    raise ServiceError(f"unknown conversation ({reason})", status=404) from exc
                raise ServiceError(f"the stream closed at once (code {code}: {reason})") from exc
            stream.session = first
            try:
                yield stream
            finally:
                await ws.close()

        return opened()
