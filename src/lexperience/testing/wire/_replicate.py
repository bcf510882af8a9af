"""Replicate's wire protocol: files, predictions (create, poll, cancel), models, and the output
clips a lip-sync model returns.

A prediction goes ``starting`` -> ``processing`` -> its outcome after ``polls`` GETs and, with a
latency profile, no sooner than ``avatar_base_s + avatar_per_audio_s * audio seconds`` after it
was created. Behaviour options of ``predictions.create``: ``outcome`` (``succeeded``, ``failed``,
``hold``), ``output`` (``mp4``, ``list``, ``png``, ``html``, ``truncated``, ``none``,
``invalid-url``, ``redirect``), ``redirect_to`` (where a ``redirect`` output points), ``polls``.
Behaviour options of ``output``: ``chunked`` (no Content-Length).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ._clips import gradient_clip
from ._core import WireBase, read_wav
from ._model import Prediction

__all__ = ["ReplicateService"]

_SERVICE = "replicate"
_MAX_FILES = 2_000
_MAX_PREDICTIONS = 20_000


class ReplicateService(WireBase):
    """The Replicate endpoints (endpoint names for :meth:`script`: ``files``,
    ``predictions.create``, ``predictions.get``, ``predictions.cancel``, ``models.get``,
    ``output``). :attr:`predictions`, :attr:`cancelled` and :attr:`files` show the state."""

    predictions: dict[str, Prediction]
    cancelled: list[str]
    files: dict[str, tuple[str, bytes]]
    clip: bytes | None
    clip_size: int
    encoder: concurrent.futures.Executor | None
    _clips: dict[int, asyncio.Future[bytes]]

    def replicate_routes(self) -> list[Route]:
        def post(path: str, handler: Callable[..., Any]) -> Route:
            return Route(path, handler, methods=["POST"])

        return [
            post("/v1/predictions", self.predictions_create),
            post("/v1/models/{owner}/{model}/predictions", self.predictions_create),
            Route("/v1/predictions/{pid}", self.predictions_get),
            post("/v1/predictions/{pid}/cancel", self.predictions_cancel),
            Route("/v1/models/{owner}/{model}", self.models_get),
            post("/v1/files", self.files_create),
            Route("/files/{fid}", self.file_content),
            Route("/outputs/{pid}/{kind}.{ext}", self.output),
        ]

    # -- helpers ------------------------------------------------------------------------------
    def _output_clip(self, audio_s: float) -> asyncio.Future[bytes]:
        """The clip for ``audio_s`` of audio: the fixed one, or a gradient encoded once per
        length in :attr:`encoder` (a worker process keeps it off this server's GIL)."""
        loop = asyncio.get_running_loop()
        if self.clip is not None:
            done: asyncio.Future[bytes] = loop.create_future()
            done.set_result(self.clip)
            return done
        seconds = int(audio_s + 0.999)
        if seconds not in self._clips:
            self._clips[seconds] = loop.run_in_executor(
                self.encoder, gradient_clip, float(seconds), self.clip_size
            )
        return self._clips[seconds]

    def _audio_seconds(self, ref: Any) -> float:
        data = b""
        if isinstance(ref, str) and ref.startswith("data:"):
            data = base64.b64decode(ref.partition(",")[2])
        elif isinstance(ref, str):
            data = self.files.get(ref.rstrip("/").rsplit("/", 1)[-1], ("", b""))[1]
        if not data.startswith(b"RIFF"):
            return 0.0
        pcm, rate = read_wav(data)
        return float(pcm.shape[0] / rate)

    def _prediction_json(self, p: Prediction) -> dict[str, Any]:
        output: Any = None
        if p.status == "succeeded":
            kind = p.output
            if kind == "none":
                output = None
            elif kind == "list":
                output = [f"{self.url}/outputs/{p.id}/mp4.mp4"]
            elif kind == "invalid-url":
                output = "https://[::1/clip.mp4"
            else:
                ext = {"png": "png", "html": "html"}.get(kind, "mp4")
                output = f"{self.url}/outputs/{p.id}/{kind}.{ext}"
        return {
            "id": p.id, "model": p.model, "version": p.version, "status": p.status,
            "input": p.input, "output": output, "logs": "", "error": p.error,
            "metrics": {}, "created_at": "2026-11-25T12:00:00Z", "started_at": None,
            "completed_at": None, "data_removed": False,
            "urls": {"get": f"{self.url}/v1/predictions/{p.id}",
                     "cancel": f"{self.url}/v1/predictions/{p.id}/cancel"},
        }  # fmt: skip

    # -- endpoints ----------------------------------------------------------------------------
    async def predictions_create(self, request: Request) -> Response:
        ex, early = await self.exchange("predictions.create", "avatar", _SERVICE, request)
        if early is not None:
            return early
        if ex.behaviour.malformed:
            headers = self.headers(ex, _SERVICE)
            return Response(b'{"text": "broken', media_type="application/json", headers=headers)
        req = ex.json()
        model = request.path_params.get("model")
        options = ex.behaviour.options
        seconds = self._audio_seconds(req.get("input", {}).get("audio"))
        profile = self.profile
        p = Prediction(
            id=self.next_id("p"),
            version=req.get("version", ""),
            model=f"{request.path_params['owner']}/{model}" if model else "cjwbw/dreamtalk",
            input=req.get("input", {}),
            ready_at=ex.rec.arrived + profile.avatar_base_s + profile.avatar_per_audio_s * seconds,
            audio_s=seconds,
            outcome=options.get("outcome", "succeeded"),
            output=options.get("output", "mp4"),
            polls=options.get("polls", 2),
            redirect_to=options.get("redirect_to"),
        )
        with self._lock:
            self.predictions[p.id] = p
            while len(self.predictions) > _MAX_PREDICTIONS:
                self.predictions.pop(next(iter(self.predictions)))
        if p.output in ("mp4", "list", "redirect"):
            self._output_clip(seconds)  # start encoding it now
        ex.rec.info.update(audio_s=seconds, id=p.id)
        return self.json(ex, self._prediction_json(p), status=201, service=_SERVICE)

    async def predictions_get(self, request: Request) -> Response:
        ex, early = await self.exchange("predictions.get", "avatar", _SERVICE, request)
        if early is not None:
            return early
        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return self.json(ex, {"detail": "Not found.", "status": 404}, status=404,
                             service=_SERVICE)  # fmt: skip
        if p.status not in ("succeeded", "failed", "canceled"):
            p.seen += 1
            p.status = "processing"
            ready = p.seen >= p.polls and time.perf_counter() >= p.ready_at
            if ready and p.outcome != "hold":
                p.status = p.outcome
                if p.outcome == "failed":
                    p.error = "CUDA out of memory"
        return self.json(ex, self._prediction_json(p), service=_SERVICE)

    async def predictions_cancel(self, request: Request) -> Response:
        ex, early = await self.exchange("predictions.cancel", "avatar", _SERVICE, request)
        if early is not None:
            return early
        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return self.json(ex, {"detail": "Not found.", "status": 404}, status=404,
                             service=_SERVICE)  # fmt: skip
        self.cancelled.append(p.id)
        if p.status not in ("succeeded", "failed"):
            p.status = "canceled"
        return self.json(ex, self._prediction_json(p), service=_SERVICE)

    async def models_get(self, request: Request) -> Response:
        ex, early = await self.exchange("models.get", "avatar", _SERVICE, request)
        if early is not None:
            return early
        owner, name = request.path_params["owner"], request.path_params["model"]
        return self.json(ex, {
            "url": f"https://replicate.com/{owner}/{name}", "owner": owner, "name": name,
            "description": "a test model", "visibility": "public", "github_url": None,
            "paper_url": None, "license_url": None, "run_count": 1, "cover_image_url": None,
            "default_example": None,
            "latest_version": {"id": "v" * 64, "created_at": "2026-01-01T00:00:00Z",
                               "cog_version": "0.9.0", "openapi_schema": {}},
        }, service=_SERVICE)  # fmt: skip

    async def files_create(self, request: Request) -> Response:
        ex, early = await self.exchange("files", "avatar", _SERVICE, request)
        if early is not None:
            return early
        filename, content = ex.form.get("content", (None, b""))
        fid = self.next_id("f")
        with self._lock:
            self.files[fid] = (filename or "file", content)
            while len(self.files) > _MAX_FILES:  # bounded: drop the oldest uploads
                self.files.pop(next(iter(self.files)))
        return self.json(
            ex,
            {
                "id": fid, "name": filename or "file", "content_type": "application/octet-stream",
                "size": len(content), "etag": "x", "checksums": {}, "metadata": {},
                "created_at": "2026-11-25T12:00:00Z", "expires_at": None,
                "urls": {"get": f"{self.url}/files/{fid}"},
            },
            status=201,
            service=_SERVICE,
        )  # fmt: skip

    async def file_content(self, request: Request) -> Response:
        ex, _ = await self.exchange("file.get", "avatar", _SERVICE, request, authenticate=False)
        found = self.files.get(request.path_params["fid"])
        if found is None:
            return Response(status_code=404)
        ex.rec.sent.append(time.perf_counter() - ex.rec.arrived)
        return Response(found[1])

    async def output(self, request: Request) -> Response:
        ex, _ = await self.exchange("output", "avatar", _SERVICE, request, authenticate=False)
        behaviour = ex.behaviour
        kind = request.path_params["kind"]
        p = self.predictions.get(request.path_params["pid"])
        if behaviour.status != 200:
            return Response(b"gone", status_code=behaviour.status)
        if kind == "redirect":
            target = (
                p.redirect_to if p is not None else None
            ) or f"/outputs/{request.path_params['pid']}/mp4.mp4"
            return RedirectResponse(target, status_code=302)
        if kind == "png":
            return Response(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, media_type="image/png")
        if kind == "html":
            return Response(b"<html><body>Internal error</body></html>", media_type="text/html")
        clip = await self._output_clip(p.audio_s if p is not None else 0.0)
        ex.rec.sent.append(time.perf_counter() - ex.rec.arrived)
        if kind == "truncated":
            return Response(clip[: len(clip) // 3], media_type="video/mp4")
        if behaviour.options.get("chunked"):

            async def pieces() -> AsyncIterator[bytes]:
                for start in range(0, len(clip), 4096):
                    yield clip[start : start + 4096]

            return StreamingResponse(pieces(), media_type="video/mp4")
        return Response(clip, media_type="video/mp4")
