"""The prompt's layout and the first-clause budget (issue 19): a stable, cacheable prefix, the LLM
primed while STT runs, and a first clause that does not count as a sentence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np
import pytest

from lexperience import Audio, Conversation, Message, Persona, TurnOptions
from lexperience.context import TurnContext
from lexperience.testing import FakeLLM, FakeSTT, FakeTTS
from lexperience.text import SentenceSplitter


def speech(seconds: float = 1.0, rate: int = 16_000) -> Audio:
    rng = np.random.default_rng(1)
    return Audio(rng.normal(0, 0.1, int(seconds * rate)).astype(np.float32), rate)


class PrimingLLM(FakeLLM):
    """A FakeLLM with ``aprime``, recording what was primed and when."""

    def __init__(self, *args: object, fail: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.primed: list[tuple[float, float, list[Message]]] = []
        self.fail = fail

    async def aprime(self, messages: Sequence[Message]) -> None:
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        if self.fail:
            raise RuntimeError("prime broke")
        self.primed.append((started, time.perf_counter(), list(messages)))


class TimedSTT(FakeSTT):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.window: tuple[float, float] | None = None

    async def transcribe(self, audio: Audio, *, language: str | None = None):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        out = await super().transcribe(audio, language=language)
        self.window = (started, time.perf_counter())
        return out


PERSONA = Persona(name="Theo", prompt="You are Theo.", examples=(("Hi?", "Hello there."),),
                  knowledge="The show is about owls.", max_sentences=2)  # fmt: skip


def test_first_clause_is_flagged_by_the_splitter() -> None:
    splitter = SentenceSplitter(first_clause_words=3)
    assert splitter.push_pieces("When a huge star dies, it") == [("When a huge star dies,", True)]
    assert splitter.push_pieces(" collapses. Then more. ") == [("it collapses.", False)]
    assert splitter.push("And") == ["Then more."]


async def test_a_first_clause_does_not_spend_the_sentence_budget() -> None:
    llm = FakeLLM("When a huge star runs out of fuel, it collapses into a black hole. "
                  "Nothing escapes it. A third sentence is too many.")  # fmt: skip
    conv = Conversation(llm=llm, tts=FakeTTS(), persona=PERSONA,
                        options=TurnOptions(first_clause_words=3))  # fmt: skip
    reply = await conv.areply("What is a black hole?")
    assert reply.sentences == [
        "When a huge star runs out of fuel,",
        "it collapses into a black hole.",
        "Nothing escapes it.",
    ]
    assert reply.text == ("When a huge star runs out of fuel, it collapses into a black hole. "
                          "Nothing escapes it.")  # fmt: skip


async def test_per_turn_context_comes_after_the_history_and_the_prefix_is_stable() -> None:
    class Episode:
        def __init__(self) -> None:
            self.n = 0

        async def provide(self, turn: TurnContext) -> str:
            self.n += 1
            return f"EPISODE at minute {self.n}"

    llm = FakeLLM("Sure thing.")
    conv = Conversation(llm=llm, tts=FakeTTS(), persona=PERSONA, context=[Episode()])
    await conv.areply("one?")
    await conv.areply("two?")
    first, second = llm.calls
    prefix = [*PERSONA.prompt_messages(), Message.system("Background:\nThe show is about owls.")]
    assert first[: len(prefix)] == prefix
    # turn 2's prompt starts with all of turn 1's prompt but its episode context
    turn1 = [Message.user("one?"), Message.assistant("Sure thing.")]
    assert second[: len(prefix) + 2] == [*prefix, *turn1]
    assert second[-2:] == [Message.system("EPISODE at minute 2"), Message.user("two?")]
    assert first[-2:] == [Message.system("EPISODE at minute 1"), Message.user("one?")]


async def test_the_llm_is_primed_with_the_prefix_while_stt_runs() -> None:
    llm = PrimingLLM("Sure thing.")
    stt = TimedSTT(latency=0.2)
    conv = Conversation(stt=stt, llm=llm, tts=FakeTTS(), persona=PERSONA)
    await conv.areply(speech())
    await conv.areply(speech())
    # aopen primed the persona's prompt, then each audio turn primed its prefix during STT
    assert llm.primed[0][2] == PERSONA.prompt_messages()
    started, ended, messages = llm.primed[-1]
    assert stt.window is not None and stt.window[0] <= started < stt.window[1]
    assert ended < stt.window[1]
    assert messages == llm.calls[-1][:-1]  # the whole prompt but the question
    assert messages[-2:] == [
        Message.user("What is a black hole?"),
        Message.assistant("Sure thing."),
    ]


async def test_priming_can_be_turned_off() -> None:
    llm = PrimingLLM("Sure thing.")
    conv = Conversation(stt=FakeSTT(), llm=llm, tts=FakeTTS(), persona=PERSONA,
                        options=TurnOptions(prime_llm=False))  # fmt: skip
    await conv.areply(speech())
    assert len(llm.primed) == 1  # aopen's only


async def test_a_failing_prime_during_stt_costs_only_its_time() -> None:
    llm = PrimingLLM("Sure thing.")
    conv = Conversation(stt=FakeSTT(), llm=llm, tts=FakeTTS(), persona=PERSONA)
    await conv.aopen()
    llm.fail = True
    reply = await conv.areply(speech())
    assert reply.text == "Sure thing."


def test_prompt_messages_hold_the_examples() -> None:
    msgs = PERSONA.prompt_messages()
    assert [m.role for m in msgs] == ["system", "user", "assistant"]
    assert msgs[0].content == PERSONA.system_message()
    with pytest.raises(ValueError):
        Persona(name="x", prompt="y", examples=(("", "a"),))


@pytest.mark.parametrize("hold", [True, False])
async def test_an_in_process_llm_waits_while_tts_makes_the_first_audio(hold: bool) -> None:
    llm = FakeLLM("The first sentence is here. The second one follows. A third.",
                  token_interval=0.005)  # fmt: skip
    llm.shares_cpu = True  # type: ignore[attr-defined]
    conv = Conversation(llm=llm, tts=FakeTTS(first_chunk_latency=0.15), persona=PERSONA,
                        options=TurnOptions(hold_llm_for_first_audio=hold))  # fmt: skip
    at_audio: list[int] = []
    async for event in conv.stream("go"):
        if type(event).__name__ == "AudioEvent" and not at_audio:
            at_audio.append(llm.tokens_sent)
    first_sentence_tokens = 5 + 1  # "The first sentence is here." and the token after it
    if hold:
        assert at_audio == [first_sentence_tokens]
    else:
        assert at_audio[0] > first_sentence_tokens + 2
