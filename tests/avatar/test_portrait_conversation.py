"""The portrait avatar inside a Conversation: end to end, saved to an MP4, and built by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lexperience import AudioEvent, Conversation, Persona
from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.render.host import draw_host
from lexperience.testing import FakeLLM, FakeTTS

av = pytest.importorskip("av")


async def test_conversation_reply_saves_a_synced_mp4(tmp_path: Path) -> None:
    avatar = PortraitAvatar(seed=4)
    conv = Conversation(llm=FakeLLM(), tts=FakeTTS(), avatar=avatar)
    reply = await conv.areply("What is a black hole?", keep_frames=True)
    assert reply.audio is not None and reply.fps == 25.0
    assert len(reply.frames) == round(reply.audio.duration * 25)
    m = reply.metrics
    assert m.first_video_s is not None and m.first_audio_s is not None
    # Frames come from audio: the first frame follows the first audio and precedes the end
    # (the delay between them is measured in benchmarks/avatar.py).
    assert m.first_audio_s <= m.first_video_s <= m.total_s
    assert m.video_frames == len(reply.frames)

    saved = reply.save(tmp_path)
    assert saved.mp4 is not None and saved.mp4.stat().st_size > 10_000
    with av.open(str(saved.mp4)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.width, video.height) == (512, 512)
        video_s = float(video.duration * video.time_base)
        audio_s = float(audio.duration * audio.time_base)
        decoded = list(container.decode(video=0))
    assert len(decoded) == len(reply.frames)
    assert abs(video_s - audio_s) <= 1 / 25
    assert abs(audio_s - reply.audio.duration) < 1e-3

    # The conversation stamps its "AI-generated" mark; the avatar itself draws none.
    corner = (slice(470, 505), slice(330, 505))
    raw = avatar.preview()[corner].astype(int)
    stamped = decoded[0].to_ndarray(format="rgb24")[corner].astype(int)
    assert np.abs(stamped - raw).mean() > 10
    assert np.array_equal(avatar.preview(), draw_host(512)[0])  # the host's drawing, no mark


async def test_streamed_turn_yields_frames_while_speaking() -> None:
    conv = Conversation(
        llm=FakeLLM("One short sentence. And a second one, a bit longer than the first."),
        tts=FakeTTS(realtime_factor=0.05),
        avatar=PortraitAvatar(size=256),
    )
    kinds = []
    audio = []
    async for event in conv.stream("Hi"):
        kinds.append(event.type)
        if isinstance(event, AudioEvent):
            audio.append(event)
    first_video = kinds.index("video")
    assert "audio" in kinds[first_video:]  # video started before all the audio was out
    assert kinds[-1] == "turn_done"
    assert kinds.count("video") == round(sum(e.chunk.duration for e in audio) * 25)


async def test_built_by_name_with_the_persona_portrait(astronaut_png: Path) -> None:
    persona = Persona(name="Test", prompt="You are a test.", portrait=astronaut_png)
    conv = Conversation(llm=FakeLLM(), tts=FakeTTS(), avatar="portrait", persona=persona)
    avatar = conv.backends.avatar
    assert isinstance(avatar, PortraitAvatar)
    assert avatar.source == "photo"
    reply = await conv.areply("Hello?", keep_frames=True)
    assert reply.audio is not None
    assert len(reply.frames) == round(reply.audio.duration * avatar.fps)
