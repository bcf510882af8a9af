"""The benchmarks' side of the simulated cloud services (shared by ``latency.py``, ``load.py``
and the smoke test).

The services themselves are :mod:`lexperience.testing.wire` (the same server the cloud tests
use): one Starlette app under uvicorn on 127.0.0.1 that speaks the wire protocols the cloud
backends use, so the real SDKs (openai, elevenlabs, replicate) and the real backends run
unchanged against it:

* OpenAI ``/v1/audio/transcriptions`` (JSON or SSE), ``/v1/chat/completions`` (SSE) and
  ``/v1/audio/speech`` (streamed 24 kHz PCM);
* ElevenLabs ``/v1/text-to-speech/{voice}/stream`` and ``.../stream/with-timestamps``;
* Replicate ``/v1/files``, ``/v1/predictions`` (create, poll, cancel) and the output MP4s.

Each service answers on the schedule of a :class:`LatencyProfile`; the benchmarks use
:data:`BENCH_PROFILE` (``LatencyProfile.typical()``, the figures of issue 6, written out in
docs/performance.md):

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
to its own question (the server's :class:`~lexperience.testing.wire.NumberedQuestions` dialogue).

The server runs in a child process (:func:`running`) so that it does not share the benchmark's
GIL; it exits when its parent closes its stdin, or after ``max_seconds``. Output clips are
encoded in a worker process of its own, so that the encoding never stalls the streamed answers.

Here: :func:`cloud_backends` (the real backends pointed at the server), in-process twins of the
services with the same schedules (:class:`TwinSTT`, :class:`TwinLLM`, :class:`TwinTTS`: the
library without HTTP), an event-loop stall probe (:class:`LoopLag`) and :func:`summarize` (median
and p95).

    python benchmarks/latency_server.py --port 8765   # serve by hand (Ctrl-C to stop)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import lexperience.testing.wire as wire
from lexperience.media import Audio
from lexperience.testing.wire import (
    LatencyProfile,
    ServerHandle,
    answer_text,
    question_audio,
    question_text,
    read_tag,
    speech_seconds,
    tone,
)
from lexperience.text import SentenceSplitter

__all__ = [
    "BENCH_PROFILE",
    "CLIP_SIZE",
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

#: The latencies the benchmarks simulate (see the module docstring).
BENCH_PROFILE = LatencyProfile.typical()
PCM_PIECE_S = wire.PCM_PIECE_S  # seconds of audio per streamed TTS piece
CLIP_SIZE = 256  # DreamTalk renders 256x256


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the tokens the simulated chat model streams (word pieces of at most
    4 characters; spaces lead a word)."""
    return wire.tokenize(text, BENCH_PROFILE.llm_token_chars)


def first_piece_tokens(text: str, first_clause_words: int) -> int:
    """How many tokens of ``text`` the pipeline's sentence splitter needs before it hands the
    first piece to TTS (the piece's end is only certain once the next token shows)."""
    splitter = SentenceSplitter(first_clause_words=first_clause_words)
    tokens = tokenize(text)
    for i, token in enumerate(tokens, 1):
        if splitter.push(token):
            return i
    return len(tokens)


@contextlib.contextmanager
def running(profile: LatencyProfile, *, max_seconds: float = 3600.0) -> Iterator[ServerHandle]:
    """Start the server in a child process on 127.0.0.1 and stop it on exit."""
    with wire.spawn(
        profile, dialogue="numbered", clip_size=CLIP_SIZE, max_seconds=max_seconds
    ) as handle:
        yield handle


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

        speech = OpenAITTS(api_key=wire.OPENAI_KEY, base_url=f"{url}/v1")
    elif tts == "elevenlabs":
        from lexperience.backends.elevenlabs_tts import ElevenLabsTTS

        speech = ElevenLabsTTS(api_key=wire.ELEVENLABS_KEY, base_url=url, output_format="pcm_24000")
    else:
        raise ValueError(f"tts must be 'openai' or 'elevenlabs', got {tts!r}")
    face = None
    if avatar:
        from lexperience.backends.replicate_avatar import ReplicateAvatar

        if portrait is None:
            raise ValueError("the Replicate avatar needs a portrait file")
        face = ReplicateAvatar(
            api_token=wire.REPLICATE_KEY, base_url=url, portrait=portrait, size=(CLIP_SIZE, CLIP_SIZE),
            poll_interval=poll_interval, audio_sample_rate=avatar_audio_rate,
        )  # fmt: skip
    return CloudBackends(
        stt=OpenAISTT(api_key=wire.OPENAI_KEY, base_url=f"{url}/v1"),
        llm=OpenAILLM(api_key=wire.OPENAI_KEY, base_url=f"{url}/v1"),
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
        pcm = tone(speech_seconds(text, p), self.sample_rate, wire.OPENAI_VOICE_HZ)
        step = int(PCM_PIECE_S * self.sample_rate)
        for k, start in enumerate(range(0, pcm.shape[0], step)):
            due = started + p.tts_first_byte_s + k * PCM_PIECE_S / p.tts_speed
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            block = pcm[start : start + step].astype(np.float32) / 32768.0
            yield AudioChunk(block, self.sample_rate, text=text)


# -- measuring -----------------------------------------------------------------------------------
class GcPauses:
    """How long the garbage collector paused the process while it runs (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.full: list[float] = []  # generation-2 collections, seconds each
        self.total = 0.0
        self._began = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        self.total += took
        if info.get("generation") == 2:
            self.full.append(took)

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)


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
    """Serve the benchmarks' services by hand (``--scale``, ``--port``...)."""
    wire.main(["--typical", "--dialogue", "numbered", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
