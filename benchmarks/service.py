"""What the service adds: the same spoken question answered in-process and through the service.

Both paths run the same offline stack (faster-whisper tiny.en, llama.cpp SmolLM2 with a fixed
seed at temperature 0, Piper, the portrait avatar) on ``examples/question.wav``, fed as 100 ms
microphone chunks, alternating run by run in one process:

* in-process: ``Conversation.stream(microphone)``, from the end of the chunks to the first
  ``AudioEvent`` in the consumer's hands;
* service: ``lexperience serve`` (uvicorn on a loopback socket, in a thread of this process) and
  the WebSocket client: from sending ``audio_end`` to receiving the first ``audio`` message
  (JSON + base64 PCM, frames as JPEG).

The difference of the medians is what the service adds (target <= 30 ms). Every run is a first
turn (a fresh conversation / a cleared history).

    python benchmarks/service.py --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lexperience import Audio, AudioChunk, AudioEvent, Conversation  # noqa: E402
from lexperience.client import AsyncClient  # noqa: E402
from lexperience.config import BackendConfig, Settings  # noqa: E402
from lexperience.server import ServerSettings  # noqa: E402
from lexperience.server.background import serve_in_thread  # noqa: E402

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


async def in_process(conv: Conversation, parts: list[AudioChunk]) -> float:
    conv.clear_history()
    ended = 0.0

    async def microphone() -> AsyncIterator[AudioChunk]:
        nonlocal ended
        for part in parts:
            yield part
        ended = time.perf_counter()

    first = None
    async for event in conv.stream(microphone()):
        if first is None and isinstance(event, AudioEvent):
            first = time.perf_counter() - ended
    assert first is not None
    return first


async def through_service(client: AsyncClient, parts: list[AudioChunk], video: str) -> float:
    conv = await client.create_conversation()
    try:
        async with conv.stream(video=video) as stream:  # type: ignore[arg-type]
            await stream._send({"type": "audio_start", "sample_rate": parts[0].sample_rate})
            for part in parts:
                await stream._send(part.to_audio().to_pcm16())
            await stream._send({"type": "audio_end"})
            ended = time.perf_counter()
            first = None
            async for message, _ in stream.events():
                if first is None and getattr(message, "type", None) == "audio":
                    first = time.perf_counter() - ended
            assert first is not None, "the turn had no audio"
            return first
    finally:
        await conv.delete()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-avatar", action="store_true")
    parser.add_argument("--video", default="jpeg", choices=("jpeg", "mp4", "none"))
    args = parser.parse_args()
    audio = Audio.load(ROOT / "examples" / "question.wav")
    parts = chunks(audio)
    settings = ServerSettings(stack=stack(not args.no_avatar), port=0, turns_per_minute=1000,
                              burst=100)  # fmt: skip
    local = settings.stack.build()
    await local.aopen()
    with serve_in_thread(settings) as url:
        async with AsyncClient(url) as client:
            while not await client.ready():
                await asyncio.sleep(0.2)
            await in_process(local, parts)  # warm-up of both paths
            await through_service(client, parts, args.video)
            mine, served = [], []
            for _ in range(args.runs):
                mine.append(await in_process(local, parts))
                served.append(await through_service(client, parts, args.video))
    await local.aclose()
    med_a, med_b = statistics.median(mine), statistics.median(served)
    print(f"first audio after the end of the question, median of {args.runs} (min-max):")
    print(f"  in-process  {med_a * 1000:7.1f} ms  ({min(mine) * 1000:.0f}-{max(mine) * 1000:.0f})")
    print(f"  service     {med_b * 1000:7.1f} ms  ({min(served) * 1000:.0f}-{max(served) * 1000:.0f})"
          f"   WebSocket, video={args.video}")  # fmt: skip
    print(f"  the service adds {(med_b - med_a) * 1000:+.1f} ms (target <= 30 ms)")


if __name__ == "__main__":
    asyncio.run(main())
