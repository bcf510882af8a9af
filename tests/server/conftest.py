"""Fixtures of the service tests: a real uvicorn server on a loopback socket, in a thread, with
the fake backends (or any stack), and the real HTTP and WebSocket clients of lexperience.client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
pytest.importorskip("httpx")
pytest.importorskip("websockets")

sys.path.insert(0, str(Path(__file__).parent))

from service_support import TOKEN, fake_stack, live_server

from lexperience.server import ServerSettings


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
