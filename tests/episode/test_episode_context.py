"""EpisodeContext: what the persona is told each turn, within budget, with no spoilers."""

from __future__ import annotations

import random
import re

import pytest

from lexperience import (
    DEFAULT_PERSONA,
    ConfigurationError,
    Conversation,
    Episode,
    EpisodeContext,
    InvalidInputError,
    Message,
    Persona,
    Segment,
    StaticContext,
    TurnOptions,
)
from lexperience.context import estimate_tokens
from lexperience.episode import format_timestamp
from lexperience.testing import FakeLLM, FakeTTS
from lexperience.testing.episodes import SyntheticEpisode, synthetic_episode

_LINE = re.compile(r"^\[(\d+(?::\d\d){1,2})\] ([^:]+): (.*)$")


@pytest.fixture(scope="module")
def syn() -> SyntheticEpisode:
    return synthetic_episode()


def heard_text(ep: Episode, before: float) -> str:
    return " ".join(s.text for s in ep.heard(before))


def transcript_lines(brief_messages: list[Message]) -> list[tuple[str, str, str]]:
    out = []
    for m in brief_messages:
        for line in m.content.splitlines():
            match = _LINE.match(line)
            if match:
                out.append(match.groups())  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("budget", [250, 360, 800, 2000])
def test_the_context_fits_its_budget_and_never_spoils(syn: SyntheticEpisode, budget: int) -> None:
    ep = syn.episode
    ctx = EpisodeContext(ep, budget_tokens=budget)
    rng = random.Random(budget)
    for i, fact in enumerate(syn.facts):
        seg = syn.fact_segment(i)
        for position in (seg.start + seg.duration / 2, seg.end + rng.uniform(0, 600)):
            ctx.position = min(position, ep.length)
            brief = ctx.brief(rng.choice((fact.question, fact.paraphrase)), persona=DEFAULT_PERSONA)
            assert brief.tokens <= budget
            if len(brief.messages) == 2:  # what a turn evaluates after prime()
                assert estimate_tokens(brief.messages[1].content) <= ctx.passage_tokens
            assert sum(estimate_tokens(m.content) for m in brief.messages) == brief.tokens
            heard = heard_text(ep, ctx.position)
            for _stamp, speaker, text in transcript_lines(list(brief.messages)):
                assert speaker in ep.speakers
                for piece in text.split(" … "):  # merged lines and cut passages
                    assert piece.removesuffix(" …").removesuffix("…").strip() in heard
            if seg.start >= ctx.position:
                assert fact.text not in " ".join(m.content for m in brief.messages)


def test_the_context_tells_the_persona_where_the_listener_is(syn: SyntheticEpisode) -> None:
    ep = syn.episode
    fact_i = 4  # the storm drain, at ~9:34
    seg = syn.fact_segment(fact_i)
    ctx = EpisodeContext(ep, position=seg.end + 400)  # well past the recent window
    brief = ctx.brief(syn.facts[fact_i].question, persona=DEFAULT_PERSONA)
    first, *rest = brief.messages
    at = format_timestamp(ctx.position)
    assert first.role == "system" and at in first.content
    assert '"Listening After Dark"' in first.content and "Slow Signals" in first.content
    assert "You are the host" in first.content  # the persona is Theo Calloway, the host
    assert "has not covered that yet" in first.content and "never guess" in first.content
    assert "Just before the pause:" in first.content
    assert all(s.end <= ctx.position and s.start >= ctx.position - 120 for s in brief.recent)
    # the fact is retrieved from earlier in the episode, with its timestamp
    assert rest and rest[0].content.startswith("Earlier moments that match the question:")
    assert f"[{format_timestamp(brief.passages[0].start)}]" in rest[0].content
    assert any("fifty eight hertz" in p.text for p in brief.passages)
    assert "fifty eight hertz" in rest[0].content
    # the recent part does not depend on the question: it can be primed before it is asked
    other = ctx.brief("Something else entirely about trams", persona=DEFAULT_PERSONA)
    assert other.messages[0] == first


def test_a_question_about_what_was_just_said_adds_no_passages(syn: SyntheticEpisode) -> None:
    seg = syn.fact_segment(4)  # the storm drain
    ctx = EpisodeContext(syn.episode, position=seg.end + 5)
    brief = ctx.brief(syn.facts[4].question, persona=DEFAULT_PERSONA)
    assert seg.text in brief.messages[0].content  # in the recent minutes
    assert len(brief.messages) == 1 and not brief.passages
    # asked about an earlier moment at the same position: that one is retrieved
    earlier = ctx.brief(syn.facts[2].question, persona=DEFAULT_PERSONA)  # the Night Map, 4:30
    assert len(earlier.messages) == 2 and "two hundred and twelve" in earlier.messages[1].content


def test_at_the_start_nothing_has_been_said(syn: SyntheticEpisode) -> None:
    ctx = EpisodeContext(syn.episode, position=0.0)
    brief = ctx.brief("What is the storm drain's pitch?")
    assert len(brief.messages) == 1 and not brief.passages and not brief.recent
    assert "Nothing has been said yet" in brief.messages[0].content
    empty = EpisodeContext(Episode(title="Live soon"), position=30)
    assert empty.position == 0.0
    assert "Nothing has been said yet" in empty.brief("hello?").messages[0].content


def test_the_position_is_checked_and_clamped(syn: SyntheticEpisode) -> None:
    ctx = EpisodeContext(syn.episode, position=754.0)
    for bad in (-1, float("nan"), float("inf"), "12:34", None, True):
        with pytest.raises(InvalidInputError):
            ctx.position = bad  # type: ignore[assignment]
        assert ctx.position == 754.0  # unchanged
    ctx.position = 10 * syn.episode.length
    assert ctx.position == syn.episode.length
    with pytest.raises(ConfigurationError):
        EpisodeContext(syn.episode, budget_tokens=10)
    with pytest.raises(ConfigurationError):
        EpisodeContext("ep.vtt")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="too small for this episode"):
        EpisodeContext(syn.episode, budget_tokens=200)


def _sample() -> Episode:
    return Episode(
        title="The Night Map",
        show="Slow Signals",
        host="Theo Calloway",
        guests=("Tamsin Okoro",),
        segments=(
            Segment(
                start=10, end=16, speaker="Theo Calloway", text="Tonight: the sound of cities."
            ),
            Segment(
                start=100,
                end=106,
                speaker="Tamsin Okoro",
                text="The storm drain on Harrow Street hums at fifty eight hertz.",
            ),
            Segment(
                start=400,
                end=405,
                speaker="Tamsin Okoro",
                text="The old foundry bell was cast in nineteen sixty one.",
            ),
        ),
    )


async def test_the_episode_reaches_the_llm_and_moving_the_position_works() -> None:
    llm = FakeLLM(reply="Around 1:40 Tamsin said it hums at fifty eight hertz.")
    ctx = EpisodeContext(_sample(), position=200.0)
    conv = Conversation(llm=llm, tts=FakeTTS(), context=[ctx])
    reply = await conv.areply("What does the storm drain hum at?")
    assert "fifty eight hertz" in reply.text
    sent = llm.calls[-1]
    assert sent[0].content == DEFAULT_PERSONA.system_message()
    episode_text = "\n".join(m.content for m in sent[1:-1] if m.role == "system")
    assert "[1:40] Tamsin Okoro: The storm drain" in episode_text
    assert "foundry" not in episode_text  # said at 6:40, after the position
    assert ctx.last is not None and ctx.last.position == 200.0
    assert sent[-1] == Message.user("What does the storm drain hum at?")
    # a bad position is refused, and the conversation goes on at the old one
    with pytest.raises(InvalidInputError):
        ctx.position = -5
    await conv.areply("And the bell?")
    assert "foundry" not in "\n".join(m.content for m in llm.calls[-1])
    ctx.position = 500.0  # the listener played on
    await conv.areply("And the bell?")
    assert "nineteen sixty one" in "\n".join(m.content for m in llm.calls[-1])
    assert len(conv.history) == 6


async def test_the_conversation_budget_still_applies() -> None:
    llm = FakeLLM(reply="Yes.")
    ctx = EpisodeContext(_sample(), position=500.0, budget_tokens=300)
    conv = Conversation(
        llm=llm, tts=FakeTTS(), context=[ctx], options=TurnOptions(context_budget_tokens=40)
    )
    await conv.areply("What does the storm drain hum at?")
    provided = [m for m in llm.calls[-1][1:-1] if m.role == "system"]  # not the examples
    assert sum(estimate_tokens(m.content) for m in provided) <= 40


class PrimingLLM(FakeLLM):
    def __init__(self) -> None:
        super().__init__(reply="Sure.")
        self.primed: list[list[Message]] = []

    async def aprime(self, messages: list[Message]) -> None:
        self.primed.append(list(messages))


async def test_prime_evaluates_the_prefix_the_turn_will_start_with() -> None:
    llm = PrimingLLM()
    ctx = EpisodeContext(_sample(), position=200.0)
    persona = DEFAULT_PERSONA.model_copy(update={"knowledge": "Theo hosts Slow Signals."})
    conv = Conversation(llm=llm, tts=FakeTTS(), context=[ctx], persona=persona)
    await conv.aopen()
    assert isinstance(conv.context[0], StaticContext)  # the persona's knowledge comes first
    assert await ctx.prime(conv) is True
    prefix = llm.primed[-1]
    await conv.areply("What does the storm drain hum at?")
    sent = llm.calls[-1]
    assert sent[: len(prefix)] == prefix  # llama.cpp reuses exactly this much of the prompt
    assert prefix[-1].content.startswith("You are the host.")

    class Varying:
        async def provide(self, turn: object) -> str:
            return "changes every turn"

    conv2 = Conversation(llm=PrimingLLM(), tts=FakeTTS(), context=[Varying(), ctx])
    assert await ctx.prime(conv2) is False  # an earlier provider's text is unknown ahead
    assert await ctx.prime(Conversation(llm=FakeLLM(), tts=FakeTTS(), context=[ctx])) is False


def test_a_persona_that_is_not_the_host() -> None:
    ctx = EpisodeContext(_sample(), position=200.0)
    guide = Persona(name="Guide", prompt="You help listeners.")
    text = ctx.brief("x", persona=guide).messages[0].content
    assert "You are the host" not in text and "The listener is playing" in text
