"""The prediction lifecycle of the Replicate avatar: uploads, create, poll, cancel (used by
:mod:`lexperience.backends.replicate_avatar`).

Every task this module starts belongs to a :class:`Session` (one per ``animate()`` call), which
waits for all of them before ``animate()`` returns. Requests that must not be abandoned (a POST
that may be starting a prediction, the cancel of one) run to their end even when the caller is
cancelled, bounded by the HTTP timeout; the caller's cancellation is re-raised afterwards, never
swallowed. So an interrupted turn cancels, on Replicate, every prediction it started, including
one whose POST was still in flight, before ``animate()`` returns.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .._aio import DeadlineExceeded, cancel_and_wait, wait_for
from ._cloud import ConnectOptions, ErrorMapper, retry
from ._cloud_errors import tag_request_id
from ._replicate_media import ReplicateModel

__all__ = ["Predictor", "Session", "output_url", "settle"]

log = logging.getLogger(__name__)

T = TypeVar("T")

TERMINAL = ("succeeded", "failed", "canceled")
_PORTRAIT_TTL = 12 * 3600.0  # Replicate keeps uploaded files for a day; re-upload well before


async def settle(task: asyncio.Future[Any]) -> bool:
    """Wait until ``task`` is done, also through cancellations of the caller (they are not lost:
    the result says whether one came, and the caller re-raises it)."""
    interrupted = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            interrupted = True
    return interrupted


class Session:
    """State of one ``animate()`` call: the SDK client, the concurrency limit, every task."""

    def __init__(self, client: Any, max_concurrency: int) -> None:
        self.client = client
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.lock = asyncio.Lock()  # portrait upload, version lookup
        self.work: set[asyncio.Task[Any]] = set()  # cancelled when the call ends
        self.requests: set[asyncio.Task[Any]] = set()  # must finish: never cancelled

    def start(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A task of this call's work (cancelled by :meth:`close`)."""
        task = asyncio.ensure_future(coro)
        self.work.add(task)
        return task

    def request(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A request that must run to its end (awaited, never cancelled, by :meth:`close`)."""
        task = asyncio.ensure_future(coro)
        self.requests.add(task)
        task.add_done_callback(self.requests.discard)
        return task

    async def thread(
        self, fn: Callable[..., T], *args: Any, discard: Callable[[T], object] | None = None
    ) -> T:
        """``fn(*args)`` in a worker thread; a cancellation waits for the thread to finish (it
        cannot be stopped) and is then re-raised, so no thread outlives the call. A result that
        comes too late is handed to ``discard`` (in a thread too)."""
        task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        if await settle(task):
            failed = task.cancelled() or task.exception() is not None  # (retrieved either way)
            if not failed and discard is not None:
                await settle(asyncio.ensure_future(asyncio.to_thread(discard, task.result())))
            raise asyncio.CancelledError
        return task.result()

    async def close(self) -> None:
        """Cancel the work, wait for it, then for the requests that must finish."""
        interrupted = False
        try:
            await cancel_and_wait(*self.work)
        except asyncio.CancelledError:
            interrupted = True
        for task in list(self.requests):
            interrupted = await settle(task) or interrupted
        if interrupted:
            raise asyncio.CancelledError


def output_url(output: Any, model: ReplicateModel, errors: ErrorMapper) -> str:
    """The video URL in a prediction's output (a string, a list of them, or an object)."""
    if output is None or output == "" or output == []:
        raise errors.error("the prediction succeeded but returned no output", retryable=True)
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        urls = [o for o in output if isinstance(o, str)]
        videos = [u for u in urls if u.lower().split("?")[0].endswith((".mp4", ".webm", ".mov"))]
        if videos or urls:
            return (videos or urls)[-1]
    if isinstance(output, Mapping):
        keys = [model.output_key] if model.output_key else ["video", "output", "mp4"]
        for key in keys:
            if key is not None and isinstance(output.get(key), str):
                return str(output[key])
    raise errors.error(
        f"the output of {model.name} is {type(output).__name__}, not a video URL; set "
        "output_key in the model spec",
        retryable=False,
    )


class Predictor:
    """Runs one prediction per sentence: uploads its inputs, creates it, polls it to its end,
    and cancels it on Replicate when it must stop. The portrait upload and the model's latest
    version are cached across calls."""

    def __init__(
        self,
        *,
        model: ReplicateModel,
        inputs: Mapping[str, Any],
        portrait: Path,
        errors: ErrorMapper,
        options: ConnectOptions,
        poll_interval: float,
        prediction_timeout: float | None,
        upload: str,
    ) -> None:
        self.model = model
        self.inputs = dict(inputs)
        self.portrait = portrait
        self.errors = errors
        self.options = options
        self.poll_interval = poll_interval
        self.prediction_timeout = prediction_timeout
        self.upload = upload
        self._version: str | None = model.version
        self._portrait_ref: tuple[str, float] | None = None  # (url, uploaded at)

    async def prepare(self, session: Session) -> None:
        """Upload the portrait and look up the model version now (before the first sentence)."""
        await self.portrait_ref(session)
        async with session.lock:
            await self.resolve_version(session.client)

    async def run(self, session: Session, wav: bytes, label: str) -> Any:
        """Predict one clip for ``wav``; the prediction's output (a URL, usually)."""
        client = session.client
        image = await self.portrait_ref(session)
        audio_ref = await self.file_ref(client, wav, f"{label}.wav", "audio/wav")
        inputs = {
            **self.model.inputs,
            **self.inputs,
            self.model.image_input: image,
            self.model.audio_input: audio_ref,
        }
        async with session.lock:
            version = await self.resolve_version(client)
        started = time.perf_counter()
        # A POST is retried only when it surely did nothing (429, 503): a retried 500 could
        # start (and bill) the same clip twice.
        prediction = await retry(
            lambda: self._create(session, inputs, version),
            mapper=self.errors,
            options=self.options,
            retry_if=lambda e: e.status in (429, 503),
            what="prediction create",
        )
        try:
            prediction = await self._wait(client, prediction)
        except BaseException:
            if getattr(prediction, "status", None) not in TERMINAL:
                await self.cancel(session, prediction.id)
            raise
        log.debug(
            "replicate avatar: prediction %s %s after %.3f s",
            prediction.id,
            prediction.status,
            time.perf_counter() - started,
        )
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

    async def _create(self, session: Session, inputs: dict[str, Any], version: str | None) -> Any:
        """One POST. If the caller is cancelled meanwhile, the POST still gets its answer, and
        the prediction it started is cancelled, before the cancellation goes on."""
        client = session.client
        if version is None:
            call = client.predictions.async_create(model=self.model.name, input=inputs)
        else:
            call = client.predictions.async_create(version=version, input=inputs)
        post = session.request(tag_request_id(call))
        try:
            await asyncio.wait({post})
        except asyncio.CancelledError:
            await settle(post)
            if not post.cancelled() and post.exception() is None:
                await self.cancel(session, post.result().id)
            raise
        return post.result()

    async def _wait(self, client: Any, prediction: Any) -> Any:
        deadline = (
            time.monotonic() + self.prediction_timeout
            if self.prediction_timeout is not None
            else None
        )
        while prediction.status not in TERMINAL:
            if deadline is not None and time.monotonic() >= deadline:
                raise self.errors.timeout(
                    f"prediction {prediction.id} did not finish within "
                    f"{self.prediction_timeout:g} s (status {prediction.status!r}); it was "
                    "cancelled"
                )
            await asyncio.sleep(self.poll_interval)
            prediction = await retry(
                functools.partial(self._poll, client, prediction.id),
                mapper=self.errors,
                options=self.options,
                what="prediction poll",
            )
        return prediction

    @staticmethod
    async def _poll(client: Any, prediction_id: str) -> Any:
        return await tag_request_id(client.predictions.async_get(prediction_id))

    async def cancel(self, session: Session, prediction_id: str) -> None:
        """Cancel a prediction on Replicate, best effort. The request runs to its end even if
        the caller is cancelled meanwhile; that cancellation is re-raised afterwards."""
        request = session.request(session.client.predictions.async_cancel(prediction_id))
        interrupted = await settle(request)
        failure = None if request.cancelled() else request.exception()
        if request.cancelled() or failure is not None:
            log.warning(
                "replicate avatar: could not cancel prediction %s (%s)",
                prediction_id,
                type(failure).__name__ if failure is not None else "cancelled",
            )
        else:
            log.info("replicate avatar: cancelled prediction %s", prediction_id)
        if interrupted:
            raise asyncio.CancelledError

    async def resolve_version(self, client: Any) -> str | None:
        """The version to run (looked up once for an unpinned community model)."""
        if self._version is not None or self.model.official:
            return self._version
        with self.errors.mapped():
            model = await tag_request_id(client.models.async_get(self.model.name))
        latest = getattr(model, "latest_version", None)
        if latest is None or not getattr(latest, "id", None):
            raise self.errors.error(
                f"{self.model.name} has no version to run; pin one in the model spec"
            )
        self._version = str(latest.id)
        return self._version

    async def file_ref(self, client: Any, data: bytes, filename: str, content_type: str) -> str:
        """A URL (uploaded file) or a data URI for ``data``."""
        if self.upload == "data-uri":
            return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
        buffer = io.BytesIO(data)
        buffer.name = filename

        async def upload() -> Any:
            buffer.seek(0)
            call = client.files.async_create(buffer, filename=filename, content_type=content_type)
            try:  # the SDK uploads with no timeout at all: bound it
                return await wait_for(tag_request_id(call), self.options.timeout)
            except DeadlineExceeded:
                raise self.errors.timeout(
                    f"uploading {filename} took more than {self.options.timeout:g} s"
                ) from None

        file = await retry(upload, mapper=self.errors, options=self.options, what="upload")
        url = (getattr(file, "urls", None) or {}).get("get")
        if not isinstance(url, str) or not url:
            raise self.errors.error("the file upload answer has no URL", retryable=True)
        return url

    async def portrait_ref(self, session: Session) -> str:
        """The portrait's reference, uploaded once (and again after ``_PORTRAIT_TTL``)."""
        async with session.lock:
            cached = self._portrait_ref
            if cached is not None and time.monotonic() - cached[1] < _PORTRAIT_TTL:
                return cached[0]
            data = await session.thread(self.portrait.read_bytes)
            content_type = {
                ".png": "image/png",
                ".webp": "image/webp",
                ".gif": "image/gif",
            }.get(self.portrait.suffix.lower(), "image/jpeg")
            url = await self.file_ref(session.client, data, self.portrait.name, content_type)
            self._portrait_ref = (url, time.monotonic())
            return url
