"""The real DreamTalk on a CUDA GPU with its real checkpoints (marked ``gpu``).

    LEXPERIENCE_DREAMTALK_CHECKOUT=~/dreamtalk pytest -m gpu tests/dreamtalk

The checkout must hold ``checkpoints/denoising_network.pth``, ``checkpoints/renderer.pt`` and
``checkpoints/wav2vec2-large-xlsr-53-english/`` (see docs/backends/dreamtalk.md). The portrait
is ``LEXPERIENCE_DREAMTALK_PORTRAIT`` or scikit-image's public-domain astronaut photo. Skipped,
with the reason, wherever CUDA or the variable is missing (as on CI).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from dreamtalk_support import chunks_of, collect

from lexperience.backends.dreamtalk_avatar import DreamTalkAvatar
from lexperience.testing.fakes import speech_like

CHECKOUT = os.environ.get("LEXPERIENCE_DREAMTALK_CHECKOUT")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(
        not CHECKOUT,
        reason="needs DreamTalk's real checkpoints: set LEXPERIENCE_DREAMTALK_CHECKOUT",
    ),
]


@pytest.fixture(scope="module")
def portrait() -> Any:
    path = os.environ.get("LEXPERIENCE_DREAMTALK_PORTRAIT")
    if path:
        return Path(path)
    from skimage import data

    return np.asarray(data.astronaut())


def _speech(rate: int = 16_000) -> list[Any]:
    first, _ = speech_like("Black holes are regions of space where gravity wins.", rate)
    second, _ = speech_like("Nothing escapes them, not even light.", rate)
    return chunks_of(first, rate, size=3200, sentence=0) + chunks_of(
        second, rate, size=3200, sentence=1
    )


@pytest.mark.parametrize(("steps", "fp16"), [(10, True), (5, True), (10, False)])
async def test_real_dreamtalk_on_the_gpu(portrait: Any, steps: int, fp16: bool) -> None:
    avatar = DreamTalkAvatar(checkout=CHECKOUT, portrait=portrait, device="cuda", fp16=fp16,
                             ddim_steps=steps, seed=0)  # fmt: skip
    chunks = _speech()
    frames = await collect(avatar, chunks)
    seconds = sum(c.duration for c in chunks)
    assert [f.index for f in frames] == list(range(round(seconds * 25)))
    assert {f.image.shape for f in frames} == {(256, 256, 3)}
    stack = np.stack([f.image for f in frames]).astype(np.float32)
    mouth = stack[:, 150:230, 80:176]  # the lower face of DreamTalk's crop moves while speaking
    assert float(mouth.std(axis=0).mean()) > 1.0
    assert avatar.models is not None and (avatar.models.peak_memory() or 0) > 0
