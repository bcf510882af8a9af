"""Fixtures of the cloud backend tests: one local wire-protocol server for the session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from wire_server import WireServer, running

pytest.importorskip("openai")
pytest.importorskip("elevenlabs")
pytest.importorskip("replicate")
pytest.importorskip("av")

from lexperience.output.mp4 import write_mp4

#: Frames of the test clip: frame i is a flat grey of value CLIP_BASE + CLIP_STEP * i.
CLIP_FRAMES = 50
CLIP_BASE = 20
CLIP_STEP = 4
CLIP_FPS = 25

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
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireServer]:
    folder = tmp_path_factory.mktemp("clips")
    frames = [
        np.full((48, 64, 3), CLIP_BASE + CLIP_STEP * i, dtype=np.uint8) for i in range(CLIP_FRAMES)
    ]
    clip = write_mp4(folder / "clip.mp4", frames=frames, fps=CLIP_FPS)
    clips = {
        "mp4": clip.read_bytes(),
        "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    }
    with running(clips) as server:
        yield server


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
