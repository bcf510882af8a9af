"""Helpers of the service tests: the fake stack, a token, a real server in a thread."""

from __future__ import annotations

import contextlib
from typing import Any

from lexperience.config import BackendConfig, Settings
from lexperience.server import ServerSettings
from lexperience.server.background import serve_in_thread

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
