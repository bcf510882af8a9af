"""Fixtures of the service tests: a real uvicorn server on a loopback socket, in a thread, with
the fake backends (or any stack), and the real HTTP and WebSocket clients of lexperience.client."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
pytest.importorskip("httpx")
pytest.importorskip("websockets")

from lexperience.config import BackendConfig, Settings
from lexperience.server import ServerSettings
from lexperience.server.background import serve_in_thread

sys.path.insert(0, str(Path(__file__).parent))

TOKEN = "test-token-0123456789abcdef"


def fake_stack(**llm_options: Any) -> Settings:
    return Settings(
        stt=BackendConfig(name="fake"),
        llm=BackendConfig(name="fake", options=llm_options),
        tts=BackendConfig(name="fake"),
        avatar=BackendConfig(name="fake"),
    )


def live_server(settings: ServerSettings) -> contextlib.AbstractContextManager[str]:
    """Serve ``settings`` on 127.0.0.1 (a free port) for the block; yields the base URL."""
    return serve_in_thread(settings.model_copy(update={"port": 0}))


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """One service with the fake stack and a token, shared by a module's tests."""
    settings = ServerSettings(
        stack=fake_stack(token_interval=0.01),
        tokens=[TOKEN],
        max_request_bytes=2 * 1024 * 1024,
        turns_per_minute=600,
        burst=100,
        max_queued_turns=64,
    )
    with live_server(settings) as url:
        yield url
