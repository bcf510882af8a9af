"""The app on the real offline stack, in headless Chromium: the spoken sample question is
transcribed, answered, and its reply starts playing before the browser has all of it.

``LEXPERIENCE_UPDATE_SCREENSHOTS=1`` also writes the screenshots of the docs
(``docs/assets/app.png``, ``docs/assets/app-episode.png``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT
from ui_support import (
    ask_text,
    chat_text,
    open_app,
    player_stats,
    playing_stats,
    served,
    upload_question,
    wait_until,
)

from lexperience._optional import is_installed
from lexperience.ui import UIConfig
from lexperience.ui.runtime import UIRuntime

pytestmark = [
    pytest.mark.local,
    # pandas deprecations inside Gradio's own queue code (not ours)
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
]

for _module in ("faster_whisper", "llama_cpp", "piper", "cv2"):
    if not is_installed(_module):
        pytest.skip(f'needs the local extra: pip install "lexperience[local]" ({_module})',
                    allow_module_level=True)  # fmt: skip


def _shot(page: Any, name: str, tmp_path: Path) -> Path:
    update = os.environ.get("LEXPERIENCE_UPDATE_SCREENSHOTS")
    target = ROOT / "docs" / "assets" / name if update else tmp_path / name
    page.screenshot(path=str(target), full_page=True)
    return target


@pytest.fixture(scope="module")
def offline_app() -> Iterator[tuple[str, UIRuntime]]:
    with served(UIConfig()) as app:  # the default: the offline stack
        yield app


def test_the_offline_stack_answers_a_spoken_question_while_it_streams(
    chromium: Any, offline_app: tuple[str, UIRuntime], tmp_path: Path
) -> None:
    url, runtime = offline_app
    context, page = open_app(chromium, url)
    try:
        wait_until(lambda: runtime.ready or runtime.load_error, timeout=180, what="the models")
        assert runtime.load_error is None
        upload_question(page, EXAMPLES / "question.wav")
        page.click("#lex-chat-ask")
        wait_until(lambda: playing_stats(page), timeout=120, what="the reply to play")
        # playback began before the end of the reply reached the browser
        final = wait_until(lambda: (s := player_stats(page))["streamEndAt"] and s, timeout=120)
        assert final["firstPlayingAt"] < final["streamEndAt"]
        log = wait_until(lambda: "black hole" in (t := chat_text(page)).lower() and t)
        view = next(s.chat for s in runtime.sessions.sessions() if s.chat and s.chat.reply)
        wait_until(lambda: not view.running, timeout=120, what="the turn")
        reply = view.conversation.history[-1]
        assert reply.role == "assistant" and reply.content and reply.content[:20] in log
        assert "first_audio_s" in page.inner_text("#lex-chat-metrics")
        # while the reply still plays, the frame (with its AI-generated mark) is on screen
        wait_until(lambda: player_stats(page)["currentTime"] > 1.5, timeout=60)
        assert _shot(page, "app.png", tmp_path).stat().st_size > 50_000
    finally:
        context.close()


def test_the_offline_host_answers_about_the_episode(
    chromium: Any, offline_app: tuple[str, UIRuntime], tmp_path: Path
) -> None:
    url, runtime = offline_app
    context, page = open_app(chromium, url)
    try:
        page.click("#lex-tab-episode-button")
        wait_until(lambda: "The Night Map" in page.inner_text("#lex-episode-info"))
        page.evaluate(
            "() => { const a = window.lexperience.episode('episode').audio;"
            " a.currentTime = 99.5; return a.play(); }"
        )
        wait_until(lambda: page.evaluate(
            "() => window.lexperience.episode('episode').audio.currentTime") > 100.0)  # fmt: skip
        page.evaluate("() => window.lexperience.episode('episode').audio.pause()")
        ask_text(page, "What did Tamsin say about the storm drain?", tab="episode")
        wait_until(lambda: player_stats(page, "episode")["currentTime"] > 0, timeout=120)
        episode = next(
            s.episode for s in runtime.sessions.sessions() if s.episode and s.episode.view.reply
        )
        wait_until(lambda: not episode.view.running, timeout=120, what="the answer")
        brief = episode.context.last
        assert brief is not None and 100.0 <= brief.position < 101.0
        assert all(p.end <= brief.position for p in brief.passages)
        wait_until(lambda: "1:" in page.inner_text("#lex-episode-passages"))
        wait_until(lambda: player_stats(page, "episode")["currentTime"] > 1.5, timeout=60)
        assert _shot(page, "app-episode.png", tmp_path).stat().st_size > 50_000
    finally:
        context.close()
