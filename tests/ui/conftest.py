"""Fixtures of the app tests: the fake stack with scripted latency, the app on a real socket in
a thread, and a real headless Chromium (Debian's ``/usr/bin/chromium``, never a download)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio", reason='needs the ui extra: pip install "lexperience[ui]"')
pytest.importorskip("av", reason='needs the ui extra: pip install "lexperience[ui]"')

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CHROMIUM = os.environ.get("LEXPERIENCE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # a microphone that "says" the sample question (the recording test)
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    f"--use-file-for-fake-audio-capture={EXAMPLES / 'question.wav'}",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium per test module (skipped when it is not installed).

    Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    while it is open, and the async tests of the other modules need the thread's loop free."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(
            f"no Chromium at {CHROMIUM} (scripts/install-system-deps.sh installs Debian's "
            "chromium; LEXPERIENCE_CHROMIUM points elsewhere)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs playwright (the test extra)"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
