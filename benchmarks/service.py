"""What the service adds: the same spoken question answered in-process and through the service.

Both paths run the same offline stack, each turn in a new conversation (faster-whisper tiny.en, llama.cpp SmolLM2 with a fixed
seed at temperature 0, Piper, the portrait avatar) on ``examples/question.wav``, fed as 100 ms
microphone chunks paced in real time (as a microphone delivers them), alternating run by run:

* in-process: ``Conversation.stream(microphone)``, from the end of the chunks to the first
  ``AudioEvent`` in the consumer's hands;
* service: ``lexperience serve`` in its own process (uvicorn on a loopback socket, as deployed)
  and the WebSocket client: from sending ``audio_end`` to receiving the first ``audio`` message
  (JSON + base64 PCM, frames as JPEG). ``--thread`` runs the server in a thread of this process
  instead (client and server then share one GIL, which inflates the difference).

The difference of the medians is what the service adds (target <= 30 ms). Every run is a first
turn of a new conversation, so the LLM's prompt cache holds the system prompt only.

    python benchmarks/service.py --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from lexperience import Audio, AudioChunk, AudioEvent, Conversation, TurnDone  # noqa: E402
from lexperience.client import AsyncClient  # noqa: E402
from lexperience.config import BackendConfig, Settings  # noqa: E402
from lexperience.server import ServerSettings  # noqa: E402
from lexperience.server.background import serve_in_thread  # noqa: E402
from lexperience.server.workers import free_port  # noqa: E402

LLM_OPTIONS = {"seed": 7, "temperature": 0.0}


def stack(avatar: bool) -> Settings:
    return Settings(
        stt=BackendConfig(name="faster-whisper"),
        llm=BackendConfig(name="llama-cpp", options=LLM_OPTIONS),
        tts=BackendConfig(name="piper"),
        avatar=BackendConfig(name="portrait") if avatar else None,
    )


def chunks(audio: Audio, seconds: float = 0.1) -> list[AudioChunk]:
    step = int(audio.sample_rate * seconds)
    return [AudioChunk(audio.samples[i : i + step], audio.sample_rate)
            for i in range(0, len(audio), step)]  # fmt: skip


async def in_process(shared: Conversation, parts: list[AudioChunk]) -> tuple[float, float]:
    # a new conversation on the same backends each run, as the service makes one per run (its
    # aopen primes the LLM with the system prompt only: no cache of the previous question)
    b = shared.backends
    conv = Conversation(stt=b.stt, llm=b.llm, tts=b.tts, avatar=b.avatar, persona=shared.persona)
    ended = 0.0

    async def microphone() -> AsyncIterator[AudioChunk]:
        nonlocal ended
        for part in parts:
            yield part
            await asyncio.sleep(part.duration)
        ended = time.perf_counter()

    first = None
    async for event in conv.stream(microphone()):
        if first is None and isinstance(event, AudioEvent):
            first = time.perf_counter() - ended
        if isinstance(event, TurnDone):
            pipeline = event.reply.metrics.first_audio_s
    assert first is not None and pipeline is not None
    return first, first - pipeline


async def through_service(
    client: AsyncClient, parts: list[AudioChunk], video: str
) -> tuple[float, float]:
    conv = await client.create_conversation()
    try:
        async with conv.stream(video=video) as stream:  # type: ignore[arg-type]
            await stream._send({"type": "audio_start", "sample_rate": parts[0].sample_rate})
            for part in parts:
                await stream._send(part.to_audio().to_pcm16())
                await asyncio.sleep(part.duration)
            await stream._send({"type": "audio_end"})
            ended = time.perf_counter()
            first = pipeline = None
            async for message, _ in stream.events():
                if first is None and getattr(message, "type", None) == "audio":
                    first = time.perf_counter() - ended
                if getattr(message, "type", None) == "turn_done":
                    pipeline = message.reply.metrics.first_audio_s  # type: ignore[attr-defined]
            assert first is not None and pipeline is not None, "the turn had no audio"
            return first, first - pipeline
    finally:
        await conv.delete()


@contextlib.contextmanager
def serve_in_process(settings: ServerSettings) -> Iterator[str]:
    """``lexperience serve`` as a child process on a free port; yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "server.json"
        config.write_text(settings.model_dump_json(exclude={"tokens", "port"}), "utf-8")
        command = [sys.executable, "-m", "lexperience", "serve", "--config", str(config),
                   "--port", str(port), "--log-level", "warning"]  # fmt: skip
        process = subprocess.Popen(command)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(30)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-avatar", action="store_true")
    parser.add_argument("--video", default="jpeg", choices=("jpeg", "mp4", "none"))
    parser.add_argument("--thread", action="store_true", help="serve from a thread of this process")
    args = parser.parse_args()
    audio = Audio.load(ROOT / "examples" / "question.wav")
    parts = chunks(audio)
    settings = ServerSettings(stack=stack(not args.no_avatar), port=0, turns_per_minute=1000,
                              burst=100)  # fmt: skip
    local = settings.stack.build()
    await local.aopen()
    server = serve_in_thread(settings) if args.thread else serve_in_process(settings)
    with server as url:
        async with AsyncClient(url) as client:
            while True:
                try:
                    if await client.ready():
                        break
                except Exception:  # not listening yet
                    pass
                await asyncio.sleep(0.2)
            await in_process(local, parts)  # warm-up of both paths
            await through_service(client, parts, args.video)
            mine, served = [], []
            for _ in range(args.runs):
                mine.append(await in_process(local, parts))
                served.append(await through_service(client, parts, args.video))
    await local.aclose()

    def ms(values: list[float]) -> str:
        return (f"{statistics.median(values) * 1000:7.1f} ms median, "
                f"p95 {float(np.percentile(values, 95)) * 1000:6.1f} ms")  # fmt: skip

    print(f"{args.runs} runs each, alternating; video={args.video}")
    print("first audio after the end of the question (end to end):")
    print(f"  in-process {ms([f for f, _ in mine])}")
    print(f"  service    {ms([f for f, _ in served])}")
    print("beyond the pipeline's own first_audio_s (what delivery adds, per turn):")
    print(f"  in-process {ms([o for _, o in mine])}")
    print(f"  service    {ms([o for _, o in served])}   (target: adds <= 30 ms)")


if __name__ == "__main__":
    asyncio.run(main())
