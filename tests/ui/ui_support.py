"""Helpers of the app tests: stacks, a served app, and page actions in Chromium."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lexperience.config import BackendConfig, Settings
from lexperience.ui import UIConfig
from lexperience.ui.background import serve_in_thread
from lexperience.ui.runtime import UIRuntime
from lexperience.ui.session import UISession

#: A reply long enough to stop half-way (two sentences: the built-in host says at most two).
LONG_REPLY = (
    "Black holes are regions where gravity wins over everything else and even light is caught. "
    "Nothing that falls past the horizon ever comes back out and the Earth is in no danger."
)


def slow_fake_stack(
    *, reply: str | None = None, tts_realtime: float = 0.5, stt_text: str | None = None
) -> Settings:
    """The fake backends with scripted latency: the TTS takes ``tts_realtime`` seconds per
    second of speech, so a turn is still running while its first sentence plays."""
    stt: dict[str, Any] = {"latency": 0.2}
    if stt_text is not None:
        stt["text"] = stt_text
    llm: dict[str, Any] = {"first_token_latency": 0.15, "token_interval": 0.04}
    if reply is not None:
        llm["reply"] = reply
    return Settings(
        stt=BackendConfig(name="fake", options=stt),
        llm=BackendConfig(name="fake", options=llm),
        tts=BackendConfig(name="fake", options={"realtime_factor": tts_realtime}),
        avatar=BackendConfig(name="fake", options={"size": [96, 96]}),
    )


@contextlib.contextmanager
def served(config: UIConfig) -> Iterator[tuple[str, UIRuntime]]:
    runtime = UIRuntime(config)
    with serve_in_thread(runtime=runtime) as url:
        yield url, runtime


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.03)


def open_app(browser: Any, url: str) -> tuple[Any, Any]:
    """A fresh browser context (its own session) on the app; returns (context, page)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("() => window.lexperience && window.lexperience.player('chat')")
    return context, page


def session_of(runtime: UIRuntime, before: set[str]) -> UISession:
    """The session a page opened (the one that was not there before)."""
    found = wait_until(
        lambda: [s for s in runtime.sessions.sessions() if s.id not in before and s.chat],
        what="the page's session",
    )
    assert len(found) == 1
    session: UISession = found[0]
    return session


def player_stats(page: Any, player: str = "chat") -> dict[str, Any]:
    stats: dict[str, Any] = page.evaluate(
        "(id) => { const p = window.lexperience.player(id);"
        " return Object.assign({currentTime: p.video.currentTime, paused: p.video.paused,"
        " turns: p.history.length}, p.stats || {}); }",
        player,
    )
    return stats


def playing_stats(page: Any, player: str = "chat") -> dict[str, Any] | None:
    """The player's stats once its media element plays: its clock has moved *and* the
    ``playing`` event has reached the page (Chromium can move ``currentTime`` past a small
    gap at the start of the buffer a moment before it dispatches that event)."""
    stats = player_stats(page, player)
    return stats if stats["currentTime"] > 0 and stats["firstPlayingAt"] is not None else None


def ask_text(page: Any, question: str, tab: str = "chat") -> None:
    page.fill(f"#lex-{tab}-text textarea", question)
    page.click(f"#lex-{tab}-ask")


def upload_question(page: Any, path: Path, tab: str = "chat") -> None:
    """Switch the audio input to "upload", give it ``path`` and wait until it is uploaded."""
    root = page.locator(f"#lex-{tab}-audio")
    root.get_by_role("button", name="Upload file").click()
    root.locator("input[type=file]").set_input_files(str(path))
    root.locator('a[data-testid="download-link"]').wait_for(timeout=15_000)


def chat_text(page: Any, tab: str = "chat") -> str:
    text: str = page.inner_text(f"#lex-{tab}-log")
    return text
