"""The backend end to end on the CPU with the STAND-IN network: frame accounting and A/V timing,
early first frames, seam blending, guidance, DDIM steps, caches, interruption and error mapping.

The stand-in renderer shows, in stripes at the top of each frame, the coefficients that drove it
(see ``standin/generators/face_model.py``): 0 the frame's own audio loudness, 1 the style code,
2 the loudness at the right edge of its audio window, 3 the first head-pose angle. Reading them
back shows which audio, style and pose drove which frame.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import torch
from dreamtalk_standin import StandinSetup, stripes, write_style
from dreamtalk_support import RATE, chunks_of, collect, gated, stream, tone

from lexperience import Conversation
from lexperience.backends import _dreamtalk_inputs
from lexperience.backends._dreamtalk_timeline import pose_indices
from lexperience.errors import BackendError, InvalidInputError
from lexperience.media import AudioChunk
from lexperience.testing import FakeLLM, FakeTTS

LOUD = 0.5 / math.sqrt(2)  # RMS of the test tone: the stand-in's "audio" coefficient
STEP = 1 / 127.5  # one grey level


def values(frames: list[Any]) -> np.ndarray:
    return np.array([stripes(f.image) for f in frames])


@pytest.mark.parametrize("rate", [16_000, 22_050])
async def test_exactly_25_frames_per_second_numbered_in_order(make_avatar: Any, rate: int) -> None:
    rng = np.random.default_rng(rate)
    samples = tone(2.61, rate)
    chunks, pos, sentence = [], 0, 0
    while pos < samples.shape[0]:
        n = int(rng.integers(200, rate // 2))
        chunks.append(AudioChunk(samples[pos : pos + n], rate, sentence_index=sentence))
        pos, sentence = pos + n, sentence + int(rng.random() < 0.3)
    frames = await collect(make_avatar(max_chunk_seconds=0.8), chunks)
    assert [f.index for f in frames] == list(range(round(2.61 * 25)))
    assert all(f.fps == 25.0 and f.image.shape == (256, 256, 3) for f in frames)


async def test_each_frame_shows_its_own_audio_across_seams_and_resampling(make_avatar: Any) -> None:
    rate, total = 22_050, 60
    on = [(10, 20), (33, 34), (40, 47)]
    samples = gated(on, total, rate)
    per = rate // 25
    # three sentences: the first seam falls inside the first burst (frame 15)
    chunks = (
        chunks_of(samples[: 15 * per], rate, size=3000, sentence=0)
        + chunks_of(samples[15 * per : 37 * per], rate, size=3000, sentence=1)
        + chunks_of(samples[37 * per :], rate, size=3000, sentence=2)
    )
    frames = await collect(make_avatar(), chunks)
    assert len(frames) == total
    audio = values(frames)[:, 0]
    expected = np.zeros(total)
    for a, b in on:
        expected[a:b] = LOUD
    assert np.abs(audio - expected).max() < 4 * STEP  # every frame, no shift of even one frame


async def test_first_frames_come_while_later_sentences_are_still_awaited(make_avatar: Any) -> None:
    avatar = make_avatar(flush_after=0.05)
    first_chunk = asyncio.Event()
    log: list[str] = []
    received: list[Any] = []

    async def speech() -> AsyncIterator[AudioChunk]:
        for c in chunks_of(tone(1.0), RATE, size=4000, sentence=0):
            yield c
        try:  # the next sentence only comes once the first one is on screen
            await asyncio.wait_for(first_chunk.wait(), 60)
            log.append("first chunk seen")
        except asyncio.TimeoutError:
            log.append("timed out")
        for c in chunks_of(tone(0.6), RATE, size=4000, sentence=1):
            yield c
        log.append("speech done")

    async for frame in avatar.animate(speech()):
        received.append(frame)
        if len(received) == 25:  # all of sentence 1, its held-back tail included
            first_chunk.set()
    assert log == ["first chunk seen", "speech done"]
    assert len(received) == 40


@pytest.mark.parametrize("overlap", [3, 0])
async def test_no_frame_at_a_seam_is_drawn_from_missing_audio(
    make_avatar: Any, overlap: int
) -> None:
    # A steady tone in three sentences of 30 frames. The stand-in's "right context" coefficient
    # is the loudness at the right edge of a frame's audio window: for a chunk's last 3 frames
    # that edge lies in audio not received yet (silence), until the next chunk regenerates them.
    avatar = make_avatar(overlap_frames=overlap)
    chunks = [c for s in range(3) for c in chunks_of(tone(1.2), RATE, size=6400, sentence=s)]
    right = values(await collect(avatar, chunks))[:, 2]
    assert right[:87] == pytest.approx(np.full(87, LOUD), abs=2 * STEP)  # seams at 30 and 60
    assert right[87:] == pytest.approx([0, 0, 0], abs=2 * STEP)  # the reply's end: no more audio
    # each later chunk regenerated the held-back frames of the one before
    held = 3 + overlap
    sampled = sorted({frames for _, frames in avatar.models.diff_net.net.calls})
    assert sampled == sorted({30, 30 + held})


@pytest.mark.parametrize("scale", [1.0, 2.0])
async def test_guidance_is_skipped_at_scale_one(make_avatar: Any, scale: float) -> None:
    avatar = make_avatar(cfg_scale=scale, ddim_steps=5)
    frames = await collect(avatar, chunks_of(tone(1.0), RATE, size=8000))
    models = avatar.models
    calls = models.diff_net.net.calls
    assert {batch for batch, _ in calls} == ({1} if scale == 1.0 else {2})
    assert len(calls) == 5  # one chunk, five DDIM steps
    cond = float(avatar._code.mean())
    uncond = float(models.null_code().mean())
    expected = uncond + scale * (cond - uncond)
    style = values(frames)[:, 1]
    assert style == pytest.approx(np.full(len(frames), np.clip(expected, -1, 1)), abs=2 * STEP)


async def test_ddim_steps_set_the_sampling_work(make_avatar: Any) -> None:
    chunks = [c for s in range(2) for c in chunks_of(tone(0.8), RATE, size=8000, sentence=s)]
    for steps in (10, 5):
        avatar = make_avatar(ddim_steps=steps)
        await collect(avatar, chunks)
        assert len(avatar.models.diff_net.net.calls) == 2 * steps
        avatar.models.diff_net.net.calls.clear()


async def test_a_long_sentence_is_split_into_chunks(make_avatar: Any) -> None:
    avatar = make_avatar(max_chunk_seconds=0.5)
    frames = await collect(avatar, chunks_of(tone(2.0), RATE, size=4000))
    assert len(frames) == 50
    assert avatar.models.counts["sample"] == math.ceil(50 / 12)


async def test_the_head_follows_the_pose_file_back_and_forth(
    make_avatar: Any, standin: StandinSetup
) -> None:
    frames = await collect(make_avatar(), chunks_of(tone(4.0), RATE, size=8000))
    pose = np.linspace(-0.5, 0.5, 40)  # the stand-in's sample pose: first angle ramps
    expected = pose[pose_indices(np.arange(100), 40)]
    assert values(frames)[:, 3] == pytest.approx(expected, abs=2 * STEP)
    still = await collect(make_avatar(pose="still"), chunks_of(tone(0.4), RATE, size=8000))
    assert values(still)[:, 3] == pytest.approx(np.zeros(10), abs=STEP)


async def test_a_second_reply_does_no_per_portrait_or_per_style_work(
    make_avatar: Any, astronaut: np.ndarray, standin: StandinSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    crops: list[str] = []
    real_crop = _dreamtalk_inputs.crop_portrait

    def counting(*args: Any, **kwargs: Any) -> np.ndarray:
        crops.append(kwargs["name"])
        return real_crop(*args, **kwargs)

    monkeypatch.setattr(_dreamtalk_inputs, "crop_portrait", counting)
    portrait = np.ascontiguousarray(astronaut[:, ::-1])  # a portrait no other test used
    a = make_avatar(portrait=portrait)
    chunks = chunks_of(tone(0.6), RATE, size=8000)
    await collect(a, chunks)
    await collect(a, chunks)
    models = a.models
    assert len(crops) == 1
    assert (models.counts["style_code"], models.counts["source"]) == (1, 1)
    assert models.counts["sample"] == 2  # the per-reply work is done per reply
    b = make_avatar(portrait=portrait.copy())  # the same face in another array: same content
    await collect(b, chunks)
    assert b.models is models  # the networks are shared, not loaded again
    assert len(crops) == 1 and models.counts["source"] == 1 and models.counts["style_code"] == 1
    other_style = write_style(standin.checkout / "data" / "other_style.mat", 50, seed=5, level=-0.2)
    c = make_avatar(portrait=portrait, style_clip=other_style)
    await collect(c, chunks)
    assert models.counts["style_code"] == 2 and len(crops) == 1


async def test_the_same_seed_gives_the_same_video(make_avatar: Any) -> None:
    chunks = chunks_of(gated([(3, 9)], 20), RATE, size=5000)
    one = await collect(make_avatar(seed=11), chunks)
    two = await collect(make_avatar(seed=11), chunks)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(one, two, strict=True))


async def test_closing_the_stream_stops_the_work(make_avatar: Any) -> None:
    avatar = make_avatar(flush_after=0.05)
    never = asyncio.Event()
    closed: list[bool] = []

    async def speech() -> AsyncIterator[AudioChunk]:
        try:
            for c in chunks_of(tone(1.0), RATE, size=4000):
                yield c
            await never.wait()  # the speaker is interrupted here
        finally:
            closed.append(True)

    frames = avatar.animate(speech())
    first = await frames.__anext__()
    assert first.index == 0
    await asyncio.wait_for(frames.aclose(), 30)
    assert closed == [True]  # the audio source was closed too
    await asyncio.to_thread(avatar.models.lock.acquire)  # no step is left holding the device
    avatar.models.lock.release()
    again = await collect(avatar, chunks_of(tone(0.4), RATE, size=8000))
    assert len(again) == 10


async def test_gpu_out_of_memory_suggests_fewer_steps_and_fp16(
    make_avatar: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    avatar = make_avatar()
    avatar.load()
    net = avatar.models.diff_net.net

    def oom(*args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(net, "forward", oom)
    with pytest.raises(BackendError) as info:
        await collect(avatar, chunks_of(tone(0.5), RATE, size=8000))
    err = info.value
    assert (err.backend, err.stage, err.retryable) == ("dreamtalk", "avatar", False)
    assert "out of memory" in str(err) and "ddim_steps=5" in str(err) and "fp16" in str(err)

    def cuda_error(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(net, "forward", cuda_error)
    with pytest.raises(BackendError, match="ddim_steps=5"):
        await collect(avatar, chunks_of(tone(0.5), RATE, size=8000))


async def test_other_model_failures_are_backend_errors(
    make_avatar: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    avatar = make_avatar()
    avatar.load()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("shape mismatch somewhere")

    monkeypatch.setattr(avatar.models.renderer, "forward", broken)
    with pytest.raises(BackendError, match=r"rendering .*shape mismatch") as info:
        await collect(avatar, chunks_of(tone(0.5), RATE, size=8000))
    assert isinstance(info.value.__cause__, RuntimeError)

    def no_ram(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")

    monkeypatch.setattr(avatar.models.renderer, "forward", no_ram)
    with pytest.raises(BackendError, match=r"out of memory .* on the CPU: use shorter chunks"):
        await collect(avatar, chunks_of(tone(0.5), RATE, size=8000))


async def test_bad_input_and_a_failing_source(make_avatar: Any) -> None:
    avatar = make_avatar()

    async def not_chunks() -> AsyncIterator[Any]:
        yield np.zeros(100)

    with pytest.raises(InvalidInputError, match="AudioChunk"):
        _ = [f async for f in avatar.animate(not_chunks())]

    async def failing() -> AsyncIterator[AudioChunk]:
        yield AudioChunk(tone(0.3), RATE)
        raise ValueError("the TTS broke")

    with pytest.raises(ValueError, match="the TTS broke"):
        _ = [f async for f in avatar.animate(failing())]
    assert await collect(avatar, []) == []


async def test_other_output_sizes(make_avatar: Any) -> None:
    avatar = make_avatar(size=128)
    frames = await collect(avatar, chunks_of(tone(0.4), RATE, size=8000))
    assert {f.image.shape for f in frames} == {(128, 128, 3)}
    assert avatar.preview().shape == (128, 128, 3)


async def test_inside_a_conversation(make_avatar: Any) -> None:
    avatar = make_avatar()
    conv = Conversation(
        llm=FakeLLM("Hello there. How are you today?"), tts=FakeTTS(), avatar=avatar
    )
    reply = await conv.areply("Hi", keep_frames=True)
    assert reply.audio is not None and reply.fps == 25.0
    assert len(reply.frames) == round(reply.audio.duration * 25)
    assert reply.metrics.first_video_s is not None
    assert [f.index for f in reply.frames] == list(range(len(reply.frames)))
    # the frames show the speech: loud where the reply speaks
    audio = values(list(reply.frames))[:, 0]
    assert audio.max() > 0.05
    await stream([]).aclose()


async def test_the_first_frames_are_rendered_in_a_small_batch(
    make_avatar: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    avatar = make_avatar(render_batch=16)
    avatar.load()
    sizes: list[int] = []
    real = avatar.models.render

    def spy(source: Any, driving: np.ndarray) -> np.ndarray:
        sizes.append(int(driving.shape[0]))
        return real(source, driving)

    monkeypatch.setattr(avatar.models, "render", spy)
    frames = await collect(avatar, chunks_of(tone(2.0), RATE, size=8000))
    assert len(frames) == 50 and sum(sizes) == 50
    assert sizes[0] == 4 and max(sizes) == 16
