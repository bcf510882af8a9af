"""ElevenLabs text to speech, streamed as raw PCM with character alignment turned into visemes.

Two transports:

* ``mode="http"`` (default): one ``POST /v1/text-to-speech/{voice}/stream/with-timestamps`` per
  sentence. The NDJSON answer carries base64 PCM and the timing of every character, which
  becomes :class:`~lexperience.visemes.VisemeCue` s on each :class:`AudioChunk` (times relative to
  the chunk). ``alignment=False`` uses the plain ``/stream`` endpoint instead.
* ``mode="websocket"``: the ``stream-input`` websocket, which also accepts *text* as a stream:
  :meth:`ElevenLabsTTS.stream_text` sends LLM deltas as they come and yields audio meanwhile.

The SDK's streaming calls never retry and silently skip NDJSON lines they cannot parse, so this
backend retries 408/409/429/5xx, timeouts and dropped connections itself (before the first chunk
only, with :func:`lexperience.backends._cloud.retry_stream`) and checks that the audio that
arrived covers the text; if not, it raises a retryable :class:`BackendError`. An error keeps the
``request-id`` ElevenLabs gave the request (``BackendError.request_id``).

Install with ``pip install "lexperience[elevenlabs]"``; the key comes from ``api_key=`` or
``ELEVENLABS_API_KEY``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any, Literal, get_args
from urllib.parse import urlencode, urlparse, urlunparse

from .._aio import cancel_and_wait
from .._optional import require
from ..errors import ConfigurationError
from ..media import AudioChunk
from ._cloud import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ConnectOptions,
    ErrorMapper,
    LoopLocal,
    Secret,
    connect_options,
    resolve_api_key,
    retry,
    retry_stream,
)
from ._elevenlabs_timeline import Timeline, chunk_text

__all__ = ["DEFAULT_VOICE", "ConnectOptions", "ElevenLabsTTS", "OutputFormat"]

log = logging.getLogger(__name__)

OutputFormat = Literal["pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100"]
Mode = Literal["http", "websocket"]

#: "George", one of ElevenLabs' premade voices (available on every account).
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"
ENV_KEY = "ELEVENLABS_API_KEY"
ENV_BASE_URL = "ELEVENLABS_BASE_URL"
DEFAULT_BASE_URL = "https://api.elevenlabs.io"


class ElevenLabsTTS:
    """Speaks text with an ElevenLabs voice, streamed, with viseme cues from the alignment.

    Args:
        voice: a voice id (default: the premade "George"). A :class:`Conversation` passes the
            persona's ``voices["elevenlabs"]``.
        model: ``eleven_flash_v2_5`` (default, ~75 ms model latency), ``eleven_turbo_v2_5``,
            ``eleven_multilingual_v2``, ``eleven_v3``...
        output_format: ``pcm_16000``, ``pcm_22050``, ``pcm_24000`` (default) or ``pcm_44100``
            (Pro tier). Raw PCM only: the pipeline needs samples, not MP3.
        mode: ``"http"`` (default) or ``"websocket"`` (the ``stream-input`` API).
        alignment: request character timings and attach viseme cues (HTTP mode).
        language_code: force a language (ISO 639-1) on models that support it.
        voice_settings: e.g. ``{"stability": 0.5, "similarity_boost": 0.75, "speed": 1.0}``.
        speed: speaking speed, 0.7-1.2 (ElevenLabs' range; sent as ``voice_settings.speed``);
            ``None`` keeps the voice's own. A persona's ``speaking_rate`` arrives here.
        optimize_streaming_latency: 0-4 (HTTP mode; see the ElevenLabs docs).
        chunk_length_schedule: websocket buffering schedule in characters (default ``[50]``:
            start speaking after 50 characters).
        api_key: the key; default ``ELEVENLABS_API_KEY``.
        base_url: the API root without ``/v1`` (default ``ELEVENLABS_BASE_URL`` or
            https://api.elevenlabs.io).
        websocket_url: the websocket root (default: ``base_url`` with ws/wss), or a full URL
            containing ``{voice_id}``.
        timeout: seconds to wait for the next bytes (default 30; the SDK's is 240).
        max_retries: retries of 408/409/429/5xx, timeouts and connection errors, before the
            first chunk of a sentence only (what was already spoken cannot be taken back).
        conn_options: a :class:`ConnectOptions` instead of ``timeout``/``max_retries`` (also sets
            the back-off).
    """

    name = "elevenlabs"

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        model: str = "eleven_flash_v2_5",
        output_format: OutputFormat = "pcm_24000",
        mode: Mode = "http",
        alignment: bool = True,
        language_code: str | None = None,
        voice_settings: Mapping[str, Any] | None = None,
        speed: float | None = None,
        optimize_streaming_latency: int | None = None,
        chunk_length_schedule: Sequence[int] | None = None,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        websocket_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        conn_options: ConnectOptions | None = None,
    ) -> None:
        if output_format not in get_args(OutputFormat):
            raise ConfigurationError(
                f"output_format must be one of {', '.join(get_args(OutputFormat))} (raw PCM), "
                f"got {output_format!r}"
            )
        if mode not in ("http", "websocket"):
            raise ConfigurationError(f"mode must be 'http' or 'websocket', got {mode!r}")
        if not voice or not isinstance(voice, str):
            raise ConfigurationError("voice must be an ElevenLabs voice id")
        if optimize_streaming_latency is not None and optimize_streaming_latency not in range(5):
            raise ConfigurationError("optimize_streaming_latency must be 0-4")
        self.voice = voice
        self.model = model
        self.output_format: OutputFormat = output_format
        self.sample_rate: int = int(output_format.split("_")[1])
        self.mode: Mode = mode
        self.alignment = alignment
        self.language_code = language_code
        self.voice_settings = dict(voice_settings) if voice_settings else None
        if speed is not None:
            if isinstance(speed, bool) or not isinstance(speed, (int, float)):
                raise ConfigurationError(f"speed must be a number, got {speed!r}")
            if not 0.7 <= speed <= 1.2:
                raise ConfigurationError(
                    f"speed must be within 0.7-1.2 for ElevenLabs, got {speed}"
                )
            if self.voice_settings and "speed" in self.voice_settings:
                raise ConfigurationError("give speed or voice_settings['speed'], not both")
            self.voice_settings = {**(self.voice_settings or {}), "speed": float(speed)}
        self.optimize_streaming_latency = optimize_streaming_latency
        self.chunk_length_schedule = list(chunk_length_schedule or [50])
        self.options = connect_options(conn_options, timeout=timeout, max_retries=max_retries)
        self._key: Secret = resolve_api_key(  # type: ignore[assignment]
            api_key, env_var=ENV_KEY, backend="elevenlabs"
        )
        root = (base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
        if not urlparse(root).scheme.startswith("http"):
            raise ConfigurationError(f"base_url must be an http(s) URL, got {root!r}")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]  # the SDK adds /v1 itself
        self.base_url = root
        if websocket_url is None:
            parsed = urlparse(root)
            websocket_url = urlunparse(
                parsed._replace(scheme="wss" if parsed.scheme == "https" else "ws")
            )
        elif not urlparse(websocket_url).scheme.startswith("ws"):
            raise ConfigurationError(
                f"websocket_url must be a ws:// or wss:// URL: {websocket_url!r}"
            )
        self.websocket_url = websocket_url.rstrip("/")
        self.errors = ErrorMapper(
            service="ElevenLabs", backend="elevenlabs", stage="tts", secrets=(self._key,)
        )
        self._client: LoopLocal[Any] = LoopLocal(self._build, _close_client)

    def __repr__(self) -> str:
        return (
            f"ElevenLabsTTS(voice={self.voice!r}, model={self.model!r}, "
            f"output_format={self.output_format!r}, mode={self.mode!r})"
        )

    @property
    def conn_options(self) -> ConnectOptions:
        """The timeout and retry options in effect."""
        return self.options

    @property
    def timeout(self) -> float | None:
        return self.options.timeout

    @property
    def max_retries(self) -> int:
        return self.options.max_retries

    def _build(self) -> Any:
        elevenlabs = require("elevenlabs", "elevenlabs", feature="the ElevenLabs TTS backend")
        log.debug("building an ElevenLabs client for %s", self.base_url)
        return elevenlabs.AsyncElevenLabs(
            api_key=self._key.get(),
            base_url=self.base_url,
            timeout=self.timeout if self.timeout is not None else 3600.0,
        )

    async def aopen(self) -> None:
        """Build the SDK client of the running event loop now, not in the first turn
        (:class:`Conversation` calls this once). Nothing goes over the network."""
        self._client.get()

    async def aclose(self) -> None:
        """Close the HTTP connection pool (idempotent; the backend can be used again)."""
        await self._client.aclose()

    # -- the TTS protocol ---------------------------------------------------------------------
    def stream(self, text: str) -> AsyncIterator[AudioChunk]:
        """Yield the speech for ``text``, first chunk as soon as it arrives."""
        if self.mode == "websocket":
            return self._websocket(_once(text), text=text)
        return retry_stream(
            lambda: self._http_once(text),
            mapper=self.errors,
            options=self.options,
            what="speech stream",
        )

    async def stream_text(self, text_chunks: AsyncIterable[str]) -> AsyncIterator[AudioChunk]:
        """Speak text that is itself still streaming in (e.g. LLM deltas), over the websocket.

        Text is forwarded at word boundaries as it arrives; audio chunks are yielded as soon as
        ElevenLabs sends them, while more text is still being sent.
        """
        async for chunk in self._websocket(text_chunks, text=None):
            yield chunk

    # -- HTTP ---------------------------------------------------------------------------------
    def _http_params(self, text: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "text": text,
            "model_id": self.model,
            "output_format": self.output_format,
            "request_options": {"max_retries": 0},
        }
        if self.language_code:
            params["language_code"] = self.language_code
        if self.optimize_streaming_latency is not None:
            params["optimize_streaming_latency"] = self.optimize_streaming_latency
        if self.voice_settings:
            elevenlabs = require("elevenlabs", "elevenlabs")
            params["voice_settings"] = elevenlabs.VoiceSettings(**self.voice_settings)
        return params

    async def _http_once(self, text: str) -> AsyncIterator[AudioChunk]:
        client = self._client.get()
        timeline = Timeline(self.sample_rate, text)
        tts = client.text_to_speech
        if self.alignment:
            stream = tts.stream_with_timestamps(self.voice, **self._http_params(text))
        else:
            stream = tts.stream(self.voice, **self._http_params(text))
        try:
            async for item in stream:
                if isinstance(item, (bytes, bytearray)):
                    data = bytes(item)
                else:
                    data = self._decode(getattr(item, "audio_base_64", None))
                    align = getattr(item, "alignment", None)
                    if align is not None:
                        timeline.add_alignment(
                            getattr(align, "characters", None) or [],
                            getattr(align, "character_start_times_seconds", None) or [],
                            getattr(align, "character_end_times_seconds", None) or [],
                        )
                chunk = timeline.audio(data)
                if chunk is not None:
                    yield chunk
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
        problem = timeline.problem()
        if problem is not None:
            raise self.errors.error(f"{problem} (text {text[:60]!r})", retryable=True)

    def _decode(self, value: object) -> bytes:
        if not value:
            return b""
        if not isinstance(value, str):
            raise self.errors.error("an audio chunk is not base64 text", retryable=True)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.errors.error(
                f"an audio chunk is not valid base64 ({exc})", retryable=True
            ) from exc

    # -- websocket ----------------------------------------------------------------------------
    def _ws_url(self) -> str:
        query = {
            "model_id": self.model,
            "output_format": self.output_format,
            "sync_alignment": "true",
        }
        if self.language_code:
            query["language_code"] = self.language_code
        if "{voice_id}" in self.websocket_url:
            base = self.websocket_url.format(voice_id=self.voice)
        else:
            base = f"{self.websocket_url}/v1/text-to-speech/{self.voice}/stream-input"
        return f"{base}?{urlencode(query)}"

    async def _connect(self) -> Any:
        require("websockets", "elevenlabs", feature="the ElevenLabs websocket mode")
        try:
            from websockets.asyncio.client import connect
        except ImportError as exc:  # websockets < 13 has no asyncio client module
            raise ConfigurationError(
                'the ElevenLabs websocket mode needs websockets>=13: pip install -U "websockets>=13"'
            ) from exc

        async def once() -> Any:
            return await connect(
                self._ws_url(),
                additional_headers={"xi-api-key": self._key.get()},
                open_timeout=self.timeout,
                max_size=2**24,
            )

        return await retry(
            once, mapper=self.errors, options=self.options, what="websocket handshake"
        )

    async def _send_text(self, ws: Any, text_chunks: AsyncIterable[str]) -> None:
        init: dict[str, Any] = {
            "text": " ",
            "generation_config": {"chunk_length_schedule": self.chunk_length_schedule},
        }
        if self.voice_settings:
            init["voice_settings"] = self.voice_settings
        await ws.send(json.dumps(init))
        buffer = ""
        async for piece in text_chunks:
            if not piece:
                continue
            ready, buffer = chunk_text([piece], buffer)
            for text in ready:
                await ws.send(json.dumps({"text": text}))
        if buffer.strip():
            await ws.send(json.dumps({"text": buffer if buffer.endswith(" ") else buffer + " "}))
        await ws.send(json.dumps({"text": " ", "flush": True}))
        await ws.send(json.dumps({"text": ""}))  # end of input: the server finishes and closes

    async def _websocket(
        self, text_chunks: AsyncIterable[str], *, text: str | None
    ) -> AsyncIterator[AudioChunk]:
        closed_ok = require("websockets", "elevenlabs").exceptions.ConnectionClosedOK
        ws = await self._connect()
        started = time.perf_counter()
        timeline = Timeline(self.sample_rate, text)
        sender = asyncio.ensure_future(self._send_text(ws, text_chunks))
        receiver: asyncio.Future[Any] | None = None
        try:
            with self.errors.mapped():
                while True:
                    if receiver is None:
                        receiver = asyncio.ensure_future(ws.recv())
                    waiting: set[asyncio.Future[Any]] = {receiver}
                    if not sender.done():
                        waiting.add(sender)
                    # While text is still being sent, silence is legitimate (the LLM is slow);
                    # once it is all sent, the answer must keep coming.
                    timeout = None if not sender.done() else self.timeout
                    done, _ = await asyncio.wait(
                        waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if sender in done and sender.exception() is not None:
                        raise sender.exception()  # type: ignore[misc]
                    if receiver not in done:
                        if sender.done() and not done:
                            raise self.errors.timeout(
                                f"ElevenLabs sent nothing for {self.timeout:g} s"
                            )
                        continue
                    task, receiver = receiver, None
                    try:
                        message = task.result()
                    except closed_ok:
                        break
                    chunk, final = self._ws_message(message, timeline)
                    if chunk is not None:
                        if timeline.samples == chunk.samples.shape[0]:
                            log.debug(
                                "ElevenLabs websocket: first audio after %.3f s",
                                time.perf_counter() - started,
                            )
                        yield chunk
                    if final:
                        break
        finally:
            await cancel_and_wait(*(t for t in (receiver, sender) if t is not None))
            with contextlib.suppress(Exception):
                await ws.close()
        problem = timeline.problem()
        if problem is not None:
            raise self.errors.error(problem, retryable=True)

    def _ws_message(self, message: Any, timeline: Timeline) -> tuple[AudioChunk | None, bool]:
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        try:
            data = json.loads(message)
        except ValueError as exc:
            raise self.errors.error(
                f"ElevenLabs sent a malformed message ({exc})", retryable=True
            ) from exc
        if not isinstance(data, dict):
            raise self.errors.error("ElevenLabs sent a malformed message", retryable=True)
        if data.get("error") or (data.get("message") and not data.get("audio")):
            detail = data.get("message") or data.get("error")
            code = str(data.get("error") or data.get("code") or "")
            auth = "auth" in code or "api_key" in code or "unauthor" in str(detail).lower()
            if auth:
                raise self.errors.status(401, detail)
            retryable = "quota" not in code and "invalid" not in code
            raise self.errors.error(f"ElevenLabs reported an error: {detail}", retryable=retryable)
        chunk = None
        audio = data.get("audio")
        if audio:
            align = data.get("alignment") or data.get("normalizedAlignment")
            if isinstance(align, dict):
                timeline.add_relative_alignment(
                    align.get("chars") or [],
                    align.get("charStartTimesMs") or [],
                    align.get("charDurationsMs") or [],
                )
            chunk = timeline.audio(self._decode(audio))
        return chunk, bool(data.get("isFinal"))


async def _once(text: str) -> AsyncIterator[str]:
    yield text


async def _close_client(client: Any) -> None:
    wrapper = getattr(client, "_client_wrapper", None)
    httpx_client = getattr(getattr(wrapper, "httpx_client", None), "httpx_client", None)
    if httpx_client is not None:
        await httpx_client.aclose()
