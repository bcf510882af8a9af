"""Fixtures of the dreamtalk avatar tests.

Everything here runs on the CPU without DreamTalk's weights: the backend drives a STAND-IN
checkout (``tests/dreamtalk/standin``: DreamTalk's layout, class names, signatures and tensor
shapes; tiny networks) with stand-in checkpoints written at session start, and a stand-in for
wav2vec2. Tests marked ``gpu`` need CUDA and the real checkpoints, named by environment variables
(see ``test_dreamtalk_gpu.py``); they are skipped, with the reason, everywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dreamtalk_standin import StandinAudioEncoder, StandinSetup, build_standin

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytest.importorskip("torch", reason='the dreamtalk avatar needs PyTorch ("lexperience[dreamtalk]")')
pytest.importorskip("cv2", reason="the dreamtalk avatar needs OpenCV")
pytest.importorskip("scipy.io", reason="the dreamtalk avatar needs SciPy")
pytest.importorskip("yaml", reason="the dreamtalk avatar needs PyYAML")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.dreamtalk)


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> StandinSetup:
    """A stand-in DreamTalk checkout with its checkpoints, style clip and pose (built once)."""
    return build_standin(tmp_path_factory.mktemp("dreamtalk"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A 512x512 RGB photo with a face (NASA, public domain; from scikit-image), for tests."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.astronaut(), dtype=np.uint8)


@pytest.fixture
def encoder() -> StandinAudioEncoder:
    return StandinAudioEncoder()


@pytest.fixture
def make_avatar(
    standin: StandinSetup, astronaut: np.ndarray, encoder: StandinAudioEncoder
) -> Iterator[Callable[..., Any]]:
    """``make_avatar(**options)``: a DreamTalkAvatar on the stand-in, on the CPU."""
    from lexperience.backends.dreamtalk_avatar import DreamTalkAvatar

    made: list[DreamTalkAvatar] = []

    def make(**options: Any) -> DreamTalkAvatar:
        kwargs: dict[str, Any] = {
            "checkout": standin.checkout,
            "portrait": astronaut,
            "audio_encoder": encoder,
            "device": "cpu",
            "seed": 7,
        }
        kwargs.update(options)
        avatar = DreamTalkAvatar(**kwargs)
        made.append(avatar)
        return avatar

    yield make
