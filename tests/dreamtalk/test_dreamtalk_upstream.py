"""Opt-in: the backend against the REAL DreamTalk code (a clone of github.com/ali-vilab/dreamtalk)
with randomly initialised weights, so no checkpoints are needed.

    LEXPERIENCE_DREAMTALK_UPSTREAM=/path/to/dreamtalk pytest -m slow tests/dreamtalk

It checks that lexperience's DDIM loop (cached style code, guidance skipped at scale 1.0) gives
what DreamTalk's own ``DiffusionNet.sample(sample_method="ddim")`` gives from the same noise, with
and without guidance, and runs the real networks end to end through ``animate`` on the CPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from dreamtalk_standin import StandinAudioEncoder
from dreamtalk_support import RATE, chunks_of, collect, tone

from lexperience.backends._dreamtalk_checkout import Checkout, import_checkout
from lexperience.backends._dreamtalk_inputs import style_inputs
from lexperience.backends.dreamtalk_avatar import DreamTalkAvatar

UPSTREAM = os.environ.get("LEXPERIENCE_DREAMTALK_UPSTREAM")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not UPSTREAM, reason="set LEXPERIENCE_DREAMTALK_UPSTREAM to a DreamTalk clone to run"
    ),
]


@pytest.fixture(scope="module")
def random_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    assert UPSTREAM
    root = Path(UPSTREAM).resolve()
    modules = import_checkout(Checkout(root))
    cfg = modules.get_cfg_defaults()
    torch.manual_seed(0)
    sched = cfg.DIFFUSION.SCHEDULE
    diff = modules.DiffusionNet(
        cfg=cfg,
        net=modules.NoisePredictor(cfg),
        var_sched=modules.VarianceSchedule(
            num_steps=sched.NUM_STEPS, beta_1=sched.BETA_1, beta_T=sched.BETA_T, mode=sched.MODE
        ),
    )
    conf = yaml.safe_load((root / "generators" / "renderer_conf.yaml").read_text())
    renderer = modules.FaceGenerator(**conf)
    folder = tmp_path_factory.mktemp("random-dreamtalk")
    denoising, render = folder / "denoising_network.pth", folder / "renderer.pt"
    state = {f"diff_net.{k}": v for k, v in diff.state_dict().items()}
    torch.save({"model_state_dict": state}, denoising)
    torch.save({"net_G_ema": renderer.state_dict()}, render)
    return denoising, render


def _avatar(ckpt: tuple[Path, Path], astronaut: np.ndarray, **kw: Any) -> DreamTalkAvatar:
    return DreamTalkAvatar(
        checkout=UPSTREAM, portrait=astronaut, denoising_checkpoint=ckpt[0],
        renderer_checkpoint=ckpt[1], audio_encoder=StandinAudioEncoder(), device="cpu", **kw,
    )  # fmt: skip


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_our_ddim_loop_matches_dreamtalks_sampler(
    random_checkpoints: tuple[Path, Path], astronaut: np.ndarray, scale: float
) -> None:
    avatar = _avatar(random_checkpoints, astronaut, cfg_scale=scale, ddim_steps=5)
    avatar.load()
    models = avatar.models
    assert models is not None
    rng = np.random.default_rng(1)
    windows = rng.standard_normal((6, 11, 1024)).astype(np.float32)
    clip, mask = style_inputs(avatar._style, 256)
    torch.manual_seed(3)
    noise = torch.randn([1, 6, 64]).numpy()[0]
    ours = models.sample(windows, noise, avatar._code, steps=5, cfg_scale=scale)
    torch.manual_seed(3)  # DreamTalk draws its starting noise first, from the global generator
    with torch.no_grad():
        theirs = models.diff_net.sample(
            torch.from_numpy(windows)[None], torch.from_numpy(clip)[None],
            torch.from_numpy(mask)[None], output_dim=64, use_cf_guidance=True, cfg_scale=scale,
            sample_method="ddim", ddim_num_step=5,
        )[0].numpy()  # fmt: skip
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


async def test_the_real_networks_end_to_end(
    random_checkpoints: tuple[Path, Path], astronaut: np.ndarray
) -> None:
    avatar = _avatar(random_checkpoints, astronaut, ddim_steps=2, render_batch=4)
    frames = await collect(avatar, chunks_of(tone(0.24), RATE, size=1920))
    assert [f.index for f in frames] == list(range(6))
    assert {f.image.shape for f in frames} == {(256, 256, 3)}
