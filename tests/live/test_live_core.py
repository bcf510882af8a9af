"""The core extension live mode rests on: a turn run with a TurnPlan (a transcript made
beforehand, a stand-in LLM, its own hooks, a metrics origin) and a CommitGate that holds,
applies or drops its history commit."""

from __future__ import annotations

import time

import numpy as np
from live_support import conversation

from lexperience import Hooks, Message, Transcript
from lexperience.events import TranscriptEvent, TurnDone, TurnStarted
from lexperience.live.reply import ReplayLLM
from lexperience.media import Audio
from lexperience.testing import FakeLLM, FakeSTT
from lexperience.turn import CommitGate, TurnPlan


def clip() -> Audio:
    t = np.arange(16_000) / 16_000
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000)


async def events(conv, plan: TurnPlan):
    return [e async for e in conv._stream(clip(), None, None, plan)]


async def test_a_known_transcript_skips_stt_and_is_still_reported() -> None:
    stt = FakeSTT("never used")
    conv = conversation(stt)
    said = Transcript(text="What is a black hole?", language="en")
    out = await events(conv, TurnPlan(transcript=said))
    assert stt.calls == []
    assert isinstance(out[0], TurnStarted) and out[0].input == "audio"
    (transcript,) = [e for e in out if isinstance(e, TranscriptEvent)]
    assert transcript.transcript == said
    assert conv.history[0] == Message.user("What is a black hole?")


async def test_a_pending_gate_holds_the_commit_until_confirmed() -> None:
    conv = conversation(FakeSTT())
    gate = CommitGate()
    out = await events(conv, TurnPlan(transcript=Transcript(text="Hi?"), gate=gate))
    assert isinstance(out[-1], TurnDone) and conv.history == []
    gate.confirm()
    assert [m.role for m in conv.history] == ["user", "assistant"]
    assert conv.history[1].content == out[-1].reply.text
    gate.confirm()  # idempotent
    assert len(conv.history) == 2


async def test_a_discarded_gate_leaves_the_history_as_it_was() -> None:
    conv = conversation(FakeSTT())
    conv.load_history([Message.user("Before?"), Message.assistant("Yes.")])
    gate = CommitGate()
    await events(conv, TurnPlan(transcript=Transcript(text="Hi?"), gate=gate))
    gate.discard()
    gate.confirm()  # too late: discarded for good
    assert conv.history == [Message.user("Before?"), Message.assistant("Yes.")]


async def test_confirming_with_a_played_position_keeps_only_the_heard_part() -> None:
    llm = FakeLLM("First sentence here. Second sentence there. Third one too.")
    conv = conversation(FakeSTT(), llm=llm)
    gate = CommitGate()
    out = await events(conv, TurnPlan(transcript=Transcript(text="Go?"), gate=gate))
    reply = out[-1].reply
    first_end = reply.audio.duration * len("First sentence here.") / len(reply.text) + 0.05
    gate.confirm(played_seconds=first_end)
    heard = conv.history[1]
    assert heard.interrupted and heard.content.startswith("First sentence here.")
    assert "Third" not in heard.content


async def test_a_plan_runs_its_own_llm_and_hooks_and_counts_from_its_origin() -> None:
    seen: list[str] = []
    conv = conversation(FakeSTT(), hooks=Hooks(on_event=lambda e: seen.append(e.type)))
    mine: list[str] = []
    plan = TurnPlan(
        transcript=Transcript(text="Again?"), llm=ReplayLLM("Said once more. And again."),
        hooks=Hooks(on_event=lambda e: mine.append(e.type)),
        started_at=time.perf_counter() - 2.0,
    )  # fmt: skip
    out = await events(conv, plan)
    reply = out[-1].reply
    assert reply.sentences == ["Said once more.", "And again."]
    assert seen == [] and mine[-1] == "turn_done"
    assert reply.metrics.first_audio_s is not None and reply.metrics.first_audio_s >= 2.0


async def test_amending_the_last_reply() -> None:
    conv = conversation(FakeSTT())
    conv.load_history([Message.user("Q?"), Message.assistant("Half …", interrupted=True)])
    conv._amend_reply("Half of it and the rest.", False)
    assert conv.history[-1] == Message.assistant("Half of it and the rest.")
