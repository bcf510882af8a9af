"""The app driven in a real headless Chromium, with the fake backends and scripted latency.

The fake TTS takes half a second per second of speech, so a turn is verifiably still running
(on the server, and for the browser: its media stream has not ended) while the first sentence
already plays.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES
from ui_support import (
    LONG_REPLY,
    ask_text,
    chat_text,
    open_app,
    player_stats,
    playing_stats,
    served,
    session_of,
    slow_fake_stack,
    upload_question,
    wait_until,
)

from lexperience.ui import UIConfig
from lexperience.ui.runtime import UIRuntime

# pandas deprecations inside Gradio's own queue code (not ours)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[str, UIRuntime]]:
    config = UIConfig(stack=slow_fake_stack(reply=LONG_REPLY), max_concurrent_turns=4)
    with served(config) as served_app:
        yield served_app


@pytest.fixture
def page(chromium: Any, app: tuple[str, UIRuntime]) -> Iterator[Any]:
    url, _ = app
    context, page = open_app(chromium, url)
    try:
        yield page
    finally:
        context.close()


def _known(runtime: UIRuntime) -> set[str]:
    return {s.id for s in runtime.sessions.sessions()}


def test_uploaded_question_plays_while_the_turn_runs(
    page: Any, app: tuple[str, UIRuntime], tmp_path: Path
) -> None:
    _, runtime = app
    before = _known(runtime)
    upload_question(page, EXAMPLES / "question.wav")
    page.click("#lex-chat-ask")
    session = session_of(runtime, before)
    view = session.chat
    assert view is not None

    # the media element is playing the reply...
    stats = wait_until(lambda: playing_stats(page), what="the reply to start playing")
    # ...while the browser has not got all of it, and the server is still making it
    assert stats["streamEndAt"] is None
    assert view.running and not view.reply.stream.ended
    assert stats["mode"] == "mse" and stats["firstPlayingAt"] >= stats["firstBytesAt"]

    wait_until(lambda: not view.running, what="the turn to end")
    log = wait_until(lambda: "Nothing that falls" in (t := chat_text(page)) and t, what="reply")
    assert "What is a black hole?" in log  # the transcript (FakeSTT) of the uploaded question
    assert LONG_REPLY.split(".")[0] in log
    table = wait_until(
        lambda: "total_s" in (t := page.inner_text("#lex-chat-metrics")) and t, what="metrics"
    )
    assert "first_audio_s" in table
    final = player_stats(page)
    assert final["streamEndAt"] is not None and final["firstPlayingAt"] < final["streamEndAt"]
    assert view.conversation.history[-1].content == LONG_REPLY  # heard in full: kept in full

    target = tmp_path / "app.png"  # the docs' screenshots come from the offline-stack test
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def test_stop_keeps_only_what_was_heard(page: Any, app: tuple[str, UIRuntime]) -> None:
    _, runtime = app
    before = _known(runtime)
    ask_text(page, "Tell me about black holes")
    session = session_of(runtime, before)
    view = session.chat
    assert view is not None
    wait_until(lambda: player_stats(page)["currentTime"] > 1.0, what="a second of the reply")
    assert view.running
    page.click("#lex-chat-stop")
    wait_until(lambda: not view.running, what="the turn to stop")

    stats = player_stats(page)
    heard_at = stats["stoppedAt"]
    # currentTime was past 1 s; the heard position is that less the AAC priming in front
    assert heard_at is not None and 0.9 <= heard_at < 8.0
    assert stats["paused"]
    # the position the browser reported is the one the conversation was interrupted at
    assert view.last_stop == pytest.approx(heard_at, abs=1e-6)
    last = view.conversation.history[-1]
    assert last.role == "assistant" and last.interrupted
    assert last.content.endswith("…") or last.content in LONG_REPLY
    kept = last.content.rstrip(" …").split()
    assert 0 < len(kept) < len(LONG_REPLY.split())
    assert LONG_REPLY.split()[: len(kept)] == kept
    log = wait_until(lambda: "stopped after" in (t := chat_text(page)) and t, what="the note")
    assert "the Earth is in no danger" not in log


def test_two_browser_sessions_never_see_each_other(
    chromium: Any, app: tuple[str, UIRuntime]
) -> None:
    url, runtime = app
    before = _known(runtime)
    (ctx_a, page_a), (ctx_b, page_b) = open_app(chromium, url), open_app(chromium, url)
    try:
        ask_text(page_a, "Where do comets come from?")
        ask_text(page_b, "Why do cats purr?")
        wait_until(
            lambda: (
                len([s for s in runtime.sessions.sessions() if s.id not in before and s.chat]) == 2
            ),
            what="two sessions",
        )
        both = [s for s in runtime.sessions.sessions() if s.id not in before]
        # both turns run at the same time
        wait_until(lambda: all(s.chat and s.chat.running for s in both), what="both running")
        wait_until(
            lambda: all(s.chat and not s.chat.running for s in both), what="both turns to end"
        )
        a, b = wait_until(lambda: (chat_text(page_a), chat_text(page_b)), what="logs")
        assert "comets" in a and "purr" not in a
        assert "purr" in b and "comets" not in b
        histories = sorted(
            [m.content for m in s.chat.conversation.history if m.role == "user"]
            for s in both
            if s.chat
        )
        assert histories == [["Where do comets come from?"], ["Why do cats purr?"]]
        assert len({id(s.chat.conversation) for s in both if s.chat}) == 2
        # the models are shared: one LLM object behind both conversations
        llms = {id(s.chat.conversation.backends.llm) for s in both if s.chat}
        assert len(llms) == 1
    finally:
        ctx_a.close()
        ctx_b.close()
    # closing the tabs ends their sessions
    wait_until(lambda: all(s.id not in runtime.sessions for s in both), what="sessions dropped")


def test_closing_the_tab_mid_reply_stops_its_turn(
    chromium: Any, app: tuple[str, UIRuntime]
) -> None:
    url, runtime = app
    before = _known(runtime)
    context, page = open_app(chromium, url)
    ask_text(page, "A question nobody waits for")
    session = session_of(runtime, before)
    view = session.chat
    assert view is not None
    wait_until(lambda: view.running and view.reply and view.reply.stream.size, what="the reply")
    context.close()
    wait_until(lambda: not view.running, what="the turn to stop")
    wait_until(lambda: session.id not in runtime.sessions, what="the session to end")
    assert view.reply is not None and view.reply.stream.ended
    # it was cut, not finished: no complete reply in the history (what was heard, if a word, is
    # kept and marked interrupted)
    replies = [m for m in view.conversation.history if m.role == "assistant"]
    assert all(m.interrupted for m in replies) and len(replies) <= 1


def test_a_recorded_question_is_answered_when_recording_stops(
    page: Any, app: tuple[str, UIRuntime]
) -> None:
    _, runtime = app
    before = _known(runtime)
    root = page.locator("#lex-chat-audio")
    root.get_by_role("button", name="Record", exact=True).click()
    time.sleep(1.5)  # the fake microphone plays examples/question.wav
    root.get_by_role("button", name="Stop", exact=True).click()
    session = session_of(runtime, before)
    view = session.chat
    assert view is not None
    wait_until(lambda: player_stats(page)["currentTime"] > 0, what="the reply to play")
    wait_until(lambda: "What is a black hole?" in chat_text(page), what="the transcript")
    page.click("#lex-chat-stop")
    wait_until(lambda: not view.running, what="the turn")
    first_user = view.conversation.history[0]
    assert first_user.role == "user" and first_user.content == "What is a black hole?"
    assert view.reply is not None and view.reply.stream.size > 0


def test_without_media_source_extensions_the_whole_reply_plays_at_the_end(
    chromium: Any, app: tuple[str, UIRuntime]
) -> None:
    url, runtime = app
    before = _known(runtime)
    context = chromium.new_context()
    context.add_init_script("delete window.MediaSource; delete window.ManagedMediaSource;")
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function("() => window.lexperience && window.lexperience.player('chat')")
        ask_text(page, "An old browser asks")
        session = session_of(runtime, before)
        stats = wait_until(lambda: playing_stats(page), what="playback")
        assert stats["mode"] == "file" and stats["firstPlayingAt"] >= stats["streamEndAt"]
        assert session.chat is not None and session.chat.reply is not None
        assert session.chat.reply.stream.ended
    finally:
        context.close()


@pytest.fixture(scope="module")
def episode_app() -> Iterator[tuple[str, UIRuntime]]:
    stack = slow_fake_stack(stt_text="What did Tamsin say about the storm drain?")
    with served(UIConfig(stack=stack)) as served_app:
        yield served_app


def test_episode_player_pauses_asks_and_resumes(
    chromium: Any, episode_app: tuple[str, UIRuntime], tmp_path: Path
) -> None:
    url, runtime = episode_app
    before = _known(runtime)
    context, page = open_app(chromium, url)
    try:
        page.click("#lex-tab-episode-button")
        page.wait_for_function("() => window.lexperience.episode('episode')")
        info = wait_until(lambda: "The Night Map" in (t := page.inner_text("#lex-episode-info")) and t,
                          what="the sample episode")  # fmt: skip
        assert "Theo Calloway" in info
        session = wait_until(
            lambda: next(
                (s for s in runtime.sessions.sessions() if s.id not in before and s.episode), None
            ),
            what="the episode session",
        )
        episode = session.episode
        # play from 1:36 for a moment, then pause: the server moves there
        page.evaluate(
            "() => { const a = window.lexperience.episode('episode').audio;"
            " a.currentTime = 96; return a.play(); }"
        )
        wait_until(
            lambda: (
                page.evaluate("() => window.lexperience.episode('episode').audio.currentTime")
                > 97.0
            ),
            what="the episode to play",
        )
        paused_at = page.evaluate(
            "() => { const a = window.lexperience.episode('episode').audio; a.pause();"
            " return a.currentTime; }"
        )
        wait_until(lambda: abs(episode.position - paused_at) < 1e-3, what="the pause position")
        wait_until(
            lambda: page.input_value("#lex-episode-position textarea").startswith("1:3"),
            what="the position shown",
        )

        ask_text(page, "What did Tamsin say about the storm drain?", tab="episode")
        view = episode.view
        wait_until(lambda: view.running, what="the host's turn")
        wait_until(lambda: player_stats(page, "episode")["currentTime"] > 0, what="the answer")
        wait_until(lambda: not view.running, what="the answer to end")
        brief = episode.context.last
        assert brief is not None and brief.position == pytest.approx(paused_at, abs=1e-3)
        # the moments the answer drew on are shown, and none is after the pause
        assert brief.passages and all(p.end <= paused_at + 1e-6 for p in brief.passages)
        table = wait_until(lambda: "storm drain" in (t := page.inner_text("#lex-episode-passages"))
                           and t, what="the passages")  # fmt: skip
        assert brief.passages[0].timestamp in table
        assert "storm drain" in chat_text(page, "episode")

        page.click("#lex-episode-resume")
        wait_until(
            lambda: page.evaluate(
                "() => { const a = window.lexperience.episode('episode').audio;"
                " return !a.paused && a.currentTime > " + str(paused_at + 0.3) + "; }"
            ),
            what="the episode to resume",
        )
        assert player_stats(page, "episode")["paused"]  # the host stopped talking
        page.screenshot(path=str(tmp_path / "episode.png"), full_page=True)
    finally:
        context.close()


def test_the_page_loads_once_per_tab_and_the_backends_once_per_process(
    app: tuple[str, UIRuntime],
) -> None:
    _, runtime = app
    assert runtime.ready
    # one shared instance per backend kind, however many sessions ran
    assert len(runtime.pool._backends) == 4
    assert threading.active_count() < 80
