"""A local server that speaks the wire protocols of OpenAI, ElevenLabs and Replicate.

The official SDKs are pointed at it with ``base_url`` (nothing is mocked): a Starlette app under
uvicorn on 127.0.0.1 (random port), in a background thread with its own event loop.

Every request is recorded (:attr:`WireServer.requests`). Each endpoint answers according to a
per-test script of :class:`Behaviour` s (one popped per request, the default afterwards):
HTTP errors, latency before the headers, a stall after the first piece of a streamed body, a
malformed body, a body cut short, or a gate that holds the rest of a stream until the test opens
it (to prove that the first piece reached the client before the end).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.parser
import email.policy
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

OPENAI_KEY = "sk-test-OPENAI-0123456789abcdef"
ELEVENLABS_KEY = "el-test-ELEVEN-0123456789abcdef"
REPLICATE_KEY = "r8_test-REPLICATE-0123456789abcdef"

#: Seconds of speech the fake TTS services produce per character of text.
SECONDS_PER_CHAR = 0.03


@dataclass
class Behaviour:
    """How one request is answered.

    Attributes:
        status: an HTTP status other than 200 answers with an error body (``body`` or a default).
        headers: extra response headers (``retry-after-ms``...).
        delay: seconds to wait before answering at all (a hang before the headers).
        stall: seconds to stall after the first piece of a streamed body (a mid-stream hang).
        malformed: send a body the client cannot parse (bad JSON / SSE / NDJSON lines).
        cut: end a streamed body early (fewer bytes than its Content-Length).
        gate: hold the rest of a streamed body after its first piece until this is set.
        options: endpoint-specific knobs (see the handlers).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stall: float = 0.0
    malformed: bool = False
    cut: bool = False
    gate: threading.Event | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recorded:
    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    form: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)
    finished: bool = False  # a streamed answer was sent to its end

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Prediction:
    id: str
    version: str
    model: str
    input: dict[str, Any]
    outcome: str = "succeeded"  # succeeded | failed | hold
    output: str = "mp4"  # mp4 | png | html | none | truncated | list
    polls: int = 2  # GETs before the outcome
    seen: int = 0
    status: str = "starting"
    error: str | None = None


def tone(seconds: float, rate: int, freq: float = 220.0) -> np.ndarray:
    """A deterministic voiced-ish test signal as int16."""
    n = max(1, int(seconds * rate))
    t = np.arange(n) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 3 * freq * t)
    return (wave * 32767).astype("<i2")


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """Form fields and files of a multipart/form-data body (stdlib only)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return out


def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


class WireServer:
    """The server and its per-test state; see the module docstring."""

    def __init__(self, clips: dict[str, bytes]) -> None:
        self.clips = clips  # output name -> bytes (a real MP4 among them)
        self.requests: list[Recorded] = []
        self._scripts: dict[str, deque[Behaviour]] = {}
        self.transcript = "What is a black hole?"
        self.reply_text = "Black holes are regions where gravity wins. Nothing gets out of them."
        self.predictions: dict[str, Prediction] = {}
        self.cancelled: list[str] = []
        self.files: dict[str, tuple[str, bytes]] = {}
        self.ws_messages: list[dict[str, Any]] = []
        self.ws_events: list[tuple[str, float]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # -- control ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def script(self, endpoint: str, *behaviours: Behaviour) -> None:
        """Answer the next requests to ``endpoint`` with ``behaviours``, in order."""
        self._scripts.setdefault(endpoint, deque()).extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self.predictions.clear()
            self.cancelled.clear()
            self.files.clear()
            self.ws_messages.clear()
            self.ws_events.clear()
        self.transcript = "What is a black hole?"
        self.reply_text = "Black holes are regions where gravity wins. Nothing gets out of them."

    def calls(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def _next(self, endpoint: str) -> Behaviour:
        queue = self._scripts.get(endpoint)
        return queue.popleft() if queue else Behaviour()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ws_ping_interval=None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="wire-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the wire server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- helpers ------------------------------------------------------------------------------
    async def _record(self, endpoint: str, request: Request) -> Recorded:
        body = await request.body()
        rec = Recorded(
            endpoint=endpoint,
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body,
        )
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            rec.form = parse_multipart(body, ctype)
        with self._lock:
            self.requests.append(rec)
        return rec

    @staticmethod
    async def _gate(behaviour: Behaviour) -> None:
        if behaviour.gate is not None:
            deadline = time.monotonic() + 10
            while not behaviour.gate.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        if behaviour.stall:
            await asyncio.sleep(behaviour.stall)

    def _auth_error(self, service: str, rec: Recorded) -> Response | None:
        if service == "openai":
            ok = rec.headers.get("authorization") == f"Bearer {OPENAI_KEY}"
            body: Any = {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
        elif service == "elevenlabs":
            ok = rec.headers.get("xi-api-key") == ELEVENLABS_KEY
            body = {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
        else:
            ok = rec.headers.get("authorization") == f"Bearer {REPLICATE_KEY}"
            body = {
                "title": "Unauthenticated",
                "detail": "You did not pass a valid token",
                "status": 401,
            }
        return None if ok else JSONResponse(body, status_code=401)

    async def _prelude(
        self, endpoint: str, service: str, request: Request
    ) -> tuple[Recorded, Behaviour, Response | None]:
        rec = await self._record(endpoint, request)
        behaviour = self._next(endpoint)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        denied = self._auth_error(service, rec)
        if denied is not None:
            return rec, behaviour, denied
        if behaviour.status != 200:
            body = behaviour.body
            if body is None:
                body = {
                    "error": {"message": f"scripted {behaviour.status}", "type": "server_error"}
                }
            response: Response = (
                Response(body, status_code=behaviour.status, headers=behaviour.headers)
                if isinstance(body, (str, bytes))
                else JSONResponse(body, status_code=behaviour.status, headers=behaviour.headers)
            )
            return rec, behaviour, response
        if behaviour.malformed and endpoint == "predictions.create":
            return (
                rec,
                behaviour,
                Response(
                    b'{"text": "broken', media_type="application/json", headers=behaviour.headers
                ),
            )
        return rec, behaviour, None

    def _stream(
        self,
        rec: Recorded,
        behaviour: Behaviour,
        pieces: list[bytes],
        media_type: str,
    ) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for i, piece in enumerate(pieces):
                if i == 1:
                    await self._gate(behaviour)
                if behaviour.cut and i >= max(1, len(pieces) // 2):
                    return  # the declared Content-Length is never reached
                yield piece
            rec.finished = True

        headers = dict(behaviour.headers)
        if behaviour.cut:
            headers["content-length"] = str(sum(len(p) for p in pieces))
        return StreamingResponse(body(), media_type=media_type, headers=headers)

    # -- OpenAI -------------------------------------------------------------------------------
    async def transcribe(self, request: Request) -> Response:
        rec, behaviour, early = await self._prelude("transcribe", "openai", request)
        if early is not None:
            return early
        fields = {k: v[1].decode() for k, v in rec.form.items() if v[0] is None}
        if "file" not in rec.form or not rec.form["file"][1].startswith(b"RIFF"):
            return JSONResponse({"error": {"message": "no WAV file"}}, status_code=400)
        text = self.transcript
        if fields.get("stream") != "true":
            if behaviour.malformed:
                return Response(b'{"text": "broken', media_type="application/json")
            return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": 2}})
        words = text.split(" ")
        pieces = [
            _sse({"type": "transcript.text.delta", "delta": (" " if i else "") + w})
            for i, w in enumerate(words)
        ]
        if behaviour.malformed:
            pieces.insert(1, b"data: {not json\n\n")
        pieces.append(_sse({"type": "transcript.text.done", "text": text}))
        return self._stream(rec, behaviour, pieces, "text/event-stream")

    async def chat(self, request: Request) -> Response:
        rec, behaviour, early = await self._prelude("chat", "openai", request)
        if early is not None:
            return early
        req = rec.json()
        words = self.reply_text.split(" ")
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": req.get("model", "m")}  # fmt: skip
        pieces = [
            _sse(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                }
            )
        ]
        for i, word in enumerate(words):
            delta = {"content": (" " if i else "") + word}
            pieces.append(
                _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            )
            if behaviour.malformed and i == 1:
                pieces.append(b'data: {"id": "chatcmpl-1", "choices": [\n\n')
        pieces.append(
            _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        )
        pieces.append(b"data: [DONE]\n\n")
        # the first piece carries no text: merge it so the gate holds after the first word
        pieces = [pieces[0] + pieces[1], *pieces[2:]]
        return self._stream(rec, behaviour, pieces, "text/event-stream")

    async def responses(self, request: Request) -> Response:
        rec, behaviour, early = await self._prelude("responses", "openai", request)
        if early is not None:
            return early
        req = rec.json()
        resp = {"id": "resp_1", "object": "response", "created_at": 1, "model": req.get("model"),
                "status": "in_progress", "output": []}  # fmt: skip
        seq = itertools.count()
        pieces = [
            _sse({"type": "response.created", "sequence_number": next(seq), "response": resp},
                 "response.created"),
        ]  # fmt: skip
        words = self.reply_text.split(" ")
        for i, word in enumerate(words):
            event = {"type": "response.output_text.delta", "sequence_number": next(seq),
                     "item_id": "msg_1", "output_index": 0, "content_index": 0,
                     "delta": (" " if i else "") + word, "logprobs": []}  # fmt: skip
            pieces.append(_sse(event, "response.output_text.delta"))
        fail = behaviour.options.get("fail")
        if fail:
            failed = {**resp, "status": "failed", "error": {"code": fail, "message": "it broke"}}
            pieces.append(_sse({"type": "response.failed", "sequence_number": next(seq),
                                "response": failed}, "response.failed"))  # fmt: skip
        else:
            done = {**resp, "status": "completed"}
            pieces.append(_sse({"type": "response.completed", "sequence_number": next(seq),
                                "response": done}, "response.completed"))  # fmt: skip
        pieces = [pieces[0] + pieces[1], *pieces[2:]]
        return self._stream(rec, behaviour, pieces, "text/event-stream")

    async def speech(self, request: Request) -> Response:
        rec, behaviour, early = await self._prelude("speech", "openai", request)
        if early is not None:
            return early
        req = rec.json()
        if req.get("response_format") != "pcm":
            return JSONResponse(
                {"error": {"message": "this server speaks pcm only"}}, status_code=400
            )
        pcm = tone(len(req["input"]) * SECONDS_PER_CHAR, 24_000).tobytes()
        step = 4800  # 0.1 s
        pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        return self._stream(rec, behaviour, pieces, "application/octet-stream")

    # -- ElevenLabs ---------------------------------------------------------------------------
    @staticmethod
    def _el_audio(text: str, rate: int) -> tuple[bytes, list[tuple[str, float, float]]]:
        chars = list(text)
        per = SECONDS_PER_CHAR
        pcm = tone(len(chars) * per, rate, 180.0).tobytes()
        timing = [(c, i * per, (i + 1) * per) for i, c in enumerate(chars)]
        return pcm, timing

    async def el_stream(self, request: Request) -> Response:
        timestamps = request.url.path.endswith("/with-timestamps")
        endpoint = "el_timestamps" if timestamps else "el_stream"
        rec, behaviour, early = await self._prelude(endpoint, "elevenlabs", request)
        if early is not None:
            return early
        req = rec.json()
        fmt = rec.query.get("output_format", "mp3_44100_128")
        if not fmt.startswith("pcm_"):
            return JSONResponse({"detail": "pcm only here"}, status_code=422)
        rate = int(fmt.split("_")[1])
        pcm, timing = self._el_audio(req["text"], rate)
        n_pieces = 4
        per_piece = len(timing) // n_pieces + 1
        pieces: list[bytes] = []
        for k in range(n_pieces):
            group = timing[k * per_piece : (k + 1) * per_piece]
            if not group:
                continue
            t0, t1 = group[0][1], group[-1][2]
            a, b = int(round(t0 * rate)) * 2, int(round(t1 * rate)) * 2
            audio = pcm[a:b]
            if not timestamps:
                pieces.append(audio)
                continue
            t_base = t0 if behaviour.options.get("relative_times") else 0.0
            line = {
                "audio_base64": base64.b64encode(audio).decode(),
                "alignment": {
                    "characters": [g[0] for g in group],
                    "character_start_times_seconds": [g[1] - t_base for g in group],
                    "character_end_times_seconds": [g[2] - t_base for g in group],
                },
                "normalized_alignment": None,
            }
            raw = json.dumps(line).encode() + b"\n"
            if behaviour.malformed and k >= 1:
                raw = raw[: len(raw) // 2] + b"\n"  # a line the SDK cannot parse (and skips)
            pieces.append(raw)
        media = "application/x-ndjson" if timestamps else "audio/pcm"
        return self._stream(rec, behaviour, pieces, media)

    async def el_websocket(self, ws: WebSocket) -> None:
        behaviour = self._next("el_ws")
        headers = {k.lower(): v for k, v in ws.headers.items()}
        query = dict(ws.query_params)
        with self._lock:
            self.requests.append(
                Recorded("el_ws", "WS", ws.url.path, headers, query, b"")
            )  # fmt: skip
        if headers.get("xi-api-key") != ELEVENLABS_KEY:
            await ws.close(code=1008, reason="Invalid API key")
            return
        if behaviour.status != 200:
            await ws.close(code=1011, reason=f"scripted {behaviour.status}")
            return
        await ws.accept()
        rate = int(query.get("output_format", "pcm_16000").split("_")[1])
        try:
            while True:
                message = json.loads(await ws.receive_text())
                self.ws_messages.append(message)
                self.ws_events.append(("recv", time.monotonic()))
                text = message.get("text")
                if text == "":
                    break
                if not text or not text.strip():
                    continue
                if behaviour.options.get("error"):
                    await ws.send_text(json.dumps({"message": "quota exceeded", "error": "quota_exceeded",
                                                   "code": 1008}))  # fmt: skip
                    await ws.close(code=1008)
                    return
                pcm, timing = self._el_audio(text, rate)
                reply = {
                    "audio": base64.b64encode(pcm).decode(),
                    "isFinal": None,
                    "alignment": {
                        "chars": [t[0] for t in timing],
                        "charStartTimesMs": [round(t[1] * 1000) for t in timing],
                        "charDurationsMs": [round((t[2] - t[1]) * 1000) for t in timing],
                    },
                }
                await ws.send_text(json.dumps(reply))
                self.ws_events.append(("send", time.monotonic()))
            await ws.send_text(json.dumps({"isFinal": True}))
            await ws.close()
        except WebSocketDisconnect:
            pass

    # -- Replicate ----------------------------------------------------------------------------
    def _prediction_json(self, p: Prediction) -> dict[str, Any]:
        output: Any = None
        if p.status == "succeeded":
            kind = p.output
            if kind == "none":
                output = None
            elif kind == "list":
                output = [f"{self.url}/outputs/{p.id}/mp4.mp4"]
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

    async def predictions_create(self, request: Request) -> Response:
        rec, behaviour, early = await self._prelude("predictions.create", "replicate", request)
        if early is not None:
            return early
        req = rec.json()
        model = request.path_params.get("model")
        pid = f"p{next(self._ids)}"
        p = Prediction(
            id=pid,
            version=req.get("version", ""),
            model=f"{request.path_params['owner']}/{model}" if model else "cjwbw/dreamtalk",
            input=req.get("input", {}),
            outcome=behaviour.options.get("outcome", "succeeded"),
            output=behaviour.options.get("output", "mp4"),
            polls=behaviour.options.get("polls", 2),
        )
        self.predictions[pid] = p
        return JSONResponse(self._prediction_json(p), status_code=201)

    async def predictions_get(self, request: Request) -> Response:
        _rec, _behaviour, early = await self._prelude("predictions.get", "replicate", request)
        if early is not None:
            return early
        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return JSONResponse({"detail": "Not found.", "status": 404}, status_code=404)
        if p.status not in ("succeeded", "failed", "canceled"):
            p.seen += 1
            if p.seen >= 1:
                p.status = "processing"
            if p.seen >= p.polls and p.outcome != "hold":
                p.status = p.outcome
                if p.outcome == "failed":
                    p.error = "CUDA out of memory"
        return JSONResponse(self._prediction_json(p))

    async def predictions_cancel(self, request: Request) -> Response:
        _rec, _behaviour, early = await self._prelude("predictions.cancel", "replicate", request)
        if early is not None:
            return early
        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return JSONResponse({"detail": "Not found.", "status": 404}, status_code=404)
        self.cancelled.append(p.id)
        if p.status not in ("succeeded", "failed"):
            p.status = "canceled"
        return JSONResponse(self._prediction_json(p))

    async def models_get(self, request: Request) -> Response:
        _rec, _behaviour, early = await self._prelude("models.get", "replicate", request)
        if early is not None:
            return early
        owner, name = request.path_params["owner"], request.path_params["model"]
        return JSONResponse({
            "url": f"https://replicate.com/{owner}/{name}", "owner": owner, "name": name,
            "description": "a test model", "visibility": "public", "github_url": None,
            "paper_url": None, "license_url": None, "run_count": 1, "cover_image_url": None,
            "default_example": None,
            "latest_version": {"id": "v" * 64, "created_at": "2026-01-01T00:00:00Z",
                               "cog_version": "0.9.0", "openapi_schema": {}},
        })  # fmt: skip

    async def files_create(self, request: Request) -> Response:
        rec, _behaviour, early = await self._prelude("files", "replicate", request)
        if early is not None:
            return early
        filename, content = rec.form.get("content", (None, b""))
        fid = f"f{next(self._ids)}"
        self.files[fid] = (filename or "file", content)
        return JSONResponse(
            {
                "id": fid, "name": filename or "file", "content_type": "application/octet-stream",
                "size": len(content), "etag": "x", "checksums": {}, "metadata": {},
                "created_at": "2026-11-25T12:00:00Z", "expires_at": None,
                "urls": {"get": f"{self.url}/files/{fid}"},
            },
            status_code=201,
        )  # fmt: skip

    async def file_content(self, request: Request) -> Response:
        await self._record("file.get", request)
        fid = request.path_params["fid"]
        if fid not in self.files:
            return Response(status_code=404)
        return Response(self.files[fid][1])

    async def output(self, request: Request) -> Response:
        rec = await self._record("output", request)
        del rec
        kind = request.path_params["kind"]
        behaviour = self._next("output")
        if behaviour.status != 200:
            return Response(b"gone", status_code=behaviour.status)
        if kind == "png":
            return Response(self.clips["png"], media_type="image/png")
        if kind == "html":
            return Response(b"<html><body>Internal error</body></html>", media_type="text/html")
        if kind == "truncated":
            return Response(
                self.clips["mp4"][: len(self.clips["mp4"]) // 3], media_type="video/mp4"
            )
        return Response(self.clips["mp4"], media_type="video/mp4")

    # -- app ----------------------------------------------------------------------------------
    def _build_app(self) -> Starlette:
        def post(path: str, handler: Callable[..., Any]) -> Route:
            return Route(path, handler, methods=["POST"])

        return Starlette(
            routes=[
                post("/v1/audio/transcriptions", self.transcribe),
                post("/v1/chat/completions", self.chat),
                post("/v1/responses", self.responses),
                post("/v1/audio/speech", self.speech),
                post("/v1/text-to-speech/{voice}/stream/with-timestamps", self.el_stream),
                post("/v1/text-to-speech/{voice}/stream", self.el_stream),
                WebSocketRoute("/v1/text-to-speech/{voice}/stream-input", self.el_websocket),
                post("/v1/predictions", self.predictions_create),
                post("/v1/models/{owner}/{model}/predictions", self.predictions_create),
                Route("/v1/predictions/{pid}", self.predictions_get),
                post("/v1/predictions/{pid}/cancel", self.predictions_cancel),
                Route("/v1/models/{owner}/{model}", self.models_get),
                post("/v1/files", self.files_create),
                Route("/files/{fid}", self.file_content),
                Route("/outputs/{pid}/{kind}.{ext}", self.output),
            ]
        )


@contextlib.contextmanager
def running(clips: dict[str, bytes]) -> Any:
    server = WireServer(clips)
    server.start()
    try:
        yield server
    finally:
        server.stop()
