"""The Replicate avatar against the local wire server, through the official SDK: the prediction
lifecycle, file uploads, output checks, frame counts and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from cloud_support import CLIP_BASE, CLIP_STEP

from lexperience import (
    AudioChunk,
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    Conversation,
    Persona,
    RateLimitError,
    TurnInterrupted,
    VideoEvent,
)
from lexperience.backends.replicate_avatar import (
    DREAMTALK,
    ReplicateAvatar,
    ReplicateModel,
    sample_frames,
)
from lexperience.testing import FakeLLM, FakeTTS
from lexperience.testing.wire import REPLICATE_KEY, Behaviour, WireServer

pytest.importorskip("replicate")
pytest.importorskip("av")

pytestmark = [pytest.mark.cloud, pytest.mark.usefixtures("ramp_clip")]

RATE = 16_000


def avatar(wire: WireServer, portrait: Path, **kw: object) -> ReplicateAvatar:
    options: dict[str, object] = {
        "api_token": REPLICATE_KEY, "base_url": wire.url, "portrait": portrait,
        "poll_interval": 0.02, "size": (32, 24), "flush_after": None,
    }  # fmt: skip
    options.update(kw)
    return ReplicateAvatar(**options)  # type: ignore[arg-type]


def sentence_chunks(durations: Sequence[float], chunk: float = 0.1) -> list[AudioChunk]:
    """Chunks of ``durations`` seconds per sentence, split into ``chunk``-second pieces."""
    out: list[AudioChunk] = []
    for index, seconds in enumerate(durations):
        n = int(round(seconds * RATE))
        t = np.arange(n) / RATE
        samples = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
        step = int(chunk * RATE)
        for start in range(0, n, step):
            out.append(AudioChunk(samples[start : start + step], RATE, sentence_index=index))
    return out


async def feed(chunks: Sequence[AudioChunk]) -> AsyncIterator[AudioChunk]:
    for chunk in chunks:
        yield chunk


def grey(frame: np.ndarray) -> int:
    return int(np.median(frame))


async def test_dreamtalk_clips_become_exactly_fps_frames_per_second_of_audio(
    wire: WireServer, portrait: Path
) -> None:
    backend = avatar(wire, portrait)
    durations = [1.03, 0.61, 1.5]
    frames = [f async for f in backend.animate(feed(sentence_chunks(durations)))]
    # cumulative rounding: the total matches the audio exactly, each sentence within a frame
    assert len(frames) == round(sum(durations) * 25)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(f.image.shape == (24, 32, 3) and f.fps == 25 for f in frames)
    # one prediction per sentence, created with the pinned version and DreamTalk's inputs
    creates = wire.calls("predictions.create")
    assert len(creates) == 3
    for call in creates:
        body = call.json()
        assert body["version"] == DREAMTALK.version
        inputs = body["input"]
        for key, value in DREAMTALK.inputs.items():
            assert inputs[key] == value
        assert inputs["image"].startswith(wire.url + "/files/")
        assert inputs["audio"].startswith(wire.url + "/files/")
    # the portrait was uploaded once, each sentence's WAV once
    uploads = wire.calls("files")
    names = sorted(u.form["content"][0] or "" for u in uploads)
    assert names == ["face.jpg", "sentence-0.wav", "sentence-1.wav", "sentence-2.wav"]
    assert (
        wire.files[creates[0].json()["input"]["image"].rsplit("/", 1)[1]][1]
        == portrait.read_bytes()
    )
    # every prediction went starting -> processing -> succeeded (polled with GETs)
    assert all(p.status == "succeeded" for p in wire.predictions.values())
    assert len(wire.calls("predictions.get")) >= 3 * 2
    # the token never goes to the output host
    assert all("authorization" not in c.headers for c in wire.calls("output"))
    # each sentence restarts its clip: frame k of a sentence is the clip's frame k
    starts = [0, round(1.03 * 25), round(1.64 * 25)]
    for s in starts:
        assert grey(frames[s].image) == pytest.approx(CLIP_BASE, abs=3)
        assert grey(frames[s + 10].image) == pytest.approx(CLIP_BASE + 10 * CLIP_STEP, abs=3)


async def test_first_sentence_clip_is_yielded_before_the_audio_ends(
    wire: WireServer, portrait: Path
) -> None:
    backend = avatar(wire, portrait)
    second_sentence = asyncio.Event()
    chunks = sentence_chunks([0.8, 0.8])

    async def slow_audio() -> AsyncIterator[AudioChunk]:
        for chunk in chunks:
            if chunk.sentence_index == 1 and not second_sentence.is_set():
                yield chunk  # opens sentence 1, which closes sentence 0
                await second_sentence.wait()
                continue
            yield chunk

    stream = backend.animate(slow_audio())
    first = await asyncio.wait_for(stream.__anext__(), 10)
    assert first.index == 0
    second_sentence.set()
    rest = [f async for f in stream]
    assert 1 + len(rest) == 40


async def test_flush_after_renders_a_sentence_when_the_next_is_slow(
    wire: WireServer, portrait: Path
) -> None:
    backend = avatar(wire, portrait, flush_after=0.1)
    release = asyncio.Event()

    async def audio() -> AsyncIterator[AudioChunk]:
        for chunk in sentence_chunks([0.4]):
            yield chunk
        await release.wait()  # the LLM is still writing sentence 2

    stream = backend.animate(audio())
    first = await asyncio.wait_for(stream.__anext__(), 10)
    assert first.index == 0
    release.set()
    assert len([f async for f in stream]) == 9


async def test_clip_frames_are_dropped_or_repeated_to_fit_the_audio(
    wire: WireServer, portrait: Path
) -> None:
    # The 2 s clip at 25 fps for 3 s of audio at 10 fps: every 2.5th frame, then the last held.
    backend = avatar(wire, portrait, fps=10)
    frames = [f async for f in backend.animate(feed(sentence_chunks([3.0])))]
    assert len(frames) == 30
    greys = [grey(f.image) for f in frames]
    assert greys[1] == pytest.approx(CLIP_BASE + 2 * CLIP_STEP, abs=3)  # t=0.1 s: clip frame 2
    assert greys[2] == pytest.approx(CLIP_BASE + 5 * CLIP_STEP, abs=3)  # t=0.2 s: clip frame 5
    assert greys[25] == greys[29] == pytest.approx(CLIP_BASE + 49 * CLIP_STEP, abs=3)


def test_sample_frames_picks_by_time() -> None:
    times = [i / 25 for i in range(10)]
    assert sample_frames(times, 5, 50) == [0, 0, 1, 1, 2]
    assert sample_frames(times, 4, 5) == [0, 5, 9, 9]


async def test_create_429_is_retried(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(status=429, headers={"retry-after": "0"},
                body={"title": "Too Many Requests", "detail": "slow down", "status": 429}))  # fmt: skip
    frames = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert len(frames) == 10
    assert len(wire.calls("predictions.create")) == 2


async def test_create_429_without_retries_is_a_rate_limit_error(
    wire: WireServer, portrait: Path
) -> None:
    wire.script("predictions.create", Behaviour(status=429, body={"detail": "slow down"}))
    with pytest.raises(RateLimitError):
        _ = [
            f
            async for f in avatar(wire, portrait, max_retries=0).animate(
                feed(sentence_chunks([0.4]))
            )
        ]


async def test_create_500_is_not_retried_and_is_retryable(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(status=500, body={"detail": "boom"}))
    with pytest.raises(BackendError) as info:
        _ = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert info.value.status == 500 and info.value.retryable and info.value.stage == "avatar"
    assert len(wire.calls("predictions.create")) == 1  # a retried POST could bill twice


async def test_malformed_create_answer_is_a_retryable_error(
    wire: WireServer, portrait: Path
) -> None:
    wire.script("predictions.create", Behaviour(malformed=True))
    with pytest.raises(BackendError, match="malformed") as info:
        _ = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert info.value.retryable
    assert not wire.calls("predictions.cancel")  # no prediction id came back: nothing to cancel


@pytest.mark.parametrize(
    ("output", "retryable", "match"),
    [
        ("png", False, "PNG image, not a video"),
        ("html", False, "HTML"),
        ("truncated", True, "video"),
        ("none", True, "no output"),
    ],
)
async def test_outputs_that_are_not_a_video(
    wire: WireServer, portrait: Path, output: str, retryable: bool, match: str
) -> None:
    wire.script("predictions.create", Behaviour(options={"output": output}))
    with pytest.raises(BackendError, match=match) as info:
        _ = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert info.value.retryable is retryable


async def test_a_list_output_is_accepted(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(options={"output": "list"}))
    frames = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert len(frames) == 10


async def test_a_failed_prediction_names_the_model_error(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(options={"outcome": "failed"}))
    with pytest.raises(BackendError, match="CUDA out of memory") as info:
        _ = [f async for f in avatar(wire, portrait).animate(feed(sentence_chunks([0.4])))]
    assert not info.value.retryable


async def test_a_prediction_past_its_deadline_is_cancelled(
    wire: WireServer, portrait: Path
) -> None:
    wire.script("predictions.create", Behaviour(options={"outcome": "hold"}))
    backend = avatar(wire, portrait, prediction_timeout=0.3)
    with pytest.raises(BackendTimeoutError):
        _ = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]
    assert wire.cancelled == list(wire.predictions)


async def test_a_stalled_poll_times_out(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.get", Behaviour(delay=1.5))
    backend = avatar(wire, portrait, timeout=0.3, max_retries=0)
    with pytest.raises(BackendTimeoutError):
        _ = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]


async def test_bad_token_is_an_authentication_error(wire: WireServer, portrait: Path) -> None:
    backend = avatar(wire, portrait, api_token="r8_wrong-token-12345")
    with pytest.raises(AuthenticationError) as info:
        _ = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]
    assert "r8_wrong-token-12345" not in str(info.value) and not info.value.retryable


async def test_other_models_by_spec_with_data_uris_and_latest_version(
    wire: WireServer, portrait: Path
) -> None:
    spec = {"name": "someone/lipsync", "image_input": "face", "audio_input": "speech",
            "inputs": {"fps": 25}}  # fmt: skip
    backend = avatar(wire, portrait, model=spec, upload="data-uri", inputs={"fps": 30})
    frames = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]
    assert len(frames) == 10
    assert len(wire.calls("models.get")) == 1  # the latest version, looked up once
    body = wire.calls("predictions.create")[0].json()
    assert body["version"] == "v" * 64
    assert body["input"]["face"].startswith("data:image/jpeg;base64,")
    assert body["input"]["speech"].startswith("data:audio/wav;base64,")
    assert body["input"]["fps"] == 30
    assert not wire.calls("files")


async def test_official_models_run_without_a_version(wire: WireServer, portrait: Path) -> None:
    spec = ReplicateModel(name="acme/talker", official=True)
    frames = [
        f async for f in avatar(wire, portrait, model=spec).animate(feed(sentence_chunks([0.2])))
    ]
    assert len(frames) == 5
    assert wire.calls("predictions.create")[0].path == "/v1/models/acme/talker/predictions"


def test_model_specs_parse() -> None:
    assert ReplicateModel.parse("dreamtalk") is DREAMTALK
    pinned = ReplicateModel.parse("cjwbw/dreamtalk:abc")
    assert pinned.version == "abc" and pinned.inputs == DREAMTALK.inputs
    sad = ReplicateModel.parse("sadtalker")
    assert (sad.image_input, sad.audio_input) == ("source_image", "driven_audio")
    with pytest.raises(ConfigurationError):
        ReplicateModel.parse("not-a-model-name")


def test_a_portrait_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="portrait"):
        ReplicateAvatar(api_token=REPLICATE_KEY)
    with pytest.raises(ConfigurationError, match="not found"):
        ReplicateAvatar(api_token=REPLICATE_KEY, portrait=tmp_path / "missing.png")


async def test_cancelled_while_creating_still_cancels_the_new_prediction(
    wire: WireServer, portrait: Path
) -> None:
    wire.script("predictions.create", Behaviour(delay=0.4, options={"outcome": "hold"}))
    backend = avatar(wire, portrait)

    async def run() -> None:
        _ = [f async for f in backend.animate(feed(sentence_chunks([0.4])))]

    task = asyncio.ensure_future(run())
    for _ in range(500):
        if wire.calls("predictions.create"):
            break
        await asyncio.sleep(0.01)
    assert not wire.predictions  # the POST is in flight: no id known yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(wire.predictions) == 1 and wire.cancelled == list(wire.predictions)


async def test_interrupt_cancels_the_running_prediction(wire: WireServer, portrait: Path) -> None:
    wire.script("predictions.create", Behaviour(options={"outcome": "hold"}))
    conv = Conversation(
        llm=FakeLLM("Black holes bend light."),
        tts=FakeTTS(),
        avatar=avatar(wire, portrait),
        persona=Persona(name="Wren", prompt="You are Wren.", portrait=portrait),
    )
    events: list[object] = []

    async def consume() -> None:
        async for event in conv.stream("What is a black hole?"):
            events.append(event)

    task = asyncio.ensure_future(consume())
    for _ in range(500):
        if any(p.status == "processing" for p in wire.predictions.values()):
            break
        await asyncio.sleep(0.01)
    (prediction,) = wire.predictions.values()
    assert prediction.status == "processing" and not wire.cancelled
    await conv.interrupt()
    assert wire.cancelled == [prediction.id]  # seen by the server before interrupt() returned
    assert prediction.status == "canceled"
    await asyncio.wait_for(task, 5)
    assert isinstance(events[-1], TurnInterrupted)
    assert not any(isinstance(e, VideoEvent) for e in events)
    await conv.aclose()
