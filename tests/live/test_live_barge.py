"""Barge-in on real speech: the reply stops within 200 ms of the detection (in microphone time),
the history keeps what the listener heard, a false interruption resumes the reply, the host's own
voice coming back through the microphone does not interrupt it, and nothing is left running."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest
from live_support import LONG_REPLY, by_length, conversation, cough, leftover_tasks, run

from lexperience.events import AudioEvent, TurnInterrupted
from lexperience.live import LiveOptions, LiveSession
from lexperience.live.room import SimulatedRoom, Track
from lexperience.media import Audio, AudioChunk
from lexperience.messages import Message
from lexperience.testing import FakeLLM, FakeSTT, FakeTTS

QUESTION = "What is a black hole?"
STOP = "How big can they get?"


def question_then(
    voice: dict[str, Audio], after: float, sound: Audio | None, label: str,
    after_played: float | None = None,
) -> Track:  # fmt: skip
    track = Track()
    track.silence(0.5)
    track.add(voice["question"], "question")
    track.silence(after)
    if sound is not None:
        track.add(sound, label, after_played=after_played)
    track.silence(1.0)
    return track


def stt_for_barge() -> FakeSTT:
    # with their margins: a hum is ~0.9 s of audio, the follow-up ~1.3 s, the question ~1.5 s
    return FakeSTT(by_length((1.0, ""), (1.38, STOP), (99, QUESTION)))


def assert_cut_within(s, options: LiveOptions, label_start: float) -> tuple[float, TurnInterrupted]:
    starts = [e for _, e in s.of("speech_started") if e.while_replying]
    assert starts, s.types()
    detected = starts[0].at + options.barge_in_min_speech  # the speech has lasted long enough
    assert abs(starts[0].at - s.room.room_time(label_start)) <= 0.15
    t, interrupted = s.first("turn_interrupted")
    assert interrupted.turn_id == 1
    assert 0.0 <= t - detected <= 0.2, f"cut {t - detected:.3f} s after the detection"
    return t, interrupted


async def test_barge_in_cuts_a_finished_reply_and_keeps_what_was_heard(voice, vad) -> None:
    options = LiveOptions()
    track = question_then(voice, 4.0, voice["second"], "second")
    conv = conversation(stt_for_barge(), llm=FakeLLM(LONG_REPLY))
    s = await run(conv, track, options=options, vad=vad, speed=None, tail_seconds=8)
    t, interrupted = assert_cut_within(s, options, track.marks[1][1])
    # not one more chunk of the cut reply reached the loudspeaker after the interruption
    late = [e for at, e in s.events if at > t and isinstance(e, AudioEvent) and e.turn_id == 1]
    assert late == [] and s.room.played(1) == pytest.approx(interrupted.played_seconds, abs=0.03)
    full = " ".join(interrupted.reply.sentences)
    heard = interrupted.heard_text
    assert heard and len(heard) < len(full)
    assert full.startswith(heard.rstrip(" …"))
    history = conv.history
    assert history[:2] == [Message.user(QUESTION), Message.assistant(heard, interrupted=True)]
    assert history[2] == Message.user(STOP) and history[3].role == "assistant"
    assert [e.turn_id for _, e in s.of("turn_done")] == [2]


class HeldLLM(FakeLLM):
    """Streams the first ``words`` words, then waits until cancelled (a slow model mid-reply)."""

    def __init__(self, reply: str, words: int) -> None:
        super().__init__(reply)
        self.words = words
        self.cancelled = 0

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        try:
            count = 0
            async for piece in super().stream(messages, max_tokens=max_tokens):
                yield piece
                count += 1
                if count == self.words and len(self.calls) == 1:
                    await asyncio.Event().wait()
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise


async def test_barge_in_cuts_a_reply_still_being_written(voice, vad) -> None:
    options = LiveOptions()
    track = question_then(voice, 2.5, voice["second"], "second")
    llm = HeldLLM(LONG_REPLY, words=16)  # two sentences, then the model "thinks"
    conv = conversation(stt_for_barge(), llm=llm)
    s = await run(conv, track, options=options, vad=vad, speed=None, tail_seconds=6)
    _, interrupted = assert_cut_within(s, options, track.marks[1][1])
    assert llm.cancelled == 1 and llm.active == 0
    assert interrupted.reply.interrupted and interrupted.heard_text
    assert conv.history[1] == Message.assistant(interrupted.heard_text, interrupted=True)
    assert conv.history[2] == Message.user(STOP)


async def test_a_false_interruption_resumes_the_reply(voice, vad) -> None:
    options = LiveOptions(barge_in_min_speech=0.3)
    track = question_then(voice, 4.0, voice["mhm"], "mhm")
    stt = stt_for_barge()
    conv = conversation(stt, llm=FakeLLM(LONG_REPLY))
    s = await run(conv, track, options=options, vad=vad, speed=None, tail_seconds=22)
    t_cut, interrupted = s.first("turn_interrupted")
    _, false = s.first("false_interruption")
    assert false.resumed and false.interrupted_turn_id == 1 and false.transcript == ""
    # the rest of the reply follows at once, from the sentence that was cut
    resumed_audio = [at for at, e in s.of("audio") if e.turn_id == 2]
    assert resumed_audio and resumed_audio[0] - t_cut < 1.0, "the host stayed silent"
    sentences = interrupted.reply.sentences
    cut = next(i for i, x in enumerate(sentences) if not interrupted.heard_text.startswith(x))
    resumed = [e.text for _, e in s.of("sentence") if e.turn_id == 2]
    assert " ".join(resumed) == " ".join(sentences[cut:])
    # the history holds the question once and the whole reply, as it was finally heard
    assert conv.history == [Message.user(QUESTION), Message.assistant(" ".join(sentences))]
    assert [e.turn_id for _, e in s.of("turn_done")] == [2]


async def test_a_false_interruption_can_end_the_reply_instead(voice, vad) -> None:
    options = LiveOptions(barge_in_min_speech=0.3, false_interruption="end")
    track = question_then(voice, 4.0, voice["mhm"], "mhm")
    conv = conversation(stt_for_barge(), llm=FakeLLM(LONG_REPLY))
    s = await run(conv, track, options=options, vad=vad, speed=None, tail_seconds=4)
    _, interrupted = s.first("turn_interrupted")
    _, false = s.first("false_interruption")
    assert not false.resumed and len(s.of("turn_started")) == 1
    assert conv.history[-1] == Message.assistant(interrupted.heard_text, interrupted=True)


async def test_a_short_backchannel_or_a_cough_over_the_reply_interrupts_nothing(voice, vad) -> None:
    options = LiveOptions(barge_in_min_speech=0.8)
    track = Track()
    track.silence(0.5)
    track.add(voice["question"])
    track.silence(3.0)
    track.add(voice["mhm"], "mhm")
    track.silence(1.0)
    track.add(cough(), "cough")
    track.silence(1.0)
    stt = stt_for_barge()
    conv = conversation(stt, llm=FakeLLM(LONG_REPLY))
    s = await run(conv, track, options=options, vad=vad, speed=None, tail_seconds=18)
    assert [e for _, e in s.of("speech_started") if e.while_replying]  # the hum was heard
    assert s.of("turn_interrupted") == [] and len(s.of("turn_started")) == 1
    assert [e.turn_id for _, e in s.of("turn_done")] == [1]
    assert conv.history[-1].content == " ".join(s.first("turn_done")[1].reply.sentences)
    assert len(stt.calls) >= 2  # the hum was transcribed before it was let pass


@pytest.mark.parametrize("reference", [True, False])
async def test_the_hosts_own_voice_through_the_loudspeaker(voice, vad, reference) -> None:
    """With the loudspeaker signal as a reference the echo never interrupts; without it (the
    control) the same echo does."""
    pytest.importorskip("piper")
    from lexperience.backends.piper_tts import PiperTTS

    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0, with_visemes=False)
    track = Track()
    track.silence(0.5)
    track.add(voice["question"])
    track.silence(1.0)
    track.add(np.zeros(1600, np.float32), "wait", after_played=10.0)  # listen to the reply
    conv = conversation(FakeSTT(QUESTION), llm=FakeLLM(LONG_REPLY), tts=tts)
    s = await run(conv, track, vad=vad, speed=4.0, tail_seconds=4, echo_gain=0.6,
                  echo_delay=0.06, reference=reference)  # fmt: skip
    interrupted = s.of("turn_interrupted")
    if reference:
        assert interrupted == [], s.types()
        assert [e.turn_id for _, e in s.of("turn_done")] == [1]
        assert s.room.played(1) > 8.0
    else:
        assert interrupted, "the echo should have interrupted the reply without a reference"


class RecordedTTS:
    """A real voice without its wall-clock cost: Piper speaks each sentence once, beforehand,
    and the turns replay it at once. (Spoken live, the loudspeaker runs dry whenever the machine
    is slower than the room, so what echoes when the user speaks, and how much of their speech
    the double-talk check lets through, would depend on the machine's load.)"""

    name = "recorded"

    def __init__(self, tts: Any) -> None:
        self.tts = tts
        self.sample_rate = tts.sample_rate
        self.cache: dict[str, list[AudioChunk]] = {}
        self.misses: list[str] = []
        self.active = 0

    async def prepare(self, text: str) -> None:
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            self.cache[sentence] = [c async for c in self.tts.stream(sentence)]

    async def stream(self, text: str) -> AsyncIterator[AudioChunk]:
        self.active += 1
        try:
            if text not in self.cache:
                self.misses.append(text)
                self.cache[text] = [c async for c in self.tts.stream(text)]
            for chunk in self.cache[text]:
                yield chunk
        finally:
            self.active -= 1


async def test_the_user_still_interrupts_over_the_echo(voice, vad) -> None:
    pytest.importorskip("piper")
    from lexperience.backends.piper_tts import PiperTTS

    tts = RecordedTTS(PiperTTS(noise_scale=0.0, noise_w_scale=0.0, with_visemes=False))
    await tts.prepare(LONG_REPLY)
    # the user speaks once 2 s of the reply have played, over its echo
    track = question_then(voice, 1.0, voice["stop"], "stop", after_played=2.0)
    long_stop = "Stop, I have another question about the moon."
    stt = FakeSTT(by_length((0.6, ""), (2.2, QUESTION), (99, long_stop)))
    conv = conversation(stt, llm=FakeLLM(LONG_REPLY), tts=tts)
    s = await run(conv, track, vad=vad, speed=None, tail_seconds=6, echo_gain=0.5,
                  echo_delay=0.06)  # fmt: skip
    assert tts.misses == []
    _, interrupted = s.first("turn_interrupted")
    assert interrupted.turn_id == 1 and conv.history[2] == Message.user(long_stop), conv.history


async def test_nothing_is_left_running_when_the_stream_ends(voice, vad) -> None:
    track = question_then(voice, 1.0, None, "")
    llm, tts = FakeLLM(LONG_REPLY), FakeTTS()
    await run(conversation(stt_for_barge(), llm=llm, tts=tts), track, vad=vad, speed=None,
              tail_seconds=1)  # fmt: skip
    assert leftover_tasks() == [] and llm.active == 0 and tts.active == 0


async def test_nothing_is_left_running_when_the_caller_stops_mid_reply(voice, vad) -> None:
    track = question_then(voice, 6.0, None, "")
    llm, tts = HeldLLM(LONG_REPLY, words=16), FakeTTS()
    conv = conversation(stt_for_barge(), llm=llm, tts=tts)
    room = SimulatedRoom(track.audio(), speed=None)
    session = LiveSession(conv, vad=vad, played=room.played)

    async def listen() -> None:
        async for event in session.run(room.microphone()):
            room.hear(event)

    task = asyncio.ensure_future(listen())
    while room.played(1) <= 1.0:
        assert not task.done()
        await asyncio.sleep(0)
    task.cancel()  # the caller goes away mid-reply (the model still writing)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert leftover_tasks() == [] and llm.active == 0 and tts.active == 0
    assert llm.cancelled == 1 and not conv.busy
    # what was heard stays: the question and the start of the reply, marked interrupted
    assert conv.history[0] == Message.user(QUESTION)
    assert conv.history[1].interrupted and conv.history[1].content


async def test_an_interrupt_from_outside_ends_the_reply_and_the_session_goes_on(voice, vad) -> None:
    track = question_then(voice, 3.0, voice["second"], "second")
    llm = HeldLLM(LONG_REPLY, words=16)
    conv = conversation(stt_for_barge(), llm=llm)
    room = SimulatedRoom(track, speed=None)
    session = LiveSession(conv, vad=vad, played=room.played)
    kinds: list[tuple[int, str]] = []

    async def listen() -> None:
        async for event in session.run(room.microphone()):
            room.hear(event)
            kinds.append((event.turn_id, event.type))

    task = asyncio.ensure_future(listen())
    while room.played(1) <= 0.5:
        await asyncio.sleep(0)
    await conv.interrupt(played_seconds=room.played(1))  # a Stop button
    await task
    assert (1, "turn_interrupted") in kinds and (2, "turn_done") in kinds
    assert (1, "speech_started") not in kinds[: kinds.index((1, "turn_interrupted"))]
    assert conv.history[1].interrupted and conv.history[2] == Message.user(STOP)
    assert leftover_tasks() == [] and llm.active == 0
