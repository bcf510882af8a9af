"""Fixtures of the cloud backend tests: one local wire-protocol server for the session
(:mod:`lexperience.testing.wire`).

Each test module skips by itself when its own SDK is missing (``pytest.importorskip`` at its
top), so a missing ``replicate`` skips the Replicate tests and nothing else. Only the server's
own dependencies (Starlette, uvicorn) are needed by every test here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import sys

sys.path.insert(0, str(Path(__file__).parent))

from cloud_support import CLIP_BASE, CLIP_FPS, CLIP_FRAMES, CLIP_STEP

from lexperience.testing.wire import WireServer, grey_ramp_clip

_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ELEVENLABS_API_KEY",
    "ELEVENLABS_BASE_URL",
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "REPLICATE_POLL_INTERVAL",
)


@pytest.fixture(scope="session")
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture(scope="session")
def _ramp() -> bytes:
    pytest.importorskip("av")
    return grey_ramp_clip(CLIP_FRAMES, CLIP_BASE, CLIP_STEP, size=(64, 48), fps=CLIP_FPS)


@pytest.fixture
def ramp_clip(wire: WireServer, _ramp: bytes) -> Iterator[bytes]:
    """Every prediction returns the grey-ramp clip (tests can tell which frame they see)."""
    wire.clip = _ramp
    yield _ramp
    wire.clip = None


@pytest.fixture(autouse=True)
def _fresh(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    wire.reset()
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def portrait(tmp_path: Path) -> Path:
    path = tmp_path / "face.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9")
    return path
