"""The app's state without a browser: turns, what the listener heard, sessions, the episode."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import EXAMPLES
from ui_support import LONG_REPLY, slow_fake_stack

from lexperience import Conversation
from lexperience.episode import Episode, EpisodeContext
from lexperience.errors import ConfigurationError
from lexperience.messages import Message
from lexperience.testing import FakeAvatar, FakeLLM, FakeSTT, FakeTTS
from lexperience.ui import UIConfig
from lexperience.ui.episode_state import EpisodeSession, find_audio
from lexperience.ui.runtime import UIRuntime
from lexperience.ui.turns import ConversationView

SAMPLE = EXAMPLES / "episode" / "slow-signals-12.json"


def _view(*, tts_realtime: float = 0.0, reply: str = LONG_REPLY) -> ConversationView:
    conv = Conversation(
        stt=FakeSTT(),
        llm=FakeLLM(reply),
        tts=FakeTTS(realtime_factor=tts_realtime),
        avatar=FakeAvatar(size=(32, 32)),
    )
    return ConversationView(conv)


async def _run(view: ConversationView, question: str, played: float | None = None) -> None:
    async for _ in view.ask(question, played=played):
        pass


async def test_a_turn_fills_the_chat_and_the_reply_stream() -> None:
    view = _view()
    await _run(view, "What is a black hole?")
    assert [e.role for e in view.chat] == ["user", "assistant"]
    assert view.chat[0].content == "What is a black hole?"
    assert view.chat[1].content == LONG_REPLY
    assert view.metrics is not None and view.metrics.first_audio_s is not None
    reply = view.reply
    assert reply is not None and reply.done and reply.stream.state == "done"
    assert reply.stream.size > 0 and reply.stream.mime_type is not None
    assert reply.audio_seconds == pytest.approx(view.metrics.reply_audio_s)
    assert view.player_state()["url"].endswith(f"{reply.stream.key}.mp4")


async def test_stop_during_the_turn_interrupts_at_the_played_position() -> None:
    view = _view(tts_realtime=0.5)
    task = asyncio.ensure_future(_run(view, "Tell me"))
    while view.reply is None or view.reply.audio_seconds < 2.0:
        await asyncio.sleep(0.02)
    assert view.running
    await view.stop(1.2)
    await task
    last = view.conversation.history[-1]
    assert last.role == "assistant" and last.interrupted
    assert last.content.endswith("…")
    assert LONG_REPLY.startswith(last.content.rstrip(" …"))
    assert view.chat[-1].content == last.content
    assert view.chat[-1].note == "stopped after 1.2 s"
    assert view.reply is not None and view.reply.stream.state == "aborted"
    assert view.last_stop == 1.2


async def test_stop_after_the_turn_keeps_only_what_was_heard() -> None:
    view = _view()
    await _run(view, "Tell me")  # made faster than it plays: the turn is over already
    assert view.conversation.history[-1].content == LONG_REPLY
    assert await view.stop(1.0) is True
    last = view.conversation.history[-1]
    assert last.interrupted and last.content.endswith("…")
    words = last.content.rstrip(" …").split()
    assert 0 < len(words) < len(LONG_REPLY.split()) and LONG_REPLY.split()[: len(words)] == words
    assert view.chat[-1].content == last.content and "stopped after 1.0 s" in (
        view.chat[-1].note or ""
    )
    assert await view.stop(0.5) is False  # a second Stop changes nothing
    assert view.conversation.history[-1] == last


async def test_a_reply_heard_to_the_end_stays_whole() -> None:
    view = _view()
    await _run(view, "Tell me")
    assert view.reply is not None
    assert await view.stop(view.reply.audio_seconds) is False
    assert await view.stop(None) is False
    assert view.conversation.history[-1] == Message.assistant(LONG_REPLY)


async def test_asking_again_cuts_the_reply_being_played() -> None:
    view = _view()
    await _run(view, "First question")
    await _run(view, "Second question", played=0.6)  # asked while the first reply played
    history = view.conversation.history
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[1].interrupted and len(history[1].content) < len(LONG_REPLY)
    assert not history[3].interrupted and history[3].content == LONG_REPLY


async def test_a_failed_turn_says_so_and_the_conversation_stays_usable() -> None:
    conv = Conversation(llm=FakeLLM(LONG_REPLY, fail_after=0), tts=FakeTTS())
    view = ConversationView(conv)
    await _run(view, "Hello")
    assert view.error is not None and "scripted failure" in view.error
    assert view.chat[-1].role == "user" and "not answered" in (view.chat[-1].note or "")
    assert view.reply is not None and view.reply.stream.ended
    conv.backends.llm.fail_after = None  # type: ignore[union-attr]
    await _run(view, "Hello again")
    assert view.chat[-1].content == LONG_REPLY


async def test_without_an_avatar_the_reply_streams_as_audio() -> None:
    view = ConversationView(Conversation(llm=FakeLLM("Just a voice."), tts=FakeTTS()))
    await _run(view, "Hello")
    assert view.reply is not None and view.reply.stream.mime_type == 'audio/mp4; codecs="mp4a.40.2"'
    assert view.player_state()["fps"] is None


async def test_clear_forgets_history_and_chat() -> None:
    view = _view()
    await _run(view, "Hello")
    await view.clear()
    assert view.chat == [] and view.conversation.history == [] and view.reply is None


# -- sessions on shared backends ------------------------------------------------------------------
@pytest.fixture
async def runtime(tmp_path: Path) -> UIRuntime:
    personas = tmp_path / "personas"
    personas.mkdir()
    (personas / "ada.toml").write_text('name = "Ada Quill"\nprompt = "You are Ada Quill."\n')
    return UIRuntime(UIConfig(stack=slow_fake_stack(tts_realtime=0.0), personas_dir=personas))


async def test_sessions_share_the_backends_but_not_the_conversations(runtime: UIRuntime) -> None:
    one, two = runtime.sessions.get("a"), runtime.sessions.get("b")
    view_one, view_two = await runtime.chat(one), await runtime.chat(two)
    assert view_one is not view_two and view_one.key != view_two.key
    assert view_one.conversation is not view_two.conversation
    assert view_one.conversation.backends.llm is view_two.conversation.backends.llm
    assert view_one.conversation.watermark is not None  # the visible mark is always on
    await asyncio.gather(_run(view_one, "About comets"), _run(view_two, "About cats"))
    assert [m.content for m in view_one.conversation.history if m.role == "user"] == [
        "About comets"
    ]
    assert "About cats" not in " ".join(m.content for m in view_one.conversation.history)
    assert "About comets" not in " ".join(m.content for m in view_two.conversation.history)
    assert runtime.stream(view_one.reply.stream.key) is view_one.reply.stream  # type: ignore[union-attr]
    await runtime.stop()


async def test_persona_picker(runtime: UIRuntime) -> None:
    assert runtime.persona_choices() == [
        ("Theo Calloway (built-in)", "default"),
        ("Ada Quill (ada)", "ada"),
    ]
    session = runtime.sessions.get("a")
    await _run(await runtime.chat(session), "Hello")
    await runtime.set_persona(session, "ada")
    assert session.chat is None  # a new conversation on first use, with the new persona
    view = await runtime.chat(session)
    assert view.conversation.persona.name == "Ada Quill" and view.chat == []
    with pytest.raises(ConfigurationError):
        await runtime.set_persona(session, "nobody")
    assert session.persona == "ada"
    await runtime.stop()


async def test_sessions_end_when_closed_or_idle(runtime: UIRuntime) -> None:
    session = runtime.sessions.get("gone")
    view = await runtime.chat(session)
    await _run(view, "Hello")
    key = view.reply.stream.key  # type: ignore[union-attr]
    await runtime.sessions.drop("gone")
    assert "gone" not in runtime.sessions and runtime.stream(key) is None
    runtime.sessions.ttl = 0.0
    runtime.sessions.get("idle")
    await asyncio.sleep(0.01)
    assert await runtime.sessions.sweep() == 1 and len(runtime.sessions) == 0
    await runtime.stop()


# -- the episode ----------------------------------------------------------------------------------
class PrimingLLM(FakeLLM):
    """A fake LLM that, like llama-cpp, can evaluate a prompt prefix ahead of a turn."""

    def __init__(self) -> None:
        super().__init__()
        self.primed: list[list[Message]] = []

    async def aprime(self, messages: Sequence[Message]) -> None:
        self.primed.append(list(messages))


async def test_the_episode_pause_primes_and_the_question_is_asked_at_it() -> None:
    episode = Episode.load(SAMPLE)
    ctx = EpisodeContext(episode)
    llm = PrimingLLM()
    view = ConversationView(Conversation(llm=llm, tts=FakeTTS(), context=[ctx]))
    session = EpisodeSession(episode, find_audio(SAMPLE, episode), view, ctx)
    assert session.audio == SAMPLE.with_suffix(".ogg")
    session.pause(100.0)
    while session.primed_at != 100.0:
        await asyncio.sleep(0.01)
    assert "1:40" in llm.primed[-1][-1].content  # the position-dependent context, evaluated
    assert session.status() == "Paused at **1:40** — ready for your question"
    async for _ in session.ask("What about the storm drain?", position=None, played=None):
        pass
    brief = ctx.last
    assert brief is not None and brief.position == 100.0
    assert brief.passages and all(p.end <= 100.0 for p in brief.passages)
    rows = session.passages()
    assert rows[0][0] == brief.passages[0].timestamp and rows[-1][1].startswith("(the minutes")
    assert "Night Map" in session.describe()
    await session.close()


async def test_an_episode_opens_in_the_runtime_with_its_audio(tmp_path: Path) -> None:
    runtime = UIRuntime(UIConfig(stack=slow_fake_stack(tts_realtime=0.0)))
    session = runtime.sessions.get("a")
    ep = await runtime.open_episode(session, SAMPLE)
    assert ep.audio is not None and runtime.episode_audio(session.key) == ep.audio
    assert ep.view.conversation.context[-1] is ep.context
    transcript_only = tmp_path / "ep.vtt"
    transcript_only.write_text((SAMPLE.with_suffix(".vtt")).read_text())
    ep = await runtime.open_episode(session, transcript_only)
    assert ep.audio is None and runtime.episode_audio(session.key) is None
    await runtime.stop()
