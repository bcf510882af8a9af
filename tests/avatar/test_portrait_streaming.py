"""Streaming behaviour of the portrait avatar: order and causality (frames come as their audio
arrives, never waiting for more than they need), the frame-count contract, the event loop.

No wall-clock thresholds here: speed and latency figures are in ``benchmarks/avatar.py``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.errors import BackendError, InvalidInputError
from lexperience.media import Audio, AudioChunk
from lexperience.protocols import Avatar
from lexperience.registry import create
from lexperience.visemes import VisemeCue


def tone(seconds: float, rate: int) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return Audio((0.3 * env * np.sin(2 * np.pi * 180 * t)).astype(np.float32), rate)


@pytest.fixture(scope="module")
def avatar() -> PortraitAvatar:
    return PortraitAvatar(seed=3)


def test_is_an_avatar_and_registered() -> None:
    built = create("avatar", "portrait", fps=30, size=256)
    assert isinstance(built, PortraitAvatar) and isinstance(built, Avatar)
    assert built.fps == 30.0 and built.name == "portrait"


async def test_first_frame_comes_before_the_second_chunk_is_pulled(
    avatar: PortraitAvatar, piper_speech: Audio, tools: type
) -> None:
    chunks = tools.split(piper_speech, 4410)  # 0.2 s chunks
    pulled: list[float] = []
    frames = []
    async for frame in avatar.animate(tools.feed(chunks, pulled)):
        if not frames:
            assert len(pulled) == 1, "the first frame waited for more audio than it needs"
        frames.append(frame)
    assert len(frames) == round(piper_speech.duration * avatar.fps)


async def test_with_viseme_cues_frames_wait_only_for_a_little_audio_after_them(
    avatar: PortraitAvatar, tools: type
) -> None:
    """With cues, a frame needs the audio (and cues) just after it, since the mouth leads the
    sound: the first frame still comes with the first 0.3 s chunk, before the second is pulled,
    and every frame comes before the audio 0.3 s past its end is pulled."""
    audio = tone(3.0, 16_000)
    cue = (VisemeCue(0.0, 0.3, "aa"),)
    chunks = [AudioChunk(c.samples, c.sample_rate, visemes=cue) for c in tools.split(audio, 4800)]
    pulled: list[float] = []
    frames = []
    async for frame in avatar.animate(tools.feed(chunks, pulled)):
        if not frames:
            assert len(pulled) == 1
        frames.append(frame)
        end = (frame.index + 1) / avatar.fps
        assert len(pulled) * 0.3 <= end + 0.3 + 0.3 + 1e-9 or len(pulled) == len(chunks)
    assert len(frames) == 75


async def test_frames_of_a_chunk_come_before_the_next_chunk_is_sent(
    avatar: PortraitAvatar, tools: type
) -> None:
    """The source sends chunk k+1 only once the consumer holds every frame of chunk k: it would
    never finish if the avatar waited for more audio than a frame needs."""
    audio = tone(1.0, 16_000)
    chunks = tools.split(audio, 3200)  # five 0.2 s chunks, five frames each
    got: list[object] = []
    seen = [asyncio.Event() for _ in chunks]

    async def gated_feed() -> AsyncIterator[AudioChunk]:
        for k, chunk in enumerate(chunks):
            if k:
                await seen[k - 1].wait()
            yield chunk

    async def consume() -> None:
        async for frame in avatar.animate(gated_feed()):
            got.append(frame)
            if len(got) % 5 == 0:
                seen[len(got) // 5 - 1].set()

    # A guard against a hang, not a speed threshold: the rendering takes milliseconds.
    await asyncio.wait_for(consume(), timeout=60)
    assert len(got) == 25


@pytest.mark.parametrize(
    ("rate", "sizes", "seconds", "fps"),
    [
        (16_000, [1, 7, 333, 1600, 4001], 1.2345, 25.0),
        (44_100, [1323], 2.01, 25.0),
        (8_000, [80], 0.999, 30.0),
        (22_050, [100_000], 1.5, 24.0),
        (48_000, [17, 959], 0.05, 25.0),
        (11_025, [64], 0.013, 25.0),  # less than half a frame: no frame at all
        (24_000, [500, 20, 2000], 0.981, 29.97),
    ],
)
async def test_frame_count_contract(
    rate: int, sizes: list[int], seconds: float, fps: float, tools: type
) -> None:
    audio = tone(seconds, rate)
    avatar = PortraitAvatar(fps=fps, size=128, seed=0)
    frames = [f async for f in avatar.animate(tools.feed(tools.split(audio, sizes)))]
    assert len(frames) == round(len(audio) * fps / rate)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(f.fps == fps and f.image.shape == (128, 128, 3) for f in frames)


async def test_mixed_sample_rates_are_resampled_to_the_first(tools: type) -> None:
    a, b, c = tone(0.5, 16_000), tone(0.7, 24_000), tone(0.33, 8_000)
    chunks = [
        *tools.split(a, 1000),
        AudioChunk(b.samples, b.sample_rate),
        AudioChunk(c.samples, c.sample_rate),
    ]
    avatar = PortraitAvatar(size=128)
    frames = [f async for f in avatar.animate(tools.feed(chunks))]
    total = len(a) + round(len(b) * 16_000 / 24_000) + round(len(c) * 16_000 / 8_000)
    assert len(frames) == round(total * 25 / 16_000) == round(1.53 * 25)


async def test_empty_stream_and_empty_chunks(avatar: PortraitAvatar, tools: type) -> None:
    assert [f async for f in avatar.animate(tools.feed([]))] == []
    empty = AudioChunk(np.zeros(0, np.float32), 16_000)
    chunks = [empty, *tools.split(tone(0.4, 16_000), 1600), empty]
    assert len([f async for f in avatar.animate(tools.feed(chunks))]) == 10


async def test_bad_items_raise(avatar: PortraitAvatar) -> None:
    async def bad() -> object:
        yield "not audio"

    with pytest.raises(InvalidInputError, match="AudioChunk"):
        async for _ in avatar.animate(bad()):  # type: ignore[arg-type]
            pass


async def test_source_errors_propagate(avatar: PortraitAvatar, tools: type) -> None:
    async def failing() -> object:
        for chunk in tools.split(tone(0.4, 16_000), 1600):
            yield chunk
        raise BackendError("tts broke", backend="fake", stage="tts")

    got = []
    with pytest.raises(BackendError, match="tts broke"):
        async for frame in avatar.animate(failing()):  # type: ignore[arg-type]
            got.append(frame)
    assert len(got) == 10  # everything before the failure was delivered


async def test_closing_early_stops_the_work(avatar: PortraitAvatar, tools: type) -> None:
    pulled: list[float] = []
    chunks = tools.split(tone(5.0, 16_000), 1600)
    threads_before = threading.active_count()
    gen = avatar.animate(tools.feed(chunks, pulled))
    async with contextlib.aclosing(gen):
        async for frame in gen:
            if frame.index == 5:
                break
    await asyncio.sleep(0.05)
    assert len(pulled) < len(chunks) // 2  # it stopped pulling audio
    assert threading.active_count() <= threads_before + 2  # worker threads are pooled, idle


async def test_rendering_runs_in_worker_threads(tools: type) -> None:
    """Frames are rendered off the event loop's thread, so the loop stays free (the loop's lag
    while rendering is measured in ``benchmarks/avatar.py``)."""
    avatar = PortraitAvatar(seed=3)
    threads: set[int] = set()
    render = avatar._render

    def spy(*args: Any) -> Any:
        threads.add(threading.get_ident())
        return render(*args)

    avatar._render = spy  # type: ignore[method-assign]
    frames = [f async for f in avatar.animate(tools.feed(tools.split(tone(2.0, 16_000), 8000)))]
    assert len(frames) == 50
    assert threads and threading.get_ident() not in threads


async def test_two_streams_at_once_share_one_avatar(avatar: PortraitAvatar, tools: type) -> None:
    audio = tone(1.0, 16_000)

    async def run() -> list[object]:
        return [f async for f in avatar.animate(tools.feed(tools.split(audio, 1600)))]

    a, b = await asyncio.gather(run(), run())
    assert len(a) == len(b) == 25


async def test_the_warm_up_at_aopen_leaves_the_seeded_frames_as_they_were() -> None:
    clip = tone(0.5, 16_000)

    async def frames(avatar: PortraitAvatar) -> list[np.ndarray]:
        async def chunks() -> AsyncIterator[AudioChunk]:
            yield AudioChunk(clip.samples, clip.sample_rate)

        return [f.image async for f in avatar.animate(chunks())]

    warmed = PortraitAvatar(seed=11, size=128)
    await warmed.aopen()  # renders frames of its own (a Conversation calls it once)
    plain = PortraitAvatar(seed=11, size=128)
    got, want = await frames(warmed), await frames(plain)
    assert len(got) == len(want) == round(clip.duration * warmed.fps)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
