"""Every event has its hook; partial transcripts are events, not a side callback."""

from __future__ import annotations

import asyncio
import typing

import numpy as np

from lexperience import (
    Audio,
    Conversation,
    Event,
    Hooks,
    PartialTranscript,
    TranscriptEvent,
    TurnCancelledError,
    TurnDone,
    TurnInterrupted,
    TurnStarted,
)
from lexperience.events import EVENT_TYPES
from lexperience.hooks import HOOK_FOR_EVENT
from lexperience.testing import FakeAvatar, FakeLLM, FakeStreamingSTT, FakeTTS


def speech() -> Audio:
    t = np.arange(16_000) / 16_000
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000)


def test_every_event_type_has_a_hook() -> None:
    assert set(typing.get_args(Event)) == set(EVENT_TYPES) == set(HOOK_FOR_EVENT)
    names = {f for f in Hooks.__dataclass_fields__}
    assert set(HOOK_FOR_EVENT.values()) <= names


async def test_on_event_sees_the_whole_stream_in_order() -> None:
    seen: list[str] = []
    specific: list[str] = []
    hooks = Hooks(
        on_event=lambda e: seen.append(type(e).__name__),
        on_turn_started=lambda e: specific.append("started"),
        on_turn_done=lambda e: specific.append("done"),
        on_reply=lambda r: specific.append("reply"),
    )
    conv = Conversation(stt=FakeStreamingSTT(), llm=FakeLLM(), tts=FakeTTS(),
                        avatar=FakeAvatar(), hooks=hooks)  # fmt: skip
    events = [type(e).__name__ async for e in conv.stream(speech())]
    assert seen == events
    assert specific == ["started", "done", "reply"]


async def test_turn_interrupted_has_its_hook() -> None:
    interrupted: list[TurnInterrupted] = []
    conv = Conversation(llm=FakeLLM(first_token_latency=5),
                        tts=FakeTTS(), hooks=Hooks(on_turn_interrupted=interrupted.append))  # fmt: skip
    task = asyncio.ensure_future(conv.areply("go"))
    await asyncio.sleep(0.1)
    await conv.interrupt()
    try:
        await task
    except TurnCancelledError:
        pass
    assert len(interrupted) == 1 and interrupted[0].turn_id == 1


async def test_a_streaming_stt_yields_partial_transcripts_before_the_final_one() -> None:
    stt = FakeStreamingSTT("tell me about the moon", word_interval=0.001)
    conv = Conversation(stt=stt, llm=FakeLLM(), tts=FakeTTS())
    events = [e async for e in conv.stream(speech())]
    assert isinstance(events[0], TurnStarted)
    partials = [e for e in events if isinstance(e, PartialTranscript)]
    assert [p.text for p in partials] == [
        "tell", "tell me", "tell me about", "tell me about the", "tell me about the moon",
    ]  # fmt: skip
    assert partials[1].delta == " me"
    final = next(i for i, e in enumerate(events) if isinstance(e, TranscriptEvent))
    assert all(events.index(p) < final for p in partials)
    assert (
        isinstance(events[-1], TurnDone) and events[-1].reply.user_text == "tell me about the moon"
    )
