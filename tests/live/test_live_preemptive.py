"""Preemptive generation: the reply starts while the end-of-turn silence runs; kept when the
final transcript is the same (identical reply, one LLM call), discarded without a trace when it
changed (the first call cancelled, nothing of it in the history, the output or the hooks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from live_support import by_length, conversation, run

from lexperience import Hooks
from lexperience.live import LiveOptions, LiveSession
from lexperience.live.room import SimulatedRoom, Track
from lexperience.media import Audio
from lexperience.messages import Message
from lexperience.testing import FakeLLM, FakeSTT

PARTIAL = "Tell me about black holes."
FINAL = "Tell me about black holes and how they are made."


class ClockedLLM(FakeLLM):
    """A FakeLLM that notes the room time of each call and whether its stream finished; calls
    after the first ``slow`` ones wait at their first word until cancelled."""

    def __init__(self, clock: list[float], *, hold_first: bool = False) -> None:
        super().__init__()
        self.clock = clock
        self.hold_first = hold_first
        self.started_at: list[float] = []
        self.finished: list[bool] = []

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        index = len(self.finished)
        self.started_at.append(self.clock[0])
        self.finished.append(False)
        count = 0
        async for piece in super().stream(messages, max_tokens=max_tokens):
            yield piece
            count += 1
            if self.hold_first and index == 0 and count == 3:
                await asyncio.Event().wait()
        self.finished[index] = True


def one_question(voice: dict[str, Audio]) -> Track:
    track = Track()
    track.silence(0.5)
    track.add(voice["question"], "question")
    track.silence(1.5)
    return track


async def session(track: Track, stt: FakeSTT, llm: FakeLLM, preemptive: bool, vad, hooks=None):
    conv = conversation(stt, llm=llm, hooks=hooks)
    return await run(conv, track, options=LiveOptions(preemptive=preemptive), vad=vad, speed=None)


async def test_a_final_partial_transcript_keeps_the_reply_and_calls_the_llm_once(
    voice, vad
) -> None:
    track = one_question(voice)
    end = track.marks[0][2]
    eot = LiveOptions().end_of_turn_silence
    clock = [0.0]
    results = {}
    for preemptive in (False, True):
        llm = ClockedLLM(clock)
        s = await session(track, FakeSTT("What is a black hole?"), llm, preemptive, vad)
        results[preemptive] = (s, llm)
    plain, plain_llm = results[False]
    early, early_llm = results[True]
    a, b = plain.first("turn_done")[1].reply, early.first("turn_done")[1].reply
    assert (a.text, a.sentences, a.user_text) == (b.text, b.sentences, b.user_text)
    assert len(plain_llm.calls) == len(early_llm.calls) == 1
    assert plain.conv.history == early.conv.history
    # nothing of the preemptive reply went out before the end of the turn
    assert early.first("turn_started")[0] >= end + eot - 0.15


async def test_preemption_starts_the_llm_during_the_end_of_turn_silence(voice, vad) -> None:
    track = one_question(voice)
    end = track.marks[0][2]
    eot = LiveOptions().end_of_turn_silence

    for preemptive in (True, False):
        clock = [0.0]
        llm = ClockedLLM(clock)
        conv = conversation(FakeSTT("What is a black hole?"), llm=llm)
        room = SimulatedRoom(track.audio(), speed=None)
        live = LiveSession(conv, LiveOptions(preemptive=preemptive), vad=vad, played=room.played)
        async for event in live.run(room.microphone()):
            clock[0] = room.now
            room.hear(event)
        (started,) = llm.started_at
        if preemptive:
            assert end < started < end + eot  # during the silence
        else:
            assert started >= end + eot - 0.05


async def test_a_changed_transcript_cancels_the_first_attempt_without_a_trace(voice, vad) -> None:
    track = Track()
    track.silence(0.5)
    track.add(voice["first_half"], "first half")
    track.silence(0.32)  # a pause shorter than the end-of-turn silence, longer than speech end
    track.add(voice["second_half"], "second half")
    track.silence(1.5)
    stt = FakeSTT(by_length((2.3, PARTIAL), (99, FINAL)))
    seen: list[str] = []
    hooks = Hooks(on_text_delta=lambda e: seen.append(e.text))
    clock = [0.0]
    llm = ClockedLLM(clock, hold_first=True)
    s = await session(track, stt, llm, True, vad, hooks=hooks)
    assert len(llm.calls) == 2
    assert llm.calls[0][-1] == Message.user(PARTIAL) and llm.calls[1][-1] == Message.user(FINAL)
    assert llm.finished == [False, True] and llm.active == 0  # the first one was cancelled
    first_reply = "You asked: Tell me about black holes. That"
    said = " ".join(e.text for _, e in s.of("sentence"))
    assert "You asked: Tell me about black holes." not in said and "made" in said
    assert first_reply not in "".join(seen)
    assert [e.turn_id for _, e in s.events if e.type == "turn_started"] == [2]
    assert s.of("turn_interrupted") == []  # a discarded attempt has no closing event either
    assert s.conv.history[0] == Message.user(FINAL) and len(s.conv.history) == 2


async def test_preemption_is_on_for_a_local_llm_and_off_for_a_cloud_one() -> None:
    conv = conversation(FakeSTT(), llm=FakeLLM())
    assert LiveSession(conv).preemptive
    conv.backends.names["llm"] = "openai"  # needs an API key: a wasted attempt costs tokens
    assert not LiveSession(conv).preemptive
    assert LiveSession(conv, LiveOptions(preemptive=True)).preemptive
