"""The reply stream (bytes readers follow while it grows) and the players' HTTP routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
from conftest import EXAMPLES
from fastapi import FastAPI
from ui_support import slow_fake_stack

from lexperience.events import AudioEvent, VideoEvent
from lexperience.media import AudioChunk, VideoFrame
from lexperience.testing.fakes import speech_like
from lexperience.ui import UIConfig
from lexperience.ui.routes import media_router
from lexperience.ui.runtime import UIRuntime
from lexperience.ui.stream import ReplyStream

RATE, FPS = 16_000, 25


def _events(seconds: float) -> list[AudioEvent | VideoEvent]:
    samples, _ = speech_like("words " * int(seconds * 3), RATE)
    samples = samples[: int(seconds * RATE)]
    events: list[AudioEvent | VideoEvent] = []
    frame, step = 0, RATE // 10
    for start in range(0, samples.shape[0], step):
        chunk = AudioChunk(samples[start : start + step], RATE)
        events.append(AudioEvent(turn_id=1, t=0.0, chunk=chunk, offset=start / RATE))
        while frame < round(min(samples.shape[0], start + step) / RATE * FPS):
            image = np.full((32, 32, 3), frame % 256, dtype=np.uint8)
            events.append(VideoEvent(turn_id=1, t=0.0, frame=VideoFrame(image, frame, FPS)))
            frame += 1
    return events


async def test_readers_get_the_bytes_while_the_reply_grows() -> None:
    stream = ReplyStream("k-1", fps=FPS)
    events = _events(3.0)
    received: list[tuple[int, bool]] = []  # (bytes so far, whether the stream had ended)

    async def reader() -> None:
        total = 0
        async for data in stream.read():
            total += len(data)
            received.append((total, stream.ended))

    task = asyncio.ensure_future(reader())
    for event in events[: len(events) // 3]:
        await stream.feed(event)
    await stream.wait_started()
    assert stream.mime_type is not None and stream.state == "streaming"
    while not received:
        await asyncio.sleep(0.005)
    assert received[0][1] is False  # bytes arrived before the reply was complete
    for event in events[len(events) // 3 :]:
        await stream.feed(event)
    await stream.finish()
    await task
    assert stream.state == "done" and received[-1][0] == stream.size
    # a reader that comes late gets the whole reply from the first byte
    late = b"".join([chunk async for chunk in stream.read()])
    assert len(late) == stream.size and late[4:8] == b"ftyp"


async def test_an_aborted_stream_ends_its_readers() -> None:
    stream = ReplyStream("k-2", fps=FPS)
    for event in _events(1.0):
        await stream.feed(event)
    await stream.wait_started()
    reader = asyncio.ensure_future(_drain(stream))
    await stream.abort()
    assert stream.state == "aborted"
    assert await asyncio.wait_for(reader, 5) > 0
    await stream.feed(_events(1.0)[0])  # ignored after the end


async def test_a_turn_without_audio_ends_empty() -> None:
    stream = ReplyStream("k-3", fps=None)
    await stream.finish()
    await stream.wait_started()
    assert stream.state == "done" and stream.mime_type is None and stream.size == 0


async def _drain(stream: ReplyStream) -> int:
    return sum([len(c) async for c in stream.read()])


async def test_the_media_routes(tmp_path: Path) -> None:
    runtime = UIRuntime(UIConfig(stack=slow_fake_stack(tts_realtime=0.0)))
    app = FastAPI()
    app.include_router(media_router(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
        assert (await client.get("/lexperience/media/nope-1.mp4")).status_code == 404

        session = runtime.sessions.get("s")
        view = await runtime.chat(session)
        async for _ in view.ask("Hello"):
            pass
        assert view.reply is not None
        url = "/" + view.player_state()["url"]
        response = await client.get(url)
        assert response.status_code == 200
        assert response.headers["x-lexperience-mime"].startswith('video/mp4; codecs="avc1.')
        assert float(response.headers["x-lexperience-offset"]) > 0
        assert response.headers["cache-control"] == "no-store"
        assert len(response.content) == view.reply.stream.size

        empty = ReplyStream(f"{view.key}-99", fps=None)
        runtime._register(empty)
        await empty.finish()
        assert (await client.get(f"/lexperience/media/{empty.key}.mp4")).status_code == 204

        ep = await runtime.open_episode(session, EXAMPLES / "episode" / "slow-signals-12.json")
        assert ep.audio is not None
        audio_url = f"/lexperience/episode/{session.key}/{ep.audio.name}"
        whole = await client.get(audio_url)
        assert whole.status_code == 200 and whole.content == ep.audio.read_bytes()
        part = await client.get(audio_url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == ep.audio.read_bytes()[100:200]
        assert (
            await client.get(f"/lexperience/episode/{session.key}/other.ogg")
        ).status_code == 404
        assert (await client.get(f"/lexperience/episode/wrong/{ep.audio.name}")).status_code == 404
    await runtime.stop()
