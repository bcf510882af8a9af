"""The "Live" tab in a real headless Chromium whose microphone is a wav file (Chromium's fake
capture device plays it in a loop: a second of silence, the sample question, three seconds of
silence). Real Silero VAD on the server, fake STT/LLM/TTS with scripted latency: the question is
heard, answered, the reply plays in the page, the looped question interrupts it (barge-in), and
closing the tab ends the live session."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, EXAMPLES
from ui_support import LONG_REPLY, served, slow_fake_stack, wait_until

from lexperience.events import SpeechStarted, TurnInterrupted, TurnStarted
from lexperience.ui import UIConfig

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
    pytest.mark.local,
]


def _microphone(path: Path) -> Path:
    """1 s of silence, the sample question, 3 s of silence (16 kHz mono wav)."""
    with wave.open(str(EXAMPLES / "question.wav")) as src:
        rate = src.getframerate()
        speech = np.frombuffer(src.readframes(src.getnframes()), dtype=np.int16)
    samples = np.concatenate([np.zeros(rate, np.int16), speech, np.zeros(3 * rate, np.int16)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@pytest.fixture(scope="module")
def live_chromium(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium of its own: its microphone file differs from the other tests'."""
    pytest.importorskip("onnxruntime", reason="needs the local extra (Silero VAD)")
    pytest.importorskip("faster_whisper", reason="needs the local extra (Silero VAD)")
    mic = _microphone(tmp_path_factory.mktemp("mic") / "live.wav")
    args = [a for a in CHROMIUM_ARGS if not a.startswith("--use-file-for-fake-audio-capture")]
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM, args=[*args, f"--use-file-for-fake-audio-capture={mic}"]
    )
    try:
        yield browser
    finally:
        browser.close()


def _record(page: Any, mic: Any, runtime: Any) -> Any:
    """Start the recording and wait for its audio on the server; a click during the
    recorder's set-up (a loaded machine) may record nothing: stop and record again then."""
    for _ in range(3):
        time.sleep(1.0)
        mic.get_by_role("button", name="Record", exact=True).click()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [s for s in runtime.sessions.sessions() if s.live and s.live.mic_seconds > 0.5]
            if found:
                return found[0]
            time.sleep(0.1)
        stop = mic.get_by_role("button", name="Stop", exact=True)
        if stop.count():
            stop.click()
    raise AssertionError("the microphone sent no audio")


def test_live_tab_answers_plays_and_is_interrupted_by_voice(live_chromium: Any) -> None:
    stack = slow_fake_stack(reply=LONG_REPLY, stt_text="What is a black hole?")
    with served(UIConfig(stack=stack, max_concurrent_turns=4)) as (url, runtime):
        context = live_chromium.new_context(viewport={"width": 1280, "height": 1100})
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("() => window.lexperience && window.lexperience.player('chat')")
        page.get_by_role("tab", name="Live").click()
        page.wait_for_function("() => window.lexperience.player('live')")
        mic = page.locator("#lex-live-mic")
        session = _record(page, mic, runtime)
        view = session.live
        wait_until(lambda: view.running, what="listening")
        wait_until(
            lambda: any(isinstance(e, SpeechStarted) for e in view.events), what="speech start"
        )
        wait_until(lambda: any(isinstance(e, TurnStarted) for e in view.events), what="a turn")
        # the reply plays in the page while the user's next words are still to come
        wait_until(
            lambda: (
                page.evaluate("() => window.lexperience.player('live').video.currentTime") > 0.3
            ),
            what="the reply to play",
        )
        log = wait_until(
            lambda: "What is a black hole?" in (t := page.inner_text("#lex-live-log")) and t,
            what="the transcript in the log",
        )
        assert "Black holes are regions" in log
        status = page.inner_text("#lex-live-status")
        assert "speech started" in status and "speech ended" in status

        # the looped question comes back over the reply: it is cut, the page's player stops
        wait_until(
            lambda: any(isinstance(e, TurnInterrupted) for e in view.events),
            timeout=40,
            what="the barge-in",
        )
        wait_until(
            lambda: "interrupted after" in page.inner_text("#lex-live-status"),
            what="the interruption in the status",
        )
        history = view.conversation.history
        assert history[1].interrupted and history[1].content
        assert view.reports > 0  # the page's player said how much it played

        context.close()  # the tab goes away: its session and its live task end
        wait_until(
            lambda: session.id not in runtime.sessions, timeout=60, what="the session to close"
        )
        assert not view.running
