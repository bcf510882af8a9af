"""Lip-sync video from a model on Replicate (DreamTalk by default), one clip per sentence.

Replicate models return one MP4 per prediction, so this avatar adapts them to the streaming
:class:`~lexperience.protocols.Avatar` contract:

1. the audio chunks of one sentence (``AudioChunk.sentence_index``) are gathered; as soon as the
   sentence is complete (the next one starts, the stream ends, or nothing new arrives for
   ``flush_after`` seconds) its WAV is sent to a prediction, so the first sentence's clip is
   being rendered while later sentences are still being spoken;
2. the prediction is created (``predictions.create``) and polled until it succeeds, fails or
   ``prediction_timeout`` passes; up to ``max_concurrency`` run at once;
3. the output MP4 is downloaded, checked (a real video container with a video stream), decoded
   with PyAV and fitted (letterboxed) to ``size``;
4. exactly as many frames as the audio needs are yielded: frame boundaries are
   ``round(t * fps)`` of the cumulative audio time, so each sentence gets
   ``round(duration * fps)`` frames (±1 from rounding) and the total is
   ``round(total_audio_seconds * fps)``: audio and video never drift. The clip is sampled by
   time: frames are dropped or repeated when its length or rate differs from the audio's.

On cancellation (:meth:`Conversation.interrupt`) every running prediction is cancelled on
Replicate (``POST /v1/predictions/{id}/cancel``) before :meth:`animate` exits, so nothing keeps
running (or billing).

Models are described by :class:`ReplicateModel`; ``"dreamtalk"`` (``cjwbw/dreamtalk``, the
prototype's model) and ``"sadtalker"`` (``cjwbw/sadtalker``) are built in, any other by a spec.
Install with ``pip install "lexperience[replicate]"``; the token comes from ``api_token=`` or
``REPLICATE_API_TOKEN``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._optional import require
from ..errors import ConfigurationError
from ..media import Audio, AudioChunk, VideoFrame
from ._cloud import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ErrorMapper,
    LoopLocal,
    Secret,
    check_retries,
    check_timeout,
    resolve_api_key,
    retry,
)

__all__ = [
    "DREAMTALK",
    "MODELS",
    "SADTALKER",
    "ReplicateAvatar",
    "ReplicateModel",
    "decode_clip",
    "sample_frames",
]

from ._replicate_media import (
    DREAMTALK,
    MODELS,
    SADTALKER,
    NotAVideoError,
    ReplicateModel,
    decode_clip,
    sample_frames,
)

log = logging.getLogger(__name__)

ENV_KEY = "REPLICATE_API_TOKEN"
_TERMINAL = ("succeeded", "failed", "canceled")
_PORTRAIT_TTL = 12 * 3600.0  # Replicate keeps uploaded files for a day; re-upload well before
_CANCEL_TIMEOUT = 5.0


@dataclass
class _Segment:
    """Consecutive audio of one sentence and the frames it is owed."""

    index: int
    sentence: int
    chunks: list[AudioChunk]
    first_frame: int
    n_frames: int


@dataclass
class _Session:
    """State of one :meth:`ReplicateAvatar.animate` call."""

    client: Any
    semaphore: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # portrait upload, version lookup


class ReplicateAvatar:
    """A talking head rendered by a lip-sync model on Replicate, one clip per sentence.

    Args:
        portrait: the face image (path). A :class:`Conversation` passes ``persona.portrait``.
            Required for now (the built-in drawn host will be offered as a default later).
        model: ``"dreamtalk"`` (default), ``"sadtalker"``, ``"owner/model[:version]"``, a
            mapping of :class:`ReplicateModel` fields, or a :class:`ReplicateModel`.
        inputs: extra model inputs that override the spec's (e.g. ``{"num_inference_steps": 5}``).
        fps: output frame rate.
        size: output frame size ``(width, height)``; clips are scaled to fit (letterboxed).
        api_token: the token; default ``REPLICATE_API_TOKEN``. ``api_key`` is an alias (the
            name the other cloud backends use).
        base_url: the API root without ``/v1`` (default ``REPLICATE_BASE_URL`` or
            https://api.replicate.com).
        timeout: seconds one HTTP request may wait for bytes (default 30).
        max_retries: retries of rate-limited (429) and unavailable (503) POSTs and of failed
            downloads; the SDK already retries its GETs.
        poll_interval: seconds between status checks of a running prediction (default
            ``REPLICATE_POLL_INTERVAL`` or 0.5).
        prediction_timeout: the longest a prediction may take before it is cancelled and a
            :class:`BackendTimeoutError` raised (default 300 s; cold boots take minutes).
        max_concurrency: predictions running at once per reply.
        upload: ``"files"`` uploads the portrait (once) and each WAV to Replicate's file API;
            ``"data-uri"`` inlines them in the request (no extra round trip; fine for the short
            WAVs of single sentences, less so for large portraits).
        audio_sample_rate: the WAV sent to the model is resampled to this rate (DreamTalk and
            SadTalker work at 16 kHz).
        flush_after: render a sentence when no new audio has arrived for this many seconds,
            even if the next sentence has not started (``None``: wait for it).
        max_download_bytes: refuse larger outputs.
    """

    name = "replicate"

    def __init__(
        self,
        *,
        portrait: str | os.PathLike[str] | None = None,
        model: str | ReplicateModel | Mapping[str, Any] = "dreamtalk",
        inputs: Mapping[str, Any] | None = None,
        fps: float = 25.0,
        size: tuple[int, int] = (512, 512),
        api_token: str | Secret | None = None,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        poll_interval: float | None = None,
        prediction_timeout: float | None = 300.0,
        max_concurrency: int = 2,
        upload: Literal["files", "data-uri"] = "files",
        audio_sample_rate: int = 16_000,
        flush_after: float | None = 1.0,
        max_download_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if portrait is None:
            raise ConfigurationError(
                "ReplicateAvatar needs a portrait: pass portrait='face.jpg' or set the persona's "
                "portrait (a built-in default face is planned)"
            )
        path = Path(portrait).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"portrait image not found: {path}")
        if not fps or fps <= 0 or fps > 120:
            raise ConfigurationError("fps must be between 0 and 120")
        if len(size) != 2 or not all(isinstance(v, int) and 16 <= v <= 4096 for v in size):
            raise ConfigurationError("size must be (width, height) in pixels, 16-4096 each")
        if upload not in ("files", "data-uri"):
            raise ConfigurationError("upload must be 'files' or 'data-uri'")
        if poll_interval is None:
            try:
                poll_interval = float(os.environ.get("REPLICATE_POLL_INTERVAL", "0.5"))
            except ValueError:
                raise ConfigurationError("REPLICATE_POLL_INTERVAL must be a number") from None
        if poll_interval <= 0:
            raise ConfigurationError("poll_interval must be positive")
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be >= 1")
        self.portrait = path
        self.model = ReplicateModel.parse(model)
        self.inputs = dict(inputs or {})
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))
        self.base_url = (base_url or os.environ.get("REPLICATE_BASE_URL") or "").rstrip("/") or None
        if self.base_url is not None and self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]  # the SDK adds /v1 itself
        self.timeout = check_timeout(timeout)
        self.max_retries = check_retries(max_retries)
        self.poll_interval = float(poll_interval)
        self.prediction_timeout = check_timeout(prediction_timeout, "prediction_timeout")
        self.max_concurrency = int(max_concurrency)
        self.upload = upload
        self.audio_sample_rate = int(audio_sample_rate)
        self.flush_after = check_timeout(flush_after, "flush_after")
        self.max_download_bytes = int(max_download_bytes)
        if api_token is not None and api_key is not None:
            raise ConfigurationError("pass api_token or api_key, not both")
        self._token: Secret = resolve_api_key(  # type: ignore[assignment]
            api_token if api_token is not None else api_key, env_var=ENV_KEY, backend="replicate"
        )
        self.errors = ErrorMapper(
            service="Replicate", backend="replicate", stage="avatar", secrets=(self._token,)
        )
        self._client: LoopLocal[Any] = LoopLocal(self._build, _close_client)
        self._http: LoopLocal[Any] = LoopLocal(self._build_http, lambda c: c.aclose())
        self._version: str | None = self.model.version
        self._portrait_ref: tuple[str, float] | None = None  # (url, uploaded at)

    def __repr__(self) -> str:
        version = f":{self.model.version[:12]}" if self.model.version else ""
        return (
            f"ReplicateAvatar(model={self.model.name + version!r}, fps={self.fps:g}, "
            f"size={self.size[0]}x{self.size[1]}, portrait={self.portrait.name!r})"
        )

    # -- clients ------------------------------------------------------------------------------
    def _httpx_timeout(self) -> Any:
        httpx = require("httpx", "replicate")
        if self.timeout is None:
            return httpx.Timeout(None)
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    def _build(self) -> Any:
        replicate = require("replicate", "replicate", feature="the Replicate avatar")
        client = replicate.Client(
            api_token=self._token.get(), base_url=self.base_url, timeout=self._httpx_timeout()
        )
        client.poll_interval = self.poll_interval
        return client

    def _build_http(self) -> Any:
        httpx = require("httpx", "replicate")
        # Output URLs point at a CDN: no Authorization header goes there.
        return httpx.AsyncClient(timeout=self._httpx_timeout(), follow_redirects=True)

    async def aopen(self) -> None:
        """Upload the portrait and look up the model version before the first reply, so the
        first sentence's prediction starts one round trip sooner (:class:`Conversation` calls
        this once)."""
        session = _Session(self._client.get(), asyncio.Semaphore(1))
        await self._portrait(session)
        async with session.lock:
            await self._resolve_version(session.client)

    async def aclose(self) -> None:
        """Close the HTTP connection pools."""
        await self._client.aclose()
        await self._http.aclose()

    # -- the Avatar protocol ------------------------------------------------------------------
    async def animate(self, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[VideoFrame]:
        """Yield ``fps`` frames per second of ``audio``, one Replicate clip per sentence."""
        session = _Session(self._client.get(), asyncio.Semaphore(self.max_concurrency))
        inbox: asyncio.Queue[AudioChunk | None] = asyncio.Queue()
        jobs: asyncio.Queue[tuple[_Segment, asyncio.Task[list[np.ndarray]]] | None] = (
            asyncio.Queue()
        )
        tasks: list[asyncio.Task[Any]] = []
        reader = asyncio.ensure_future(self._read(audio, inbox))
        planner = asyncio.ensure_future(self._plan(inbox, jobs, session, tasks))
        background: list[asyncio.Future[Any]] = [reader, planner]
        index = 0
        try:
            while True:
                item = await self._next_job(jobs, background, tasks)
                if item is None:
                    break
                _, task = item
                images = await self._finish(task, background, tasks)
                for image in images:
                    yield VideoFrame(image, index, self.fps)
                    index += 1
            await reader  # surface a reader error, if any
        finally:
            pending = [t for t in (*background, *tasks) if not t.done()]
            for future in pending:
                future.cancel()
            if pending:
                # Each render task cancels its prediction on Replicate before it ends.
                await asyncio.gather(*pending, return_exceptions=True)

    async def _read(
        self, audio: AsyncIterable[AudioChunk], inbox: asyncio.Queue[AudioChunk | None]
    ) -> None:
        try:
            async for chunk in audio:
                if chunk.samples.size:
                    inbox.put_nowait(chunk)
        finally:
            inbox.put_nowait(None)

    async def _plan(
        self,
        inbox: asyncio.Queue[AudioChunk | None],
        jobs: asyncio.Queue[tuple[_Segment, asyncio.Task[list[np.ndarray]]] | None],
        session: _Session,
        tasks: list[asyncio.Task[Any]],
    ) -> None:
        """Group chunks into sentence segments and start a render task for each, in order."""
        rate: int | None = None
        total = 0  # samples of audio seen, at ``rate``
        open_chunks: list[AudioChunk] = []
        open_start = 0  # sample where the open segment starts
        segments = 0

        def close() -> None:
            nonlocal open_chunks, open_start, segments
            if not open_chunks or rate is None:
                return
            first = round(open_start * self.fps / rate)
            last = round(total * self.fps / rate)
            seg = _Segment(
                segments, open_chunks[0].sentence_index, open_chunks, first, last - first
            )
            segments += 1
            task = asyncio.ensure_future(self._render(seg, session))
            tasks.append(task)
            jobs.put_nowait((seg, task))
            open_chunks, open_start = [], total

        getter: asyncio.Future[AudioChunk | None] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(inbox.get())
                # wait() never loses the item on a timeout (wait_for on a get() can, on 3.10)
                timeout = self.flush_after if open_chunks else None
                done, _ = await asyncio.wait({getter}, timeout=timeout)
                if not done:
                    close()  # the next sentence is slow to come: render this one now
                    continue
                chunk, getter = getter.result(), None
                if chunk is None:
                    close()
                    return
                if rate is None:
                    rate = chunk.sample_rate
                elif chunk.sample_rate != rate:
                    chunk = replace(
                        chunk,
                        samples=chunk.to_audio().resample(rate).samples,
                        sample_rate=rate,
                    )
                if open_chunks and chunk.sentence_index != open_chunks[-1].sentence_index:
                    close()
                open_chunks.append(chunk)
                total += chunk.samples.shape[0]
        finally:
            if getter is not None and not getter.done():
                getter.cancel()
            jobs.put_nowait(None)

    async def _next_job(
        self,
        jobs: asyncio.Queue[tuple[_Segment, asyncio.Task[list[np.ndarray]]] | None],
        background: list[asyncio.Future[Any]],
        tasks: list[asyncio.Task[Any]],
    ) -> tuple[_Segment, asyncio.Task[list[np.ndarray]]] | None:
        getter = asyncio.ensure_future(jobs.get())
        try:
            await self._wait_failing(getter, background, tasks)
            return getter.result()
        finally:
            if not getter.done():
                getter.cancel()

    async def _finish(
        self,
        task: asyncio.Task[list[np.ndarray]],
        background: list[asyncio.Future[Any]],
        tasks: list[asyncio.Task[Any]],
    ) -> list[np.ndarray]:
        await self._wait_failing(task, background, tasks)
        return task.result()

    @staticmethod
    async def _wait_failing(
        target: asyncio.Future[Any],
        background: list[asyncio.Future[Any]],
        tasks: list[asyncio.Task[Any]],
    ) -> None:
        """Wait for ``target``; fail as soon as any other task of this call fails."""
        while not target.done():
            others = [t for t in (*background, *tasks) if not t.done() and t is not target]
            await asyncio.wait([target, *others], return_when=asyncio.FIRST_COMPLETED)
            for t in (*background, *tasks):
                if t is not target and t.done() and not t.cancelled() and t.exception():
                    raise t.exception()  # type: ignore[misc]

    # -- one clip -----------------------------------------------------------------------------
    def _clip_wav(self, chunks: list[AudioChunk]) -> bytes:
        """The WAV the model gets for one sentence, padded to the model's shortest input."""
        clip = Audio.concatenate([c.to_audio() for c in chunks]).resample(self.audio_sample_rate)
        pad = self.model.min_audio_seconds - clip.duration
        if pad > 0:
            clip = Audio.concatenate([clip, Audio.silence(pad, clip.sample_rate)])
        return clip.to_wav_bytes()

    async def _render(self, seg: _Segment, session: _Session) -> list[np.ndarray]:
        if seg.n_frames <= 0:
            return []
        seconds = sum(c.duration for c in seg.chunks)
        # joining, resampling and encoding a sentence is CPU work: keep it off the event loop
        wav = await asyncio.to_thread(self._clip_wav, seg.chunks)
        async with session.semaphore:
            output = await self._predict(session, wav, seg)
        data = await self._download(output)
        try:
            images, times = await asyncio.to_thread(decode_clip, data, self.size)
        except NotAVideoError as exc:
            raise self.errors.error(
                f"{exc} (model {self.model.name}; check the model spec's output)",
                retryable=exc.retryable,
            ) from exc
        coverage = times[-1] + 1.0 / self.fps if times else 0.0
        if coverage < seconds * 0.8:
            log.warning(
                "replicate avatar: the clip covers %.2f s of %.2f s of audio; holding its last "
                "frame",
                coverage,
                seconds,
            )
        return [images[j] for j in sample_frames(times, seg.n_frames, self.fps)]

    async def _predict(self, session: _Session, wav: bytes, seg: _Segment) -> Any:
        client = session.client
        image = await self._portrait(session)
        audio_ref = await self._file_ref(client, wav, f"sentence-{seg.sentence}.wav", "audio/wav")
        inputs = {
            **self.model.inputs,
            **self.inputs,
            self.model.image_input: image,
            self.model.audio_input: audio_ref,
        }
        async with session.lock:
            version = await self._resolve_version(client)

        async def create() -> Any:
            if version is None:
                return await client.predictions.async_create(model=self.model.name, input=inputs)
            return await client.predictions.async_create(version=version, input=inputs)

        # A POST is retried only when it surely did nothing (429, 503): a retried 500 could
        # start (and bill) the same clip twice.
        creating = asyncio.ensure_future(
            retry(
                create,
                mapper=self.errors,
                max_retries=self.max_retries,
                retry_if=lambda e: e.status in (429, 503),
            )
        )
        try:
            prediction = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # The POST may already have started a prediction: learn its id and cancel it.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                started = await asyncio.wait_for(creating, _CANCEL_TIMEOUT)
                await self._cancel(client, started.id)
            raise
        try:
            prediction = await self._wait(client, prediction)
        except BaseException:
            if getattr(prediction, "status", None) not in _TERMINAL:
                await self._cancel(client, prediction.id)
            raise
        if prediction.status == "failed":
            raise self.errors.error(
                f"prediction {prediction.id} of {self.model.name} failed: "
                f"{prediction.error or 'no error message'}",
                retryable=False,
            )
        if prediction.status == "canceled":
            raise self.errors.error(
                f"prediction {prediction.id} was canceled on Replicate", retryable=True
            )
        return prediction.output

    async def _wait(self, client: Any, prediction: Any) -> Any:
        deadline = (
            time.monotonic() + self.prediction_timeout
            if self.prediction_timeout is not None
            else None
        )
        while prediction.status not in _TERMINAL:
            if deadline is not None and time.monotonic() >= deadline:
                raise self.errors.timeout(
                    f"prediction {prediction.id} did not finish within "
                    f"{self.prediction_timeout:g} s (status {prediction.status!r}); it was "
                    "cancelled"
                )
            await asyncio.sleep(self.poll_interval)
            prediction = await retry(
                functools.partial(client.predictions.async_get, prediction.id),
                mapper=self.errors,
                max_retries=self.max_retries,
            )
        return prediction

    async def _cancel(self, client: Any, prediction_id: str) -> None:
        """Cancel a prediction on Replicate, best effort, even while being cancelled."""
        request = asyncio.ensure_future(client.predictions.async_cancel(prediction_id))
        try:
            await asyncio.wait_for(asyncio.shield(request), _CANCEL_TIMEOUT)
            log.info("replicate avatar: cancelled prediction %s", prediction_id)
        except (Exception, asyncio.CancelledError) as exc:
            log.warning(
                "replicate avatar: could not cancel prediction %s (%s)",
                prediction_id,
                type(exc).__name__,
            )

    async def _resolve_version(self, client: Any) -> str | None:
        if self._version is not None or self.model.official:
            return self._version
        with self.errors.mapped():
            model = await client.models.async_get(self.model.name)
        latest = getattr(model, "latest_version", None)
        if latest is None or not getattr(latest, "id", None):
            raise self.errors.error(
                f"{self.model.name} has no version to run; pin one in the model spec"
            )
        self._version = str(latest.id)
        return self._version

    async def _file_ref(self, client: Any, data: bytes, filename: str, content_type: str) -> str:
        """A URL (uploaded file) or a data URI for ``data``."""
        if self.upload == "data-uri":
            return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
        buffer = io.BytesIO(data)
        buffer.name = filename

        async def upload() -> Any:
            buffer.seek(0)
            # The SDK uploads with no timeout at all: bound it.
            return await asyncio.wait_for(
                client.files.async_create(buffer, filename=filename, content_type=content_type),
                self.timeout,
            )

        file = await retry(upload, mapper=self.errors, max_retries=self.max_retries)
        url = (getattr(file, "urls", None) or {}).get("get")
        if not isinstance(url, str) or not url:
            raise self.errors.error("the file upload answer has no URL", retryable=True)
        return url

    async def _portrait(self, session: _Session) -> str:
        """The portrait's reference, uploaded once (and again after ``_PORTRAIT_TTL``)."""
        async with session.lock:
            cached = self._portrait_ref
            if cached is not None and time.monotonic() - cached[1] < _PORTRAIT_TTL:
                return cached[0]
            data = await asyncio.to_thread(self.portrait.read_bytes)
            suffix = self.portrait.suffix.lower()
            content_type = {
                ".png": "image/png",
                ".webp": "image/webp",
                ".gif": "image/gif",
            }.get(suffix, "image/jpeg")
            url = await self._file_ref(session.client, data, self.portrait.name, content_type)
            self._portrait_ref = (url, time.monotonic())
            return url

    # -- output -------------------------------------------------------------------------------
    def _output_url(self, output: Any) -> str:
        if output is None or output == "" or output == []:
            raise self.errors.error(
                "the prediction succeeded but returned no output", retryable=True
            )
        if isinstance(output, str):
            return output
        if isinstance(output, list):
            urls = [o for o in output if isinstance(o, str)]
            videos = [
                u for u in urls if u.lower().split("?")[0].endswith((".mp4", ".webm", ".mov"))
            ]
            if videos or urls:
                return (videos or urls)[-1]
        if isinstance(output, Mapping):
            keys = [self.model.output_key] if self.model.output_key else ["video", "output", "mp4"]
            for key in keys:
                if key is not None and isinstance(output.get(key), str):
                    return str(output[key])
        raise self.errors.error(
            f"the output of {self.model.name} is {type(output).__name__}, not a video URL; set "
            "output_key in the model spec",
            retryable=False,
        )

    async def _download(self, output: Any) -> bytes:
        url = self._output_url(output)
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            try:
                return base64.b64decode(payload, validate=False)
            except ValueError as exc:
                raise self.errors.error(
                    "the output data URI is not base64", retryable=False
                ) from exc
        if not url.startswith(("http://", "https://")):
            raise self.errors.error(f"the output is not a URL: {url[:80]!r}", retryable=False)

        async def fetch() -> bytes:
            client = self._http.get()
            async with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise self.errors.status(response.status_code, "downloading the output")
                length = int(response.headers.get("content-length") or 0)
                if length > self.max_download_bytes:
                    raise self.errors.error(
                        f"the output is {length} bytes; the limit is {self.max_download_bytes}"
                    )
                parts: list[bytes] = []
                size = 0
                async for part in response.aiter_bytes():
                    size += len(part)
                    if size > self.max_download_bytes:
                        raise self.errors.error(
                            f"the output is over {self.max_download_bytes} bytes"
                        )
                    parts.append(part)
                return b"".join(parts)

        data = await retry(fetch, mapper=self.errors, max_retries=self.max_retries)
        if not data:
            raise self.errors.error("the output file is empty", retryable=True)
        return data


async def _close_client(client: Any) -> None:
    # replicate.Client builds its httpx client lazily (a name-mangled private attribute); close
    # it only if it was built.
    http = getattr(client, "_Client__async_client", None)
    if http is not None:
        with contextlib.suppress(Exception):
            await http.aclose()
