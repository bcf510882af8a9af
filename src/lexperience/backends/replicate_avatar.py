"""Lip-sync video from a model on Replicate (DreamTalk by default), one clip per sentence.

Replicate models return one MP4 per prediction, so this avatar adapts them to the streaming
:class:`~lexperience.protocols.Avatar` contract:

1. the audio chunks of one sentence (``AudioChunk.sentence_index``) are gathered; as soon as the
   sentence is complete (the next one starts, the stream ends, or nothing new arrives for
   ``flush_after`` seconds) its WAV is sent to a prediction, so the first sentence's clip is
   being rendered while later sentences are still being spoken;
2. the prediction is created (``predictions.create``) and polled until it succeeds, fails or
   ``prediction_timeout`` passes; up to ``max_concurrency`` run at once;
3. the output MP4 is downloaded (redirects only to its own host or ``download_hosts``, at most
   ``max_download_bytes``), checked (a real video container with a video stream), and decoded
   with PyAV as its frames are needed, each shown frame fitted (letterboxed) to ``size``;
4. exactly as many frames as the audio needs are yielded: frame boundaries are
   ``round(t * fps)`` of the cumulative audio time, so each sentence gets
   ``round(duration * fps)`` frames (±1 from rounding) and the total is
   ``round(total_audio_seconds * fps)``: audio and video never drift. The clip is sampled by
   time: frames are dropped or repeated when its length or rate differs from the audio's.

On cancellation (:meth:`Conversation.interrupt`) every running prediction is cancelled on
Replicate (``POST /v1/predictions/{id}/cancel``) before :meth:`animate` exits, so nothing keeps
running (or billing): a create still in flight is waited for (bounded by ``timeout``) so that
its prediction can be cancelled too. Every task :meth:`animate` starts ends before it returns.
Audio is read through bounded channels, so a slow avatar slows its producer down instead of
buffering without limit.

Models are described by :class:`ReplicateModel`; ``"dreamtalk"`` (``cjwbw/dreamtalk``, the
prototype's model) and ``"sadtalker"`` (``cjwbw/sadtalker``) are built in, any other by a spec.
Install with ``pip install "lexperience[replicate]"``; the token comes from ``api_token=`` or
``REPLICATE_API_TOKEN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from .._aio import Channel, ChannelClosed, cancel_and_wait
from .._optional import require
from ..errors import ConfigurationError
from ..media import Audio, AudioChunk, VideoFrame
from ._cloud import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ConnectOptions,
    ErrorMapper,
    LoopLocal,
    Secret,
    check_timeout,
    connect_options,
    resolve_api_key,
)
from ._cloud_errors import remember_request_id
from ._replicate_download import Downloader
from ._replicate_media import (
    DREAMTALK,
    MODELS,
    SADTALKER,
    ClipFrames,
    NotAVideoError,
    ReplicateModel,
    decode_clip,
    sample_frames,
)
from ._replicate_predict import Predictor, Session, output_url

__all__ = [
    "DREAMTALK",
    "MODELS",
    "SADTALKER",
    "ConnectOptions",
    "ReplicateAvatar",
    "ReplicateModel",
    "decode_clip",
    "sample_frames",
]

log = logging.getLogger(__name__)

ENV_KEY = "REPLICATE_API_TOKEN"
#: Audio chunks the avatar buffers ahead of its sentence planner.
INBOX_CHUNKS = 256
#: Frames decoded per worker-thread call.
FRAME_BATCH = 5


@dataclass
class _Segment:
    """Consecutive audio of one sentence and the frames it is owed."""

    index: int
    sentence: int
    chunks: list[AudioChunk]
    first_frame: int
    n_frames: int


@dataclass
class _Job:
    segment: _Segment
    task: asyncio.Task[ClipFrames | None]


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
            polls, uploads and downloads; the SDK already retries its GETs.
        conn_options: a :class:`ConnectOptions` instead of ``timeout``/``max_retries`` (also sets
            the back-off).
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
        max_download_bytes: refuse larger outputs (checked while they download).
        download_hosts: hosts an output download may be redirected to, besides the output
            URL's own (``"cdn.example.com"``, or ``".example.com"`` for a domain and its
            subdomains). Redirects anywhere else are refused.
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
        conn_options: ConnectOptions | None = None,
        poll_interval: float | None = None,
        prediction_timeout: float | None = 300.0,
        max_concurrency: int = 2,
        upload: Literal["files", "data-uri"] = "files",
        audio_sample_rate: int = 16_000,
        flush_after: float | None = 1.0,
        max_download_bytes: int = 256 * 1024 * 1024,
        download_hosts: Sequence[str] = (),
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
        if isinstance(download_hosts, str) or not all(
            isinstance(h, str) and h.strip() for h in download_hosts
        ):
            raise ConfigurationError("download_hosts must be a list of host names")
        if max_download_bytes < 1:
            raise ConfigurationError("max_download_bytes must be >= 1")
        self.portrait = path
        self.model = ReplicateModel.parse(model)
        self.inputs = dict(inputs or {})
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))
        self.base_url = (base_url or os.environ.get("REPLICATE_BASE_URL") or "").rstrip("/") or None
        if self.base_url is not None and self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]  # the SDK adds /v1 itself
        self.options = connect_options(conn_options, timeout=timeout, max_retries=max_retries)
        self.poll_interval = float(poll_interval)
        self.prediction_timeout = check_timeout(prediction_timeout, "prediction_timeout")
        self.max_concurrency = int(max_concurrency)
        self.upload = upload
        self.audio_sample_rate = int(audio_sample_rate)
        self.flush_after = check_timeout(flush_after, "flush_after")
        self.max_download_bytes = int(max_download_bytes)
        self.download_hosts = tuple(h.strip() for h in download_hosts)
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
        self._predictor = Predictor(
            model=self.model,
            inputs=self.inputs,
            portrait=self.portrait,
            errors=self.errors,
            options=self.options,
            poll_interval=self.poll_interval,
            prediction_timeout=self.prediction_timeout,
            upload=self.upload,
        )
        self._downloader = Downloader(
            self._http.get,
            errors=self.errors,
            options=self.options,
            max_bytes=self.max_download_bytes,
            allowed_hosts=self.download_hosts,
        )

    def __repr__(self) -> str:
        version = f":{self.model.version[:12]}" if self.model.version else ""
        return (
            f"ReplicateAvatar(model={self.model.name + version!r}, fps={self.fps:g}, "
            f"size={self.size[0]}x{self.size[1]}, portrait={self.portrait.name!r})"
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

    # -- clients ------------------------------------------------------------------------------
    def _httpx_timeout(self) -> Any:
        httpx = require("httpx", "replicate")
        if self.timeout is None:
            return httpx.Timeout(None)
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    def _build(self) -> Any:
        replicate = require("replicate", "replicate", feature="the Replicate avatar")
        client = replicate.Client(
            api_token=self._token.get(),
            base_url=self.base_url,
            timeout=self._httpx_timeout(),
            event_hooks={"response": [remember_request_id]},  # ids for BackendError.request_id
        )
        client.poll_interval = self.poll_interval
        return client

    def _build_http(self) -> Any:
        httpx = require("httpx", "replicate")
        # Output URLs point at a CDN: no Authorization header goes there, and redirects are
        # followed by hand (see _replicate_download).
        return httpx.AsyncClient(timeout=self._httpx_timeout(), follow_redirects=False)

    async def aopen(self) -> None:
        """Upload the portrait and look up the model version before the first reply, so the
        first sentence's prediction starts one round trip sooner (:class:`Conversation` calls
        this once)."""
        session = Session(self._client.get(), 1)
        try:
            await self._predictor.prepare(session)
        finally:
            await session.close()

    async def aclose(self) -> None:
        """Close the HTTP connection pools (idempotent; the avatar can be used again)."""
        await self._client.aclose()
        await self._http.aclose()

    # -- the Avatar protocol ------------------------------------------------------------------
    async def animate(self, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[VideoFrame]:
        """Yield ``fps`` frames per second of ``audio``, one Replicate clip per sentence."""
        session = Session(self._client.get(), self.max_concurrency)
        inbox: Channel[AudioChunk] = Channel(INBOX_CHUNKS)
        jobs: Channel[_Job] = Channel(2 * self.max_concurrency + 2)
        reader = session.start(self._read(audio, inbox))
        session.start(self._plan(inbox, jobs, session))
        index = 0
        clip: ClipFrames | None = None
        try:
            while True:
                job = await self._next_job(jobs, session)
                if job is None:
                    break
                clip = await self._finish(job.task, session)
                if clip is None:
                    continue
                while clip.remaining:
                    for image in await session.thread(clip.take, FRAME_BATCH):
                        yield VideoFrame(image, index, self.fps)
                        index += 1
                self._check_coverage(job.segment, clip)
                await session.thread(clip.close)
                clip = None
            await reader  # surface a reader error, if any
        finally:
            jobs.close()
            try:
                await session.close()  # every task this call started has ended
            finally:
                await self._close_clips(clip, session)

    @staticmethod
    async def _close_clips(current: ClipFrames | None, session: Session) -> None:
        """Release the decoders of clips that were rendered but not (all) shown."""
        clips = [current] if current is not None else []
        for task in session.work:
            if task.done() and not task.cancelled() and task.exception() is None:
                found = task.result()
                if isinstance(found, ClipFrames):
                    clips.append(found)
        for found in clips:
            await session.thread(found.close)

    async def _read(self, audio: AsyncIterable[AudioChunk], inbox: Channel[AudioChunk]) -> None:
        try:
            async for chunk in audio:
                if chunk.samples.size:
                    await inbox.send(chunk)  # waits while the planner is behind
        finally:
            inbox.close()

    async def _plan(
        self, inbox: Channel[AudioChunk], jobs: Channel[_Job], session: Session
    ) -> None:
        """Group chunks into sentence segments and start a render task for each, in order."""
        rate: int | None = None
        total = 0  # samples of audio seen, at ``rate``
        open_chunks: list[AudioChunk] = []
        open_start = 0  # sample where the open segment starts
        segments = 0

        async def close() -> None:
            nonlocal open_chunks, open_start, segments
            if not open_chunks or rate is None:
                return
            first = round(open_start * self.fps / rate)
            last = round(total * self.fps / rate)
            seg = _Segment(
                segments, open_chunks[0].sentence_index, open_chunks, first, last - first
            )
            segments += 1
            open_chunks, open_start = [], total
            await jobs.send(_Job(seg, session.start(self._render(seg, session))))

        getter: asyncio.Task[AudioChunk] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(inbox.recv())
                # wait() never loses the item on a timeout (wait_for on a recv() could)
                timeout = self.flush_after if open_chunks else None
                done, _ = await asyncio.wait({getter}, timeout=timeout)
                if not done:
                    await close()  # the next sentence is slow to come: render this one now
                    continue
                try:
                    chunk = getter.result()
                except ChannelClosed:
                    getter = None
                    await close()
                    return
                getter = None
                if rate is None:
                    rate = chunk.sample_rate
                elif chunk.sample_rate != rate:
                    chunk = replace(
                        chunk,
                        samples=chunk.to_audio().resample(rate).samples,
                        sample_rate=rate,
                    )
                if open_chunks and chunk.sentence_index != open_chunks[-1].sentence_index:
                    await close()
                open_chunks.append(chunk)
                total += chunk.samples.shape[0]
        finally:
            if getter is not None:
                await cancel_and_wait(getter)
            jobs.close()

    async def _next_job(self, jobs: Channel[_Job], session: Session) -> _Job | None:
        getter = asyncio.ensure_future(jobs.recv())
        try:
            await self._wait_failing(getter, session)
        finally:
            if not getter.done():
                await cancel_and_wait(getter)
        try:
            return getter.result()
        except ChannelClosed:
            return None

    async def _finish(
        self, task: asyncio.Task[ClipFrames | None], session: Session
    ) -> ClipFrames | None:
        await self._wait_failing(task, session)
        return task.result()

    @staticmethod
    async def _wait_failing(target: asyncio.Future[Any], session: Session) -> None:
        """Wait for ``target``; fail as soon as any other task of this call fails."""
        while not target.done():
            others = [t for t in session.work if not t.done() and t is not target]
            await asyncio.wait([target, *others], return_when=asyncio.FIRST_COMPLETED)
            for t in list(session.work):
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

    async def _render(self, seg: _Segment, session: Session) -> ClipFrames | None:
        """Predict, download and open the clip of one segment (its frames decode later)."""
        if seg.n_frames <= 0:
            return None
        # joining, resampling and encoding a sentence is CPU work: keep it off the event loop
        wav = await session.thread(self._clip_wav, seg.chunks)
        async with session.semaphore:
            output = await self._predictor.run(session, wav, f"sentence-{seg.sentence}")
        data = await self._downloader.fetch(output_url(output, self.model, self.errors))
        try:
            return await session.thread(
                ClipFrames, data, self.size, seg.n_frames, self.fps, discard=ClipFrames.close
            )
        except NotAVideoError as exc:
            data.close()
            raise self.errors.error(
                f"{exc} (model {self.model.name}; check the model spec's output)",
                retryable=exc.retryable,
            ) from exc
        except BaseException:
            data.close()
            raise

    def _check_coverage(self, seg: _Segment, clip: ClipFrames) -> None:
        seconds = sum(c.duration for c in seg.chunks)
        coverage = clip.covered_seconds()
        if clip.ended and coverage < seconds * 0.8:
            log.warning(
                "replicate avatar: the clip covers %.2f s of %.2f s of audio; held its last frame",
                coverage,
                seconds,
            )


async def _close_client(client: Any) -> None:
    # replicate.Client builds its httpx client lazily (a name-mangled private attribute); close
    # it only if it was built.
    http = getattr(client, "_Client__async_client", None)
    if http is not None:
        with contextlib.suppress(Exception):
            await http.aclose()
