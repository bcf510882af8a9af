"""Simulated cloud services with scripted latency, for the latency and load benchmarks.

One Starlette app under uvicorn on 127.0.0.1 speaks the wire protocols the cloud backends use, so
the real SDKs (openai, elevenlabs, replicate) and the real backends run unchanged against it:

* OpenAI ``/v1/audio/transcriptions`` (JSON or SSE), ``/v1/chat/completions`` (SSE) and
  ``/v1/audio/speech`` (streamed 24 kHz PCM);
* ElevenLabs ``/v1/text-to-speech/{voice}/stream`` and ``.../stream/with-timestamps``;
* Replicate ``/v1/files``, ``/v1/predictions`` (create, poll, cancel) and the output MP4s.

Each service answers on the schedule of a :class:`LatencyProfile` (the defaults are the figures
of issue 6, written out in docs/performance.md):

* STT: the whole transcript ``stt_s`` (350 ms) after the request arrives;
* LLM: the first token ``llm_first_token_s`` (400 ms) after the request, then
  ``llm_tokens_per_s`` (50) tokens a second; a token here is a word piece of at most 4
  characters (about the size of a real BPE token);
* TTS: the first 0.1 s of audio ``tts_first_byte_s`` (150 ms) after the request, the rest at
  ``tts_speed`` (4x) real time; speech lasts ``speech_s_per_char`` (70 ms) per character;
* avatar: a prediction succeeds ``avatar_base_s + avatar_per_audio_s * audio seconds`` (2 s + 1 s
  per second of audio) after it is created.

Every schedule is absolute from the request's arrival (no drift), and the server records when it
actually sent what (``GET /_stats``), so a benchmark can subtract the services' own latencies
from what the client saw.

The question audio carries its question number in its first samples (:func:`question_audio`):
the transcription answers with that question's text, the chat model's answer names the question,
and the speech lasts a fixed time per character, so a load test can check that every reply belongs
to its own question.

The server runs in a child process (:func:`running`) so that it does not share the benchmark's
GIL; it exits when its parent closes its stdin, or after ``--max-seconds``. Output clips are
encoded in a worker process of its own, so that the encoding never stalls the streamed answers.

The client side lives here too, shared by ``latency.py``, ``load.py`` and the smoke test:
:func:`cloud_backends` (the real backends pointed at the server), in-process twins of the services
with the same schedules (:class:`TwinSTT`, :class:`TwinLLM`, :class:`TwinTTS`: the library without
HTTP), an event-loop stall probe (:class:`LoopLag`) and :func:`summarize` (median and p95).

    python benchmarks/latency_server.py --port 8765   # serve by hand (Ctrl-C to stop)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import email.parser
import email.policy
import importlib.util
import io
import itertools
import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import wave
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lexperience.media import Audio
from lexperience.testing.fakes import speech_like
from lexperience.text import SentenceSplitter

__all__ = [
    "API_KEY",
    "CloudBackends",
    "LatencyProfile",
    "LoopLag",
    "ServerHandle",
    "TwinLLM",
    "TwinSTT",
    "TwinTTS",
    "answer_text",
    "cloud_backends",
    "fake_portrait",
    "first_piece_tokens",
    "machine_info",
    "question_audio",
    "question_text",
    "read_tag",
    "running",
    "speech_seconds",
    "summarize",
    "tokenize",
]

#: The key every simulated service accepts (the SDKs insist on one).
API_KEY = "sk-bench-0123456789abcdef"

PCM_PIECE_S = 0.1  # seconds of audio per streamed TTS piece
CLIP_FPS = 25
CLIP_SIZE = 256  # DreamTalk renders 256x256


@dataclass(frozen=True)
class LatencyProfile:
    """How fast each simulated service answers (seconds; see the module docstring)."""

    stt_s: float = 0.35
    llm_first_token_s: float = 0.40
    llm_tokens_per_s: float = 50.0
    tts_first_byte_s: float = 0.15
    tts_speed: float = 4.0
    avatar_base_s: float = 2.0
    avatar_per_audio_s: float = 1.0
    speech_s_per_char: float = 0.07

    def scaled(self, factor: float) -> LatencyProfile:
        """Every latency times ``factor`` (rates divided by it); the speech itself is unchanged."""
        return replace(
            self,
            stt_s=self.stt_s * factor,
            llm_first_token_s=self.llm_first_token_s * factor,
            llm_tokens_per_s=self.llm_tokens_per_s / factor,
            tts_first_byte_s=self.tts_first_byte_s * factor,
            tts_speed=self.tts_speed / factor,
            avatar_base_s=self.avatar_base_s * factor,
            avatar_per_audio_s=self.avatar_per_audio_s * factor,
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyProfile:
        return cls(**{k: float(v) for k, v in data.items()})


# -- the scripted conversation -------------------------------------------------------------------
TOPICS = (
    "black holes",
    "the tides",
    "rainbows",
    "the northern lights",
    "volcanoes",
    "coral reefs",
    "comets",
    "thunderstorms",
    "glaciers",
    "earthquakes",
    "migrating birds",
    "the seasons",
)
_QUESTION = re.compile(r"question (\d+): what are (.+?)\?", re.IGNORECASE)


def question_text(qid: int) -> str:
    """The question number ``qid`` asks (what the simulated transcription returns)."""
    return f"Question {qid}: what are {TOPICS[qid % len(TOPICS)]}?"


def answer_text(question: str) -> str:
    """The simulated chat model's reply to ``question``: three sentences, about 230 characters,
    whose first clause names the question (so cross-talk between conversations shows)."""
    m = _QUESTION.search(question)
    qid, topic = (m.group(1), m.group(2)) if m else ("0", question.strip().rstrip("?.!") or "that")
    return (
        f"You asked about {topic}, question {qid}, and it is a good one. "
        f"People have wondered about {topic} for a very long time, and scientists still study "
        "them today. The short answer is that it depends on the scale you look at, but the idea "
        "itself is simple."
    )


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word pieces of at most 4 characters (spaces lead a word)."""
    return re.findall(r" ?[^ ]{1,4}", text)


def speech_seconds(text: str, profile: LatencyProfile) -> float:
    """How long the simulated voices take to say ``text``."""
    return len(text) * profile.speech_s_per_char


def first_piece_tokens(text: str, first_clause_words: int) -> int:
    """How many tokens of ``text`` the pipeline's sentence splitter needs before it hands the
    first piece to TTS (the piece's end is only certain once the next token shows)."""
    splitter = SentenceSplitter(first_clause_words=first_clause_words)
    tokens = tokenize(text)
    for i, token in enumerate(tokens, 1):
        if splitter.push(token):
            return i
    return len(tokens)


# -- tagging the question audio ------------------------------------------------------------------
_SYNC = (1, -1, 1, -1, 1, 1, -1, -1)
_BITS = 20
_LEVEL = 0.25


def question_audio(qid: int, rate: int = 16_000) -> Audio:
    """Speech-like audio of :func:`question_text` whose first samples encode ``qid``."""
    if not 0 <= qid < 2**_BITS:
        raise ValueError(f"question ids go from 0 to {2**_BITS - 1}")
    samples, _ = speech_like(question_text(qid).lower(), rate)
    bits = [1 if (qid >> b) & 1 else -1 for b in range(_BITS)]
    head = np.array([*_SYNC, *bits], dtype=np.float32) * _LEVEL
    return Audio(np.concatenate([head, samples]).astype(np.float32), rate)


def read_tag(pcm: np.ndarray) -> int | None:
    """The question id in int16 samples made by :func:`question_audio`, or ``None``."""
    n = len(_SYNC) + _BITS
    if pcm.shape[0] < n:
        return None
    signs = [1 if v > 0 else -1 for v in pcm[:n].tolist()]
    if tuple(signs[: len(_SYNC)]) != _SYNC:
        return None
    return sum(1 << b for b, s in enumerate(signs[len(_SYNC) :]) if s > 0)


def _wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if w.getnchannels() > 1:
            pcm = pcm[:: w.getnchannels()]
    return pcm, rate


def _tone(seconds: float, rate: int, freq: float = 150.0) -> bytes:
    n = max(1, int(round(seconds * rate)))
    t = np.arange(n) / rate
    wave_ = 0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return bytes((wave_ * 32767).astype("<i2").tobytes())


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return out


def _sse(data: Any) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


# -- the server ----------------------------------------------------------------------------------
@dataclass
class _Record:
    """What the server did for one request (times in seconds from its arrival)."""

    endpoint: str
    arrived: float
    sent: list[float] = field(default_factory=list)  # each streamed piece (or the one answer)
    info: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "arrived": self.arrived, "sent": self.sent, **self.info}


@dataclass
class _Prediction:
    id: str
    ready_at: float
    audio_s: float
    status: str = "starting"


class LatencyServer:
    """The simulated services (see the module docstring)."""

    def __init__(
        self,
        profile: LatencyProfile,
        *,
        max_records: int = 20_000,
        encoder: concurrent.futures.Executor | None = None,
    ) -> None:
        self.profile = profile
        self.encoder = encoder  # where output clips are encoded (None: a worker thread)
        self.url = ""
        self.records: deque[_Record] = deque(maxlen=max_records)
        self.files: dict[str, bytes] = {}
        self.predictions: dict[str, _Prediction] = {}
        self._clips: dict[int, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)

    # -- helpers ----------------------------------------------------------------------------
    def _record(self, endpoint: str) -> _Record:
        rec = _Record(endpoint, time.perf_counter())
        self.records.append(rec)
        return rec

    @staticmethod
    async def _until(rec: _Record, offset: float) -> None:
        """Sleep until ``offset`` seconds after the request arrived."""
        delay = rec.arrived + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    def _stream(self, rec: _Record, pieces: list[tuple[float, bytes]], media: str) -> Any:
        from starlette.responses import StreamingResponse

        async def body() -> AsyncIterator[bytes]:
            for offset, piece in pieces:
                await self._until(rec, offset)
                rec.sent.append(time.perf_counter() - rec.arrived)
                yield piece

        return StreamingResponse(body(), media_type=media)

    def _remember(self, key: str, data: bytes) -> None:
        self.files[key] = data
        while len(self.files) > 2_000:  # bounded: drop the oldest uploads
            self.files.pop(next(iter(self.files)))

    def _clip(self, audio_s: float) -> asyncio.Future[bytes]:
        """An MP4 at least ``audio_s`` long (whole seconds), encoded once per length.

        The encoding runs in :attr:`encoder`, a worker process, so that it never holds this
        server's GIL while other responses are being streamed."""
        frames = (math.ceil(audio_s) + 1) * CLIP_FPS
        if frames not in self._clips:
            loop = asyncio.get_running_loop()
            self._clips[frames] = loop.run_in_executor(self.encoder, _make_clip, frames)
        return self._clips[frames]

    # -- OpenAI -----------------------------------------------------------------------------
    async def transcribe(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        rec = self._record("stt")
        form = _multipart(await request.body(), request.headers.get("content-type", ""))
        pcm, _rate = _wav(form["file"][1])
        qid = read_tag(pcm)
        text = question_text(qid) if qid is not None else "What are black holes?"
        rec.info["qid"] = qid
        stream = form.get("stream", (None, b""))[1] == b"true"
        if not stream:
            await self._until(rec, self.profile.stt_s)
            rec.sent.append(time.perf_counter() - rec.arrived)
            return JSONResponse({"text": text})
        words = text.split(" ")
        body = b"".join(
            _sse({"type": "transcript.text.delta", "delta": (" " if i else "") + w})
            for i, w in enumerate(words)
        ) + _sse({"type": "transcript.text.done", "text": text})
        return self._stream(rec, [(self.profile.stt_s, body)], "text/event-stream")

    async def chat(self, request: Any) -> Any:
        rec = self._record("llm")
        req = json.loads(await request.body())
        users = [m for m in req.get("messages", []) if m.get("role") == "user"]
        question = str(users[-1].get("content", "")) if users else ""
        tokens = tokenize(answer_text(question))
        limit = req.get("max_tokens") or req.get("max_completion_tokens")
        if isinstance(limit, int):
            tokens = tokens[:limit]
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1,
                "model": req.get("model", "m")}  # fmt: skip

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse(
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            )

        p = self.profile
        pieces: list[tuple[float, bytes]] = []
        for i, token in enumerate(tokens):
            data = chunk({"content": token})
            if i == 0:
                data = chunk({"role": "assistant", "content": ""}) + data
            pieces.append((p.llm_first_token_s + i / p.llm_tokens_per_s, data))
        end = p.llm_first_token_s + max(0, len(tokens) - 1) / p.llm_tokens_per_s
        pieces.append((end, chunk({}, "stop") + b"data: [DONE]\n\n"))
        rec.info["tokens"] = len(tokens)
        return self._stream(rec, pieces, "text/event-stream")

    def _speech_pieces(self, text: str, rate: int, timestamps: bool) -> list[tuple[float, bytes]]:
        p = self.profile
        seconds = speech_seconds(text, p)
        pcm = _tone(seconds, rate)
        step = int(PCM_PIECE_S * rate) * 2
        per_char = p.speech_s_per_char
        pieces: list[tuple[float, bytes]] = []
        for k, start in enumerate(range(0, len(pcm), step)):
            audio = pcm[start : start + step]
            offset = p.tts_first_byte_s + k * PCM_PIECE_S / p.tts_speed
            if not timestamps:
                pieces.append((offset, audio))
                continue
            t0, t1 = k * PCM_PIECE_S, (k + 1) * PCM_PIECE_S
            chars = [j for j in range(len(text)) if t0 <= j * per_char < t1]
            line = {
                "audio_base64": base64.b64encode(audio).decode(),
                "alignment": {
                    "characters": [text[j] for j in chars],
                    "character_start_times_seconds": [j * per_char for j in chars],
                    "character_end_times_seconds": [(j + 1) * per_char for j in chars],
                },
                "normalized_alignment": None,
            }
            pieces.append((offset, json.dumps(line).encode() + b"\n"))
        return pieces

    async def speech(self, request: Any) -> Any:
        rec = self._record("tts")
        req = json.loads(await request.body())
        text = str(req.get("input", ""))
        rec.info["chars"] = len(text)
        pieces = self._speech_pieces(text, 24_000, timestamps=False)
        return self._stream(rec, pieces, "application/octet-stream")

    # -- ElevenLabs -------------------------------------------------------------------------
    async def elevenlabs(self, request: Any) -> Any:
        rec = self._record("tts")
        timestamps = request.url.path.endswith("/with-timestamps")
        req = json.loads(await request.body())
        text = str(req.get("text", ""))
        rec.info["chars"] = len(text)
        fmt = request.query_params.get("output_format", "pcm_24000")
        rate = int(fmt.split("_")[1]) if fmt.startswith("pcm_") else 24_000
        pieces = self._speech_pieces(text, rate, timestamps)
        return self._stream(rec, pieces, "application/x-ndjson" if timestamps else "audio/pcm")

    # -- Replicate --------------------------------------------------------------------------
    def _prediction_json(self, p: _Prediction) -> dict[str, Any]:
        output = f"{self.url}/outputs/{p.id}.mp4" if p.status == "succeeded" else None
        return {
            "id": p.id, "model": "cjwbw/dreamtalk", "version": "bench", "status": p.status,
            "input": {}, "output": output, "logs": "", "error": None, "metrics": {},
            "created_at": "2026-11-25T12:00:00Z", "started_at": None, "completed_at": None,
            "data_removed": False,
            "urls": {"get": f"{self.url}/v1/predictions/{p.id}",
                     "cancel": f"{self.url}/v1/predictions/{p.id}/cancel"},
        }  # fmt: skip

    async def files_create(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self._record("avatar.upload")
        form = _multipart(await request.body(), request.headers.get("content-type", ""))
        filename, content = form.get("content", (None, b""))
        fid = f"f{next(self._ids)}"
        self._remember(fid, content)
        return JSONResponse(
            {
                "id": fid, "name": filename or "file", "content_type": "application/octet-stream",
                "size": len(content), "etag": "x", "checksums": {}, "metadata": {},
                "created_at": "2026-11-25T12:00:00Z", "expires_at": None,
                "urls": {"get": f"{self.url}/files/{fid}"},
            },
            status_code=201,
        )  # fmt: skip

    def _audio_seconds(self, ref: Any) -> float:
        data = b""
        if isinstance(ref, str) and ref.startswith("data:"):
            data = base64.b64decode(ref.partition(",")[2])
        elif isinstance(ref, str):
            data = self.files.get(ref.rstrip("/").rsplit("/", 1)[-1], b"")
        if not data:
            return 0.0
        pcm, rate = _wav(data)
        return float(pcm.shape[0] / rate)

    async def predictions_create(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        rec = self._record("avatar")
        req = json.loads(await request.body())
        seconds = self._audio_seconds(req.get("input", {}).get("audio"))
        p = self.profile
        pid = f"p{next(self._ids)}"
        ready = rec.arrived + p.avatar_base_s + p.avatar_per_audio_s * seconds
        self.predictions[pid] = _Prediction(pid, ready, seconds)
        self._clip(seconds)
        rec.info.update(audio_s=seconds, id=pid)
        return JSONResponse(self._prediction_json(self.predictions[pid]), status_code=201)

    async def predictions_get(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return JSONResponse({"detail": "Not found.", "status": 404}, status_code=404)
        if p.status in ("starting", "processing"):
            p.status = "succeeded" if time.perf_counter() >= p.ready_at else "processing"
        return JSONResponse(self._prediction_json(p))

    async def predictions_cancel(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return JSONResponse({"detail": "Not found.", "status": 404}, status_code=404)
        if p.status != "succeeded":
            p.status = "canceled"
        return JSONResponse(self._prediction_json(p))

    async def output(self, request: Any) -> Any:
        from starlette.responses import Response

        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return Response(status_code=404)
        clip = await self._clip(p.audio_s)
        return Response(clip, media_type="video/mp4")

    # -- control ----------------------------------------------------------------------------
    async def stats(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse([r.as_json() for r in self.records])

    async def reset(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self.records.clear()
        self.files.clear()
        self.predictions.clear()
        return JSONResponse({"ok": True})

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        def post(path: str, handler: Any) -> Route:
            return Route(path, handler, methods=["POST"])

        return Starlette(
            routes=[
                post("/v1/audio/transcriptions", self.transcribe),
                post("/v1/chat/completions", self.chat),
                post("/v1/audio/speech", self.speech),
                post("/v1/text-to-speech/{voice}/stream", self.elevenlabs),
                post("/v1/text-to-speech/{voice}/stream/with-timestamps", self.elevenlabs),
                post("/v1/files", self.files_create),
                post("/v1/predictions", self.predictions_create),
                Route("/v1/predictions/{pid}", self.predictions_get),
                post("/v1/predictions/{pid}/cancel", self.predictions_cancel),
                Route("/outputs/{pid}.mp4", self.output),
                Route("/_stats", self.stats),
                post("/_reset", self.reset),
            ]
        )


def _make_clip(frames: int) -> bytes:
    """A small H.264 clip of a moving gradient, ``frames`` frames at ``CLIP_FPS``."""
    import tempfile

    from lexperience.output.mp4 import write_mp4

    y, x = np.mgrid[0:CLIP_SIZE, 0:CLIP_SIZE]
    images = [
        np.stack([(x + 3 * i) % 256, (y + 2 * i) % 256, np.full_like(x, 128)], axis=-1).astype(
            np.uint8
        )
        for i in range(max(1, frames))
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = write_mp4(Path(folder) / "clip.mp4", frames=images, fps=CLIP_FPS)
        return path.read_bytes()


def serve(
    profile: LatencyProfile,
    *,
    port: int = 0,
    max_seconds: float = 3600.0,
    watch_stdin: bool = False,
) -> None:
    """Serve on 127.0.0.1:``port`` (0: any free port) and print ``PORT <n>``; run until Ctrl-C,
    ``max_seconds`` pass, or (``watch_stdin``) the parent closes this process's stdin."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)  # connections made before uvicorn runs wait in the backlog
    port = sock.getsockname()[1]
    encoder = concurrent.futures.ProcessPoolExecutor(max_workers=1)
    if importlib.util.find_spec("av") is not None:  # without PyAV only the avatar cannot work
        encoder.submit(_make_clip, 1).result()  # start the worker (and import PyAV) now
    sim = LatencyServer(profile, encoder=encoder)
    sim.url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        sim.app(), log_level="critical", lifespan="off", timeout_graceful_shutdown=1,
        backlog=512, limit_concurrency=2_000,
    )  # fmt: skip
    server = uvicorn.Server(config)
    deadline = time.monotonic() + max_seconds

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.should_exit = True

    def stop_at_deadline() -> None:
        while time.monotonic() < deadline and not server.should_exit:
            time.sleep(0.5)
        server.should_exit = True

    if watch_stdin:
        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    threading.Thread(target=stop_at_deadline, daemon=True).start()
    print(f"PORT {port}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        encoder.shutdown(cancel_futures=True)


# -- the client side -----------------------------------------------------------------------------
@dataclass
class ServerHandle:
    """A running server process: its URLs and its records."""

    url: str
    profile: LatencyProfile
    process: subprocess.Popen[str]

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def stats(self) -> list[dict[str, Any]]:
        """What the server did for each request since the last :meth:`reset`."""
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as response:
            data: list[dict[str, Any]] = json.loads(response.read())
        return data

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@contextlib.contextmanager
def running(profile: LatencyProfile, *, max_seconds: float = 3600.0) -> Iterator[ServerHandle]:
    """Start the server in a child process on 127.0.0.1 and stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--profile", json.dumps(profile.to_dict()),
         "--max-seconds", str(max_seconds), "--watch-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the latency server did not start (said {line!r})")
        yield ServerHandle(f"http://127.0.0.1:{int(line.split()[1])}", profile, process)
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=5)


@dataclass
class CloudBackends:
    """The cloud backends of the benchmarks, pointed at a running server."""

    stt: Any
    llm: Any
    tts: Any
    avatar: Any | None


def cloud_backends(
    url: str,
    *,
    tts: str = "openai",
    avatar: bool = True,
    portrait: Path | None = None,
    avatar_audio_rate: int = 16_000,
    poll_interval: float = 0.1,
) -> CloudBackends:
    """OpenAISTT + OpenAILLM + OpenAITTS (or ElevenLabsTTS) + ReplicateAvatar on the server at
    ``url`` (``http://127.0.0.1:<port>``).

    ``avatar_audio_rate`` is the rate of the WAV each sentence is uploaded at (the avatar's
    ``audio_sample_rate``; 16 kHz is its default); ``poll_interval`` how often a running
    prediction is checked (the default 0.5 s would add up to half a second to each clip).
    """
    from lexperience.backends.openai_llm import OpenAILLM
    from lexperience.backends.openai_stt import OpenAISTT

    speech: Any
    if tts == "openai":
        from lexperience.backends.openai_tts import OpenAITTS

        speech = OpenAITTS(api_key=API_KEY, base_url=f"{url}/v1")
    elif tts == "elevenlabs":
        from lexperience.backends.elevenlabs_tts import ElevenLabsTTS

        speech = ElevenLabsTTS(api_key=API_KEY, base_url=url, output_format="pcm_24000")
    else:
        raise ValueError(f"tts must be 'openai' or 'elevenlabs', got {tts!r}")
    face = None
    if avatar:
        from lexperience.backends.replicate_avatar import ReplicateAvatar

        if portrait is None:
            raise ValueError("the Replicate avatar needs a portrait file")
        face = ReplicateAvatar(
            api_token=API_KEY, base_url=url, portrait=portrait, size=(CLIP_SIZE, CLIP_SIZE),
            poll_interval=poll_interval, audio_sample_rate=avatar_audio_rate,
        )  # fmt: skip
    return CloudBackends(
        stt=OpenAISTT(api_key=API_KEY, base_url=f"{url}/v1"),
        llm=OpenAILLM(api_key=API_KEY, base_url=f"{url}/v1"),
        tts=speech,
        avatar=face,
    )


def fake_portrait(folder: Path) -> Path:
    """A stand-in portrait file (the simulated avatar service never looks inside it)."""
    path = folder / "portrait.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9")
    return path


# -- in-process twins: the same schedules without HTTP -------------------------------------------
class TwinSTT:
    """Answers like the server's transcription endpoint, in process."""

    name = "twin"

    def __init__(self, profile: LatencyProfile) -> None:
        self.profile = profile

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Any:
        from lexperience.transcript import Transcript

        started = time.perf_counter()
        qid = read_tag(np.round(np.clip(audio.samples, -1, 1) * 32767).astype(np.int16))
        text = question_text(qid) if qid is not None else "What are black holes?"
        await asyncio.sleep(max(0.0, started + self.profile.stt_s - time.perf_counter()))
        return Transcript(text=text, language=language, duration=audio.duration)


class TwinLLM:
    """Streams like the server's chat endpoint, in process."""

    name = "twin"

    def __init__(self, profile: LatencyProfile) -> None:
        self.profile = profile

    async def stream(self, messages: Any, *, max_tokens: int | None = None) -> AsyncIterator[str]:
        started = time.perf_counter()
        users = [m for m in messages if m.role == "user"]
        tokens = tokenize(answer_text(users[-1].content if users else ""))[:max_tokens]
        p = self.profile
        for i, token in enumerate(tokens):
            due = started + p.llm_first_token_s + i / p.llm_tokens_per_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            yield token


class TwinTTS:
    """Speaks like the server's speech endpoint (24 kHz, 0.1 s chunks), in process."""

    name = "twin"
    sample_rate = 24_000

    def __init__(self, profile: LatencyProfile) -> None:
        self.profile = profile

    async def stream(self, text: str) -> AsyncIterator[Any]:
        from lexperience.media import AudioChunk

        started = time.perf_counter()
        p = self.profile
        pcm = np.frombuffer(_tone(speech_seconds(text, p), self.sample_rate), dtype="<i2")
        step = int(PCM_PIECE_S * self.sample_rate)
        for k, start in enumerate(range(0, pcm.shape[0], step)):
            due = started + p.tts_first_byte_s + k * PCM_PIECE_S / p.tts_speed
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            block = pcm[start : start + step].astype(np.float32) / 32768.0
            yield AudioChunk(block, self.sample_rate, text=text)


# -- measuring -----------------------------------------------------------------------------------
class LoopLag:
    """Watches the running event loop: how late a 5 ms timer fires shows how long the loop was
    blocked (by anything: a backend's CPU work on the loop, the garbage collector...)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            due = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, time.perf_counter() - due)

    def start(self) -> None:
        self.worst = 0.0
        self._task = asyncio.ensure_future(self._watch())

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.worst


def summarize(values: list[float]) -> dict[str, Any]:
    """Median, p95 (linear interpolation), min, max and the values themselves."""
    if not values:
        return {"n": 0, "median": None, "p95": None, "min": None, "max": None, "values": []}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "median": round(float(np.median(arr)), 4),
        "p95": round(float(np.percentile(arr, 95)), 4),
        "min": round(float(arr.min()), 4),
        "max": round(float(arr.max()), 4),
        "values": [round(v, 4) for v in values],
    }


def machine_info() -> dict[str, Any]:
    """What the figures were taken on."""
    import platform

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "gpu": False,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                break
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--profile", default="{}", help="LatencyProfile fields as JSON")
    parser.add_argument("--scale", type=float, default=1.0, help="scale every latency")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when stdin closes")
    args = parser.parse_args(argv)
    profile = LatencyProfile.from_dict(json.loads(args.profile)).scaled(args.scale)
    serve(profile, port=args.port, max_seconds=args.max_seconds, watch_stdin=args.watch_stdin)


if __name__ == "__main__":
    main()
