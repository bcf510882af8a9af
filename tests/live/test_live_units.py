"""The pieces of live mode on their own: words, the speech detector, the playback clock, the
outbox, the echo canceller and the Silero VAD."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lexperience.events import AudioEvent, SpeechStarted, TurnInterrupted
from lexperience.live import EchoCanceller, LiveOptions, PlaybackClock
from lexperience.live.detector import SpeechDetector
from lexperience.live.outbox import Outbox
from lexperience.live.words import has_words, is_backchannel, normalise, same_words
from lexperience.media import AudioChunk
from lexperience.reply import Reply
from lexperience.testing.fakes import speech_like

B = LiveOptions().backchannels


@pytest.mark.parametrize(
    ("text", "words", "backchannel"),
    [
        ("", False, True), ("MMM.", False, True), ("Mm-hmm.", False, True), ("(coughs)", False, True),
        ("[BLANK_AUDIO]", False, True), ("Uh-huh, yeah.", True, True), ("I see.", True, True),
        ("Wait, stop!", True, False), ("What is a black hole?", True, False),
        ("yeah yeah okay right", True, False),
    ],
)  # fmt: skip
def test_words_and_backchannels(text: str, words: bool, backchannel: bool) -> None:
    assert has_words(text) is words
    assert is_backchannel(text, B) is backchannel


def test_transcripts_compare_by_their_words() -> None:
    assert normalise("  What's a BLACK hole?!") == "what's a black hole"
    assert same_words("What is a black hole?", "what is a black hole")
    assert not same_words("What is a black hole?", "What is a black hole made of?")


def test_the_detector_needs_some_speech_and_some_silence() -> None:
    d = SpeechDetector(frame_seconds=0.032, threshold=0.5, release=0.35, min_speech=0.064,
                       end_silence=0.16)  # fmt: skip
    probs = [0.0, 0.9, 0.1, 0.0, 0.9, 0.95, 0.4, 0.8, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1]
    out = [(i, d.push(p, (i + 1) * 0.032)) for i, p in enumerate(probs)]
    transitions = [(i, t) for i, t in out if t is not None]
    assert [t.kind for _, t in transitions] == ["start", "end"]
    (i0, start), (i1, end) = transitions
    assert i0 == 5 and start.at == pytest.approx(4 * 0.032)  # one loud frame started nothing
    assert end.at == pytest.approx(8 * 0.032)  # 0.4 stays speech (hysteresis)
    assert i1 == 12 and end.duration == pytest.approx(4 * 0.032)


def test_the_playback_clock_plays_in_real_time_and_waits_when_dry() -> None:
    clock = PlaybackClock()
    clock.released(1, 1.0, now=10.0)
    clock.released(1, 1.0, now=10.2)  # queued behind the first second
    assert clock.played(1, 10.5) == pytest.approx(0.5)
    assert clock.played(1, 12.5) == pytest.approx(2.0) and not clock.playing(1, 12.5)
    clock.released(1, 0.5, now=13.0)  # ran dry: the new audio starts when released
    assert clock.played(1, 13.25) == pytest.approx(2.25) and clock.playing(1, 13.25)
    clock.report(1, 1.0, now=13.25)  # the player knows better
    assert clock.played(1, 13.5) == pytest.approx(1.25)
    external = PlaybackClock(lambda turn: 0.7)
    external.released(3, 0.5, now=0.0)
    assert external.played(3, 5.0) == 0.5  # never more than was released


async def test_the_outbox_puts_session_events_first_and_drops_a_cut_turns_media() -> None:
    box = Outbox(4)
    chunk = AudioChunk(np.zeros(160, np.float32), 16_000)
    for i in range(3):
        await box.put_turn(AudioEvent(turn_id=1, t=0.0, chunk=chunk, offset=i * 0.01))
    box.put_session(SpeechStarted(turn_id=1, t=1.0, at=0.9))
    box.cut(1)
    await box.put_turn(AudioEvent(turn_id=1, t=0.0, chunk=chunk, offset=0.5))  # refused
    done = TurnInterrupted(turn_id=1, t=0.1, heard_text="", played_seconds=0.0,
                           reply=Reply(turn_id=1, user_text="q", text=""))  # fmt: skip
    await box.put_turn(done)
    box.close()
    out = [e async for e in _drain(box)]
    assert [e.type for e in out] == ["speech_started", "turn_interrupted"]


async def _drain(box: Outbox):
    while (event := await box.get()) is not None:
        yield event


def test_the_echo_canceller_finds_the_delay_and_removes_the_echo() -> None:
    rate = 16_000
    ref, _ = speech_like("the host talks about black holes and the stars for a while " * 3, rate)
    delay = int(0.07 * rate)
    path = np.zeros(400)
    path[[0, 60, 390]] = [1.0, 0.4, -0.2]
    echo = np.convolve(ref, path)[: ref.shape[0]] * 0.5
    mic = np.concatenate([np.zeros(delay), echo])[: ref.shape[0]].astype(np.float32)
    ec = EchoCanceller(rate)
    out = np.concatenate([ec.process(mic[i : i + 320], ref[i : i + 320])
                          for i in range(0, ref.shape[0] - 319, 320)])  # fmt: skip
    assert ec.delay is not None and abs(ec.delay + 32 - delay) <= 8
    tail = slice(3 * rate, out.shape[0])
    suppression = 10 * np.log10(np.mean(mic[tail] ** 2) / np.mean(out[tail] ** 2))
    assert suppression > 15.0 and ec.converged  # 25-30 dB on real speech (benchmark)
    # frame by frame (two blocks, as the session asks), the echo alone never passes for the user
    # two frames running (what the speech detector needs to start speech)
    frames = [ec.user_dominant(b, 2, 6.0) for b in range(0, len(ec.echo_power) - 1, 2)]
    assert not any(a and b for a, b in itertools.pairwise(frames[20:]))
    assert sum(frames) <= 0.05 * len(frames)


def test_the_echo_canceller_lets_the_user_through() -> None:
    rate = 16_000
    ref, _ = speech_like("the host talks about black holes and the stars " * 4, rate)
    user, _ = speech_like("wait a second please", rate, seconds_per_char=0.08)
    mic = np.zeros(ref.shape[0], np.float32)  # headphones: no echo at all
    at = 3 * rate
    mic[at : at + user.shape[0]] = user
    ec = EchoCanceller(rate)
    for i in range(0, ref.shape[0] - 319, 320):
        ec.process(mic[i : i + 320], ref[i : i + 320])
    first, last = at // 256, (at + user.shape[0]) // 256
    loud = [b for b in range(first, last) if ec.residual_power[b] > 1e-4]
    assert loud and all(ec.user_dominant(b, 1, 6.0) for b in loud)


def test_silero_gives_the_same_probabilities_in_one_call_or_frame_by_frame(vad) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(512 * 20) * 0.05).astype(np.float32)
    vad.reset()
    whole = vad.probabilities(x)
    vad.reset()
    pieces = np.concatenate([vad.probabilities(x[i : i + 512]) for i in range(0, x.shape[0], 512)])
    assert whole.shape == (20,) and np.allclose(whole, pieces, atol=1e-5)
    assert vad.probabilities(x[:100]).shape == (0,)


def test_the_preemptive_pause_is_shorter_when_stt_and_llm_are_remote() -> None:
    pytest.importorskip("openai")
    from live_support import conversation

    from lexperience.backends.openai_llm import OpenAILLM
    from lexperience.backends.openai_stt import OpenAISTT
    from lexperience.live import LiveOptions, LiveSession
    from lexperience.testing import wire

    url = "http://127.0.0.1:9/v1"  # never called
    cloud = conversation(OpenAISTT(api_key=wire.OPENAI_KEY, base_url=url),
                         llm=OpenAILLM(api_key=wire.OPENAI_KEY, base_url=url))  # fmt: skip
    half = conversation(OpenAISTT(api_key=wire.OPENAI_KEY, base_url=url))  # a local LLM
    assert LiveSession(cloud).preemptive_silence == 0.064
    assert LiveSession(half).preemptive_silence == 0.1
    assert LiveSession(conversation()).preemptive_silence == 0.1
    chosen = LiveOptions(preemptive_silence=0.15)
    assert LiveSession(cloud, chosen).preemptive_silence == 0.15
    assert LiveOptions.with_end_of_turn(0.05).preemptive_pause(cloud=True) == 0.05
