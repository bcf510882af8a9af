"""The server itself: the three services in one Starlette app, run by uvicorn on 127.0.0.1 in a
background thread (:meth:`WireServer.start`, or ``with WireServer() as server:``)."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ._dialogue import Dialogue
from ._elevenlabs import ElevenLabsService
from ._model import LatencyProfile, Prediction
from ._openai import OpenAIService
from ._replicate import ReplicateService

__all__ = ["WireServer"]


class WireServer(OpenAIService, ElevenLabsService, ReplicateService):
    """A local server that speaks the wire protocols of OpenAI, ElevenLabs and Replicate.

    Point the official SDKs (or lexperience's cloud backends) at it with ``base_url``: nothing is
    mocked. Every request is recorded (:attr:`requests`, :meth:`calls`); each endpoint answers
    by a per-test script of :class:`Behaviour` s (:meth:`script`: one popped per request, normal
    answers afterwards) on the schedule of a :class:`LatencyProfile`; every answer carries the
    service's request-id header. ``GET /_stats`` returns the records (without bodies), ``POST
    /_reset`` clears them.

    Args:
        profile: how fast the services answer (default: at once).
        dialogue: what they say (default: a fixed question and a fixed two-sentence reply).
        clip: the MP4 every prediction returns; ``None``: a moving gradient as long as each
            prediction's audio (needs PyAV).
        clip_size: the generated clips' width and height.
        check_keys: answer 401 to any key but :data:`OPENAI_KEY`, :data:`ELEVENLABS_KEY`,
            :data:`REPLICATE_KEY`.
        keep_bodies: keep request bodies in the records (turn off for long load runs).
        max_records: the most requests remembered (the oldest are dropped).
        encoder: where generated clips are encoded (default: a worker thread).
        port: the port on 127.0.0.1 (0: any free one).
    """

    def __init__(
        self,
        *,
        profile: LatencyProfile | None = None,
        dialogue: Dialogue | None = None,
        clip: bytes | None = None,
        clip_size: int = 256,
        check_keys: bool = True,
        keep_bodies: bool = True,
        max_records: int = 20_000,
        encoder: concurrent.futures.Executor | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(
            profile=profile,
            dialogue=dialogue,
            check_keys=check_keys,
            keep_bodies=keep_bodies,
            max_records=max_records,
        )
        self.predictions: dict[str, Prediction] = {}
        self.cancelled: list[str] = []
        self.files: dict[str, tuple[str, bytes]] = {}
        self.ws_messages: list[dict[str, Any]] = []
        self.ws_events: list[tuple[str, float]] = []
        self.clip = clip
        self.clip_size = clip_size
        self.encoder = encoder
        self._clips = {}
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self.build_app()

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"WireServer({state}, {len(self.requests)} requests)"

    # -- what the services say ------------------------------------------------------------------
    @property
    def transcript(self) -> str:
        """What the transcription endpoint answers (for the default dialogue)."""
        return self.dialogue.transcript

    @transcript.setter
    def transcript(self, value: str) -> None:
        self.dialogue.transcript = value

    @property
    def reply_text(self) -> str:
        """What the chat endpoints answer (for the default dialogue)."""
        return self.dialogue.reply

    @reply_text.setter
    def reply_text(self, value: str) -> None:
        self.dialogue.reply = value

    def reset(self) -> None:
        """Forget the requests, scripts, predictions, files and websocket messages."""
        self._reset_base()
        with self._lock:
            self.predictions.clear()
            self.cancelled.clear()
            self.files.clear()
            self.ws_messages.clear()
            self.ws_events.clear()

    def stats(self) -> list[dict[str, Any]]:
        """What the server did for each request since the last :meth:`reset`."""
        with self._lock:
            return [r.summary() for r in self.requests]

    # -- the app --------------------------------------------------------------------------------
    async def _stats(self, request: Request) -> JSONResponse:
        return JSONResponse(self.stats())

    async def _reset(self, request: Request) -> JSONResponse:
        self.reset()
        return JSONResponse({"ok": True})

    def build_app(self) -> Starlette:
        routes: list[BaseRoute] = [
            *self.openai_routes(),
            *self.elevenlabs_routes(),
            *self.replicate_routes(),
            Route("/_stats", self._stats),
            Route("/_reset", self._reset, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    def config(self, **options: Any) -> uvicorn.Config:
        """The uvicorn settings it runs with (quiet, no lifespan, no websocket pings)."""
        settings: dict[str, Any] = {
            "log_level": "critical",
            "lifespan": "off",
            "timeout_graceful_shutdown": 1,
            "ws_ping_interval": None,
            **options,
        }
        return uvicorn.Config(self.app, **settings)

    def bind(self) -> socket.socket:
        """A listening socket on 127.0.0.1 (:attr:`port` set to its port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(512)  # connections made before uvicorn runs wait in the backlog
        self.port = sock.getsockname()[1]
        return sock

    # -- running in a thread --------------------------------------------------------------------
    def start(self) -> WireServer:
        """Serve in a background thread (its own event loop) until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("the wire server is already running")
        sock = self.bind()
        self._server = uvicorn.Server(self.config())
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="wire-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the wire server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
