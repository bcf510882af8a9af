"""The Replicate avatar's lifecycle under cancellation, back-pressure, redirects and large
outputs: every task it starts ends before ``animate()`` returns, every prediction it started is
cancelled on Replicate, a cancellation is never swallowed, and downloads stay bounded."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from test_cloud_replicate import avatar, feed, sentence_chunks

import lexperience.backends.replicate_avatar as replicate_avatar
from lexperience import AudioChunk, BackendError
from lexperience.backends.replicate_avatar import decode_clip
from lexperience.testing.wire import Behaviour, WireServer, gradient_clip

pytest.importorskip("replicate")
pytest.importorskip("av")

pytestmark = [pytest.mark.cloud, pytest.mark.usefixtures("ramp_clip")]


async def until(condition: object, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds: causality, not timing."""
    for _ in range(1000):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_a_create_still_in_flight_is_waited_for_and_its_prediction_cancelled(
    wire: WireServer, portrait: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old code gave a pending create 5 s, then dropped it (and the prediction it started);
    # the grace period is shortened here so that a slow POST outlives it.
    monkeypatch.setattr(replicate_avatar, "_CANCEL_TIMEOUT", 0.05, raising=False)
    wire.script("predictions.create", Behaviour(delay=0.5, options={"outcome": "hold"}))
    backend = avatar(wire, portrait)
    before = other_tasks()

    async def run() -> None:
        _ = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]

    task = asyncio.ensure_future(run())
    await until(lambda: wire.calls("predictions.create"), "the POST reached the server")
    assert not wire.predictions  # its answer is not back yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # when animate() has returned, the prediction exists and was cancelled
    assert len(wire.predictions) == 1 and wire.cancelled == list(wire.predictions)
    assert other_tasks() <= before  # nothing it started is still running
    await backend.aclose()


async def test_a_second_cancellation_during_cleanup_is_not_swallowed_nor_abandons_the_cancel(
    wire: WireServer, portrait: Path
) -> None:
    wire.script("predictions.create", Behaviour(options={"outcome": "hold"}))
    wire.script("predictions.cancel", Behaviour(delay=0.4))  # a slow cancel request
    backend = avatar(wire, portrait)
    before = other_tasks()

    async def run() -> None:
        _ = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]

    task = asyncio.ensure_future(run())
    await until(lambda: any(p.status == "processing" for p in wire.predictions.values()), "poll")
    task.cancel()
    await until(lambda: wire.calls("predictions.cancel"), "the cancel request was sent")
    task.cancel()  # again, while the cancel request is still in flight
    with pytest.raises(asyncio.CancelledError):
        await task
    (prediction,) = wire.predictions.values()
    assert wire.cancelled == [prediction.id]  # the cancel finished before animate() returned
    assert prediction.status == "canceled"
    assert other_tasks() <= before
    await backend.aclose()


async def test_audio_is_read_with_back_pressure(wire: WireServer, portrait: Path) -> None:
    # Every prediction is held: no frame can come out. A bounded avatar stops reading the audio
    # once its channels are full instead of buffering all of it.
    wire.script("predictions.create", *[Behaviour(options={"outcome": "hold"})] * 50)
    backend = avatar(wire, portrait, max_concurrency=1)
    per_sentence, sentences = 10, 200
    pulled = 0

    async def audio() -> AsyncIterator[AudioChunk]:
        nonlocal pulled
        samples = np.full(160, 0.1, dtype=np.float32)
        for s in range(sentences):
            for _ in range(per_sentence):
                pulled += 1
                yield AudioChunk(samples, 16_000, sentence_index=s)

    async def run() -> None:
        _ = [f async for f in backend.animate(audio())]

    task = asyncio.ensure_future(run())
    await until(lambda: wire.predictions, "the first prediction was created")
    inbox = getattr(replicate_avatar, "INBOX_CHUNKS", 256)
    await until(lambda: pulled >= inbox, "the inbox filled")
    for _ in range(50):  # let every stage run as far as it can
        await asyncio.sleep(0)
    bound = inbox + per_sentence * (2 * 1 + 2 + 4)  # the inbox, the jobs, the open segments
    assert pulled <= bound < per_sentence * sentences
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(wire.cancelled) == sorted(
        p.id for p in wire.predictions.values() if p.status == "canceled"
    )
    assert all(p.status == "canceled" for p in wire.predictions.values())
    await backend.aclose()


async def test_a_redirect_to_the_same_host_is_followed(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(options={"output": "redirect"}))
    frames = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert len(frames) == 10
    assert [c.path.rsplit("/", 1)[-1] for c in wire.calls("output")] == ["redirect.mp4", "mp4.mp4"]


async def test_a_redirect_to_another_host_is_refused(wire: WireServer, portrait: Path) -> None:
    elsewhere = f"http://localhost:{wire.port}/outputs/p1/mp4.mp4"  # another host name
    wire.script(
        "predictions.create", Behaviour(options={"output": "redirect", "redirect_to": elsewhere})
    )
    with pytest.raises(BackendError, match="redirected to another host") as info:
        _ = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert not info.value.retryable
    assert not [c for c in wire.calls("output") if c.headers["host"].startswith("localhost")]


async def test_download_hosts_allows_a_redirect(wire: WireServer, portrait: Path) -> None:
    elsewhere = f"http://localhost:{wire.port}/outputs/p1/mp4.mp4"
    wire.script(
        "predictions.create", Behaviour(options={"output": "redirect", "redirect_to": elsewhere})
    )
    backend = avatar(wire, portrait, download_hosts=["localhost"])
    frames = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]
    assert len(frames) == 10
    assert wire.calls("output")[-1].headers["host"].startswith("localhost")


async def test_max_download_bytes_holds_while_streaming(wire: WireServer, portrait: Path) -> None:
    wire.script("output", Behaviour(options={"chunked": True}))  # no Content-Length
    backend = avatar(wire, portrait, max_download_bytes=1000, max_retries=0)
    with pytest.raises(BackendError, match="over 1000 bytes"):
        _ = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]


async def test_an_invalid_output_url_is_a_typed_error(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(options={"output": "invalid-url"}))
    with pytest.raises(BackendError, match="bad Replicate URL") as info:
        _ = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert not info.value.retryable and info.value.stage == "avatar"


async def test_errors_keep_replicate_request_ids(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(status=500, body={"detail": "boom"}))
    with pytest.raises(BackendError) as info:
        _ = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    (call,) = wire.calls("predictions.create")
    assert info.value.request_id == call.request_id and call.request_id
    assert call.request_id in str(info.value)


def test_decode_clip_streams_frames_one_at_a_time() -> None:
    clip = gradient_clip(3.0, size=256)  # 100 frames of 256 x 256: 19.7 MB when all decoded
    frames = decode_clip(clip, (256, 256))
    image, t = next(frames)
    assert image.shape == (256, 256, 3) and t == 0.0
    tracemalloc.start()
    try:
        count, last = 1, 0.0
        for _image, t in frames:  # each frame is dropped before the next one is decoded
            assert t >= last
            count, last = count + 1, t
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100 and last == pytest.approx(99 / 25)
    assert peak < 5 * 256 * 256 * 3  # a few frames' worth, never the whole clip
