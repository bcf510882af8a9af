"""The companion with the real offline models: faster-whisper transcribes the sample episode,
SmolLM2-135M (llama.cpp) answers from it. Skipped without the local extra."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lexperience import Conversation, Episode, EpisodeContext, Message
from lexperience.testing import FakeTTS

pytestmark = pytest.mark.local
os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "episode"

#: Questions whose answers exist only in the sample episode, and a pattern each answer must
#: match to count as right (digits or words).
QUESTIONS = (
    ("How much did Tamsin pay for her first cassette recorder?", r"forty|\b40\b"),
    ("What frequency does the storm drain on Harrow Street hum at?", r"fifty[ -]eight|\b58\b"),
    ("When is the city at its quietest?", r"four|\b4[:.]10\b|tuesday"),
    ("What is the record for counting layers in one minute?", r"fourteen|\b14\b"),
)


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    pytest.importorskip(
        "llama_cpp", reason='needs the local extra: pip install "lexperience[local]"'
    )
    from lexperience.backends.llama_cpp_llm import LlamaCppLLM

    backend = LlamaCppLLM(seed=7, temperature=0.3)
    backend.load()
    return backend


def test_faster_whisper_transcribes_the_sample_episode_with_word_timings() -> None:
    pytest.importorskip("faster_whisper", reason="needs the local extra")
    from lexperience import Audio
    from lexperience.backends.faster_whisper_stt import FasterWhisperSTT

    audio = Audio.load(SAMPLE / "slow-signals-12.ogg").slice(0, 40)
    stt = FasterWhisperSTT(word_timestamps=True)
    ep = Episode.transcribe(audio, stt=stt, chunk_seconds=20, title="The Night Map")
    reference = [s for s in Episode.load(SAMPLE / "slow-signals-12.vtt").segments if s.end < 38]
    assert all(s.words for s in ep.segments) and len(ep.segments) >= 6
    text = " ".join(s.text for s in ep.segments).lower()
    for phrase in ("slow signals", "flea market in lisbon", "what did you record first"):
        assert phrase in text
    # each reference sentence starts within half a second of a transcribed segment
    starts = [s.start for s in ep.segments]
    near = [any(abs(r.start - t) < 0.5 for t in starts) for r in reference]
    assert sum(near) >= 0.8 * len(reference)


async def test_the_host_answers_from_the_episode(llm) -> None:  # type: ignore[no-untyped-def]
    episode = Episode.load(SAMPLE / "slow-signals-12.json")
    seen: list[list[Message]] = []

    class Spy:
        name = "llama-cpp"

        def stream(self, messages, *, max_tokens=None):  # type: ignore[no-untyped-def]
            seen.append(list(messages))
            return llm.stream(messages, max_tokens=max_tokens)

    ctx = EpisodeContext(episode, position=episode.length)
    conv = Conversation(llm=Spy(), tts=FakeTTS(), context=[ctx])  # type: ignore[arg-type]
    right = 0
    for question, pattern in QUESTIONS:
        reply = await conv.areply(question)
        conv.clear_history()
        assert reply.text.strip()  # the turn ran to the end with real text
        context = "\n".join(m.content for m in seen[-1] if m.role == "system")
        assert re.search(pattern, context, re.I), "the fact did not reach the LLM"
        right += bool(re.search(pattern, reply.text, re.I))
        print(f"\nQ: {question}\nA: {reply.text}")
    # SmolLM2-135M is tiny: how often it repeats the fact is reported, not asserted
    print(f"\nanswers containing the fact: {right}/{len(QUESTIONS)}")


async def test_a_question_about_a_later_moment_gets_no_spoiler(llm) -> None:  # type: ignore[no-untyped-def]
    episode = Episode.load(SAMPLE / "slow-signals-12.json")
    ctx = EpisodeContext(episode, position=60.0)  # the bell comes at about 2:25
    conv = Conversation(llm=llm, tts=FakeTTS(), context=[ctx])
    reply = await conv.areply("When was the foundry's last bell cast?")
    assert reply.text.strip()
    assert ctx.last is not None
    told = "\n".join(m.content for m in ctx.last.messages)
    assert "sixty one" not in told and "foundry" not in told.lower()
    print(f"\nQ (at 1:00): When was the foundry's last bell cast?\nA: {reply.text}")
