"""Turn-taking decisions on exact timings, with an energy "VAD" (a frame is speech when it is
loud), so that the pauses are known to the frame: a pause just under the end-of-turn silence
does not end the turn even though the speech that follows is only recognised ``min_speech``
later, and trailing silence does not count as speech towards a barge-in."""

from __future__ import annotations

import numpy as np
from live_support import LONG_REPLY, RATE, by_length, conversation, run

from lexperience.live import LiveOptions
from lexperience.live.room import Track
from lexperience.testing import FakeLLM, FakeSTT


class EnergyVAD:
    """Speech probability 1 for a frame louder than -40 dBFS, else 0."""

    sample_rate = RATE
    frame_samples = 512

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        rms = np.sqrt(np.mean(frames.reshape(-1, self.frame_samples) ** 2, axis=1))
        return (rms > 0.01).astype(np.float32)

    def reset(self) -> None:
        pass


FRAME = 512 / RATE  # 32 ms


def tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def frames(n: int) -> float:
    return n * FRAME


async def test_a_pause_just_under_the_end_of_turn_silence_keeps_one_turn() -> None:
    options = LiveOptions()  # end of turn after 0.5 s; speech recognised after 0.064 s
    track = Track().silence(frames(16))
    track.add(tone(frames(32)))
    track.silence(frames(15))  # 0.48 s: the turn goes on
    track.add(tone(frames(32)))
    track.silence(1.0)
    stt = FakeSTT(by_length((1.5, "half"), (99, "all of it")))
    conv = conversation(stt, llm=FakeLLM("Fine."))
    s = await run(conv, track, options=options, vad=EnergyVAD(), speed=None, tail_seconds=3)
    assert len(s.of("speech_started")) == 2 and len(s.of("turn_started")) == 1, s.types()
    assert conv.history[0].content == "all of it"


async def test_trailing_silence_is_no_speech_towards_a_barge_in() -> None:
    options = LiveOptions(barge_in_min_speech=0.4)
    track = Track().silence(frames(16))
    track.add(tone(frames(32)), "question")
    track.silence(frames(16))
    # 0.29 s of sound over the reply: with the 0.16 s of silence that ends it, 0.45 s
    track.add(tone(frames(9)), "short", after_played=1.5)
    track.silence(1.0)
    stt = FakeSTT(by_length((0.8, ""), (99, "a question")))
    conv = conversation(stt, llm=FakeLLM(LONG_REPLY))
    s = await run(conv, track, options=options, vad=EnergyVAD(), speed=None, tail_seconds=1)
    overlaps = [e for _, e in s.of("speech_started") if e.while_replying]
    assert overlaps and s.of("turn_interrupted") == [], s.types()
