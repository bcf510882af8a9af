"""What every simulated service shares: recording requests, scripted behaviours, key checks,
request ids, and streamed answers on the latency profile's schedule."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import threading
import time
import wave
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ._dialogue import Dialogue
from ._model import (
    ELEVENLABS_KEY,
    OPENAI_KEY,
    REPLICATE_KEY,
    Behaviour,
    LatencyProfile,
    Recorded,
)

__all__ = ["Exchange", "WireBase", "parse_multipart", "read_wav", "sse"]

#: Each service's request-id header and id prefix.
_REQUEST_IDS = {
    "openai": ("x-request-id", "req_"),
    "elevenlabs": ("request-id", "el-req-"),
    "replicate": ("x-request-id", "rep-req-"),
}


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION = re.compile(r"^content-disposition:(.*)$", re.IGNORECASE | re.MULTILINE)
_NAME = re.compile(r'(?<![\w-])name="([^"]*)"')
_FILENAME = re.compile(r'(?<![\w-])filename="([^"]*)"')


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """Form fields and files of a multipart/form-data body: ``{name: (filename, content)}``
    (``filename`` is ``None`` for a plain field).

    A direct split on the boundary: the stdlib ``email`` parser took 4 ms of the server's event
    loop per 78 kB upload, which 50 conversations starting at once turned into 200 ms of delay
    for every other answer the server was streaming.
    """
    match = _BOUNDARY.search(content_type)
    if match is None:
        return {}
    delimiter = b"--" + match.group(1).strip().encode("latin-1")
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):  # the closing delimiter
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = _DISPOSITION.search(head.decode("utf-8", "replace").strip())
        if disposition is None:
            continue
        name = _NAME.search(disposition.group(1))
        filename = _FILENAME.search(disposition.group(1))
        if name is not None:
            out[name.group(1)] = (filename.group(1) if filename else None, content)
    return out


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """int16 samples (first channel) and rate of a WAV file."""
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if w.getnchannels() > 1:
            pcm = pcm[:: w.getnchannels()]
    return pcm, rate


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


@dataclass
class Exchange:
    """One request being answered: its record, its scripted behaviour, its body."""

    rec: Recorded
    behaviour: Behaviour
    body: bytes
    form: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class WireBase:
    """The shared state and helpers of the simulated services (see :class:`WireServer`)."""

    def __init__(
        self,
        *,
        profile: LatencyProfile | None = None,
        dialogue: Dialogue | None = None,
        check_keys: bool = True,
        keep_bodies: bool = True,
        max_records: int = 20_000,
    ) -> None:
        self.profile = profile or LatencyProfile()
        self.dialogue = dialogue or Dialogue()
        self.check_keys = check_keys
        self.keep_bodies = keep_bodies
        self.requests: deque[Recorded] = deque(maxlen=max_records)
        self._scripts: dict[str, deque[Behaviour]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self.host = "127.0.0.1"
        self.port = 0

    # -- addresses ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The root URL: ElevenLabs' and Replicate's ``base_url`` (they add ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """OpenAI's ``base_url`` (with ``/v1``)."""
        return f"{self.url}/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # -- scripting and inspection --------------------------------------------------------------
    def script(self, endpoint: str, *behaviours: Behaviour) -> None:
        """Answer the next requests to ``endpoint`` with ``behaviours``, in order (then
        normally)."""
        with self._lock:
            self._scripts.setdefault(endpoint, deque()).extend(behaviours)

    def calls(self, endpoint: str) -> list[Recorded]:
        """The requests ``endpoint`` received, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def _reset_base(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
        self.dialogue.reset()

    def _next(self, endpoint: str) -> Behaviour:
        with self._lock:
            queue = self._scripts.get(endpoint)
            return queue.popleft() if queue else Behaviour()

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    # -- answering ----------------------------------------------------------------------------
    async def exchange(
        self,
        endpoint: str,
        stage: str,
        service: str,
        request: Request,
        *,
        authenticate: bool = True,
    ) -> tuple[Exchange, Response | None]:
        """Record ``request``, apply its behaviour's delay, key check (``authenticate``) and
        error status; the exchange and, if the answer is already decided, that answer."""
        arrived = time.perf_counter()
        body = await request.body()
        _, prefix = _REQUEST_IDS[service]
        rec = Recorded(
            endpoint=endpoint,
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body if self.keep_bodies else b"",
            stage=stage,
            request_id=f"{prefix}{next(self._request_ids)}",
            arrived=arrived,
        )
        ctype = request.headers.get("content-type", "")
        form = parse_multipart(body, ctype) if ctype.startswith("multipart/form-data") else {}
        if self.keep_bodies:
            rec.form = form
        with self._lock:
            self.requests.append(rec)
        ex = Exchange(rec, self._next(endpoint), body, form)
        behaviour = ex.behaviour
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        denied = self._auth_error(service, rec) if authenticate else None
        if denied is not None:
            return ex, self.json(ex, denied, status=401, service=service)
        if behaviour.status != 200:
            error = behaviour.body
            if error is None:
                error = {
                    "error": {"message": f"scripted {behaviour.status}", "type": "server_error"}
                }
            if isinstance(error, (str, bytes)):
                headers = self.headers(ex, service)
                return ex, Response(error, status_code=behaviour.status, headers=headers)
            return ex, self.json(ex, error, status=behaviour.status, service=service)
        return ex, None

    def _auth_error(self, service: str, rec: Recorded) -> Any:
        if not self.check_keys:
            return None
        if service == "openai":
            if rec.headers.get("authorization") == f"Bearer {OPENAI_KEY}":
                return None
            return {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
        if service == "elevenlabs":
            if rec.headers.get("xi-api-key") == ELEVENLABS_KEY:
                return None
            return {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
        if rec.headers.get("authorization") == f"Bearer {REPLICATE_KEY}":
            return None
        return {
            "title": "Unauthenticated",
            "detail": "You did not pass a valid token",
            "status": 401,
        }

    def headers(self, ex: Exchange, service: str) -> dict[str, str]:
        """The behaviour's extra headers plus the service's request-id header."""
        name, _ = _REQUEST_IDS[service]
        return {**ex.behaviour.headers, name: ex.rec.request_id}

    def json(
        self, ex: Exchange, data: Any, *, status: int = 200, service: str = "openai"
    ) -> JSONResponse:
        ex.rec.sent.append(time.perf_counter() - ex.rec.arrived)
        return JSONResponse(data, status_code=status, headers=self.headers(ex, service))

    async def until(self, rec: Recorded, offset: float) -> None:
        """Sleep until ``offset`` seconds after the request arrived."""
        delay = rec.arrived + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    @staticmethod
    async def _gate(behaviour: Behaviour) -> None:
        if behaviour.gate is not None:
            deadline = time.monotonic() + 10
            while not behaviour.gate.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        if behaviour.stall:
            await asyncio.sleep(behaviour.stall)

    def stream(
        self,
        ex: Exchange,
        pieces: list[tuple[float, bytes]],
        media_type: str,
        *,
        service: str,
    ) -> Response:
        """A streamed body: each piece at its offset from the request's arrival, with the
        behaviour's gate / stall after the first piece and its cut half-way."""
        rec, behaviour = ex.rec, ex.behaviour

        async def body() -> AsyncIterator[bytes]:
            for i, (offset, piece) in enumerate(pieces):
                if i == 1:
                    await self._gate(behaviour)
                if behaviour.cut and i >= max(1, len(pieces) // 2):
                    return  # the declared Content-Length is never reached
                await self.until(rec, offset)
                rec.sent.append(time.perf_counter() - rec.arrived)
                yield piece
            rec.finished = True

        headers = self.headers(ex, service)
        if behaviour.cut:
            headers["content-length"] = str(sum(len(p) for _, p in pieces))
        return StreamingResponse(body(), media_type=media_type, headers=headers)
