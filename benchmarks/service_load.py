"""The service under load: N conversations ask at once over WebSockets, one process or several.

The backends are the fakes with scripted latencies (STT none: typed questions; LLM first token
after 0.3 s, 25 words/s; TTS and the avatar at 4x real time), so the figures measure the service
(admission control, the event loop, JSON and JPEG encoding, nginx) rather than model speed on two
cores. For each N: p50/p95 time to the first audio message, throughput (turns/s over the run),
and how many turns admission control refused (503 / an ``error`` event with ``retry_after``).
With ``--workers W`` (needs nginx) it runs W processes behind nginx and N x W conversations.

    python benchmarks/service_load.py                 # N = 1, 10, 50, one process
    python benchmarks/service_load.py --workers 2     # N x 2 conversations, two processes
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import numpy as np

from lexperience.client import AsyncClient
from lexperience.config import BackendConfig, Settings
from lexperience.server import ServerSettings
from lexperience.server.background import serve_in_thread
from lexperience.server.workers import free_port, start_workers


def stack() -> Settings:
    return Settings(
        stt=None,
        llm=BackendConfig(
            name="fake", options={"first_token_latency": 0.3, "token_interval": 0.04}
        ),
        tts=BackendConfig(name="fake", options={"realtime_factor": 0.25}),
        avatar=BackendConfig(name="fake", options={"size": [256, 256], "realtime_factor": 0.25}),
    )


async def one_turn(client: AsyncClient, index: int) -> tuple[float | None, bool]:
    """(seconds to the first audio, refused?) of one conversation's turn."""
    conv = await client.create_conversation()
    try:
        async with conv.stream(video="jpeg") as stream:
            started = time.perf_counter()
            await stream.ask(f"Question {index}: what happens to light near a black hole?")
            first = None
            async for message, _ in stream.events():
                kind = getattr(message, "type", None)
                if kind == "audio" and first is None:
                    first = time.perf_counter() - started
                if kind == "error":
                    return None, getattr(message.error, "retry_after", None) is not None  # type: ignore[attr-defined]
            return first, False
    finally:
        await conv.delete()


async def load(url: str, n: int) -> dict[str, Any]:
    async with AsyncClient(url, timeout=300) as client:
        while not await client.ready():
            await asyncio.sleep(0.1)
        await one_turn(client, -1)  # warm-up
        started = time.perf_counter()
        results = await asyncio.gather(*(one_turn(client, i) for i in range(n)))
        wall = time.perf_counter() - started
    firsts = [f for f, _ in results if f is not None]
    refused = sum(1 for _, r in results if r)
    return {
        "n": n,
        "p50": statistics.median(firsts) if firsts else float("nan"),
        "p95": float(np.percentile(firsts, 95)) if firsts else float("nan"),
        "throughput": len(firsts) / wall,
        "refused": refused,
    }


def settings(port: int, slots: int, queue: int) -> ServerSettings:
    return ServerSettings(stack=stack(), port=port, turns_per_minute=100_000, burst=100_000,
                          max_conversations=1000, max_concurrent_turns=slots,
                          max_queued_turns=queue)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--n", type=int, nargs="*", default=[1, 10, 50])
    parser.add_argument("--slots", type=int, default=16,
                        help="turns computing at once per process (I/O-bound backends: more "
                             "than the cores)")  # fmt: skip
    parser.add_argument("--queue", type=int, default=16, help="turns waiting per process")
    args = parser.parse_args()
    rows = []
    if args.workers == 1:
        with serve_in_thread(settings(0, args.slots, args.queue)) as url:
            rows = [asyncio.run(load(url, n)) for n in args.n]
    else:
        config = settings(free_port(), args.slots, args.queue)
        with start_workers(config, args.workers):
            url = f"http://127.0.0.1:{config.port}"
            rows = [asyncio.run(load(url, n * args.workers)) for n in args.n]
    print(
        f"{args.workers} worker(s), {args.slots} turn slots + {args.queue} queued each, "
        "fake backends with scripted latency"
    )
    print(f"{'N':>5} {'p50 first audio':>16} {'p95':>8} {'turns/s':>8} {'refused':>8}")
    for r in rows:
        print(f"{r['n']:>5} {r['p50'] * 1000:>13.0f} ms {r['p95'] * 1000:>5.0f} ms "
              f"{r['throughput']:>8.2f} {r['refused']:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
