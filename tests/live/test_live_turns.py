"""Turn detection on real speech: boundaries within 150 ms of the truth, noise and coughs start
nothing, a sound without words starts no turn, any input rate works."""

from __future__ import annotations

import numpy as np
from live_support import by_length, conversation, cough, noise, run

from lexperience.live import LiveOptions
from lexperience.live.room import Track
from lexperience.media import Audio
from lexperience.testing import FakeLLM, FakeSTT

TOLERANCE = 0.15


def three_questions(voice: dict[str, Audio]) -> Track:
    track = Track()
    track.silence(0.6)
    track.add(voice["question"], "question")
    track.silence(1.5)
    track.add(voice["long"], "long")
    track.silence(1.4)
    track.add(voice["second"], "second")
    track.silence(1.0)
    return track


async def test_turns_start_and_end_within_150_ms_of_the_truth(voice, vad) -> None:
    track = three_questions(voice)
    stt = FakeSTT(by_length((1.3, "How big can they get?"), (2.5, "What is a black hole?"),
                            (99, "How far away is the nearest star?")))  # fmt: skip
    conv = conversation(stt, llm=FakeLLM("Right."))  # a short reply: each turn ends in silence
    s = await run(conv, track.audio(noise_dbfs=-50), vad=vad, speed=None)
    starts = [e.at for _, e in s.of("speech_started")]
    ends = [e.at for _, e in s.of("speech_ended")]
    turns = [t for t, _ in s.of("turn_started")]
    assert len(turns) == 3, s.types()
    eot = LiveOptions().end_of_turn_silence
    for (_, start, end), turn_at in zip(track.marks, turns, strict=True):
        assert min(abs(a - start) for a in starts) <= TOLERANCE
        assert min(abs(a - end) for a in ends) <= TOLERANCE
        # the turn begins once the end-of-turn silence has passed, not before, not much later
        assert end + eot - TOLERANCE <= turn_at <= end + eot + TOLERANCE
    # every turn's speech lies inside its own bounds: none started before the truth
    assert all(a >= track.marks[0][1] - TOLERANCE for a in starts)
    assert [m.content for m in s.conv.history if m.role == "user"] == [
        "What is a black hole?", "How far away is the nearest star?", "How big can they get?",
    ]  # fmt: skip


async def test_noise_and_coughs_start_no_turn(vad) -> None:
    track = Track()
    track.add(noise(2.0, -30), "noise")
    for i in range(3):
        track.silence(0.7)
        track.add(cough(seed=i), "cough")
    track.silence(0.5)
    track.add(noise(1.5, -24, seed=5), "louder noise")
    stt, llm = FakeSTT(), FakeLLM()
    s = await run(conversation(stt, llm=llm), track.audio(), vad=vad, speed=None)
    assert s.of("speech_started") == [] and s.of("turn_started") == []
    assert stt.calls == [] and llm.calls == []
    assert s.conv.history == []


async def test_speech_without_words_starts_no_turn(voice, vad) -> None:
    track = Track()
    track.silence(0.5)
    track.add(voice["mhm"])
    track.silence(1.5)
    stt, llm = FakeSTT(""), FakeLLM()  # what Whisper makes of a hum
    s = await run(conversation(stt, llm=llm), track.audio(), vad=vad, speed=None)
    assert s.of("speech_started") and s.of("speech_ended")  # the VAD heard a voice
    assert s.of("turn_started") == [] and llm.calls == [] and s.conv.history == []


async def test_any_input_rate_gives_the_same_turn(voice, vad) -> None:
    track = Track()
    track.silence(0.5)
    _, end = track.add(voice["question"])
    track.silence(1.2)
    high = track.audio().resample(48_000)
    s = await run(conversation(FakeSTT("What is a black hole?")), high, vad=vad, speed=None)
    assert len(s.of("turn_started")) == 1
    assert abs(s.of("speech_ended")[0][1].at - end) <= TOLERANCE
    low = await run(conversation(FakeSTT("What is a black hole?")), track.audio().resample(8_000),
                    vad=vad, speed=None)  # fmt: skip
    assert len(low.of("turn_started")) == 1


def test_the_stream_resampler_matches_the_clip_resampler() -> None:
    from lexperience.live import StreamResampler
    from lexperience.resample import resample

    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44_100) / 44_100)).astype(np.float32)
    r = StreamResampler(44_100, 16_000)
    parts, i = [], 0
    while i < x.shape[0]:
        k = int(rng.integers(1, 3000))
        parts.append(r.push(x[i : i + k]))
        i += k
    out = np.concatenate(parts)
    assert np.abs(out - resample(x, 44_100, 16_000)[: out.shape[0]]).max() < 1e-6
    assert out.shape[0] >= 16_000 - r.half  # only the kernel's lookahead is still pending
