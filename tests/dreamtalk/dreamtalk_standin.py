"""Builds a STAND-IN DreamTalk setup for tests and for ``benchmarks/dreamtalk.py --standin``.

:func:`build_standin` copies ``tests/dreamtalk/standin`` (a fake DreamTalk checkout: DreamTalk's
layout, class names, call signatures and tensor shapes; tiny networks whose outputs are simple
functions of their inputs) into a folder and writes what DreamTalk's authors would give out and
the checkout's ``data/`` would hold: ``checkpoints/denoising_network.pth`` and
``checkpoints/renderer.pt`` (random weights of the stand-in networks, in DreamTalk's key layout),
a style clip and a pose ``.mat``. :class:`StandinAudioEncoder` stands in for wav2vec2.

None of this is DreamTalk; it lets the real backend code run end to end on a CPU.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STANDIN = Path(__file__).resolve().parent / "standin"
#: Rows of the stand-in renderer's stripes (see standin/generators/face_model.py).
STRIPE_ROWS = 8
STRIPES = ("audio", "style", "right_context", "pose")


@dataclass(frozen=True)
class StandinSetup:
    checkout: Path
    denoising: Path
    renderer: Path
    style: Path
    pose: Path


class StandinAudioEncoder:
    """STAND-IN for wav2vec2 (tests only): 50 Hz, 1024-d features; every channel of feature ``j``
    is the RMS of the 400 samples from ``320 * j`` (wav2vec2's receptive field and hop)."""

    sample_rate = 16_000
    dim = 1024

    def __init__(self) -> None:
        self.calls: list[int] = []  # samples per call

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        self.calls.append(int(samples.shape[0]))
        n = max(1, (samples.shape[0] - 400) // 320 + 1)
        index = np.arange(n)[:, None] * 320 + np.arange(400)[None, :]
        padded = np.pad(samples, (0, max(0, int(index.max()) + 1 - samples.shape[0])))
        rms = np.sqrt(np.mean(padded[index].astype(np.float64) ** 2, axis=1))
        return np.repeat(rms[:, None], self.dim, axis=1).astype(np.float32)


def stripes(image: np.ndarray) -> np.ndarray:
    """The four values the stand-in renderer shows at the top of a frame (256x256 frames)."""
    rows = [image[k * STRIPE_ROWS : (k + 1) * STRIPE_ROWS].astype(np.float64) for k in range(4)]
    return np.array([r.mean() / 127.5 - 1.0 for r in rows])


def write_style(path: Path, frames: int, *, seed: int = 1, level: float = 0.3) -> Path:
    import scipy.io

    rng = np.random.default_rng(seed)
    coeff = rng.normal(0.0, 0.05, (frames, 257)).astype(np.float32)
    coeff[:, 80:144] += level
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"coeff": coeff})
    return path


def write_pose(path: Path, frames: int) -> Path:
    import scipy.io

    coeff = np.zeros((frames, 257), dtype=np.float32)
    coeff[:, 224] = np.linspace(-0.5, 0.5, frames)  # the first angle ramps: visible in a stripe
    coeff[:, 254:257] = [0.01, -0.02, 0.3]
    params = np.tile([256.0, 256.0, 0.99, 128.0, 123.5], (frames, 1)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"coeff": coeff, "transform_params": params})
    return path


def build_standin(
    dest: Path, *, seed: int = 0, style_frames: int = 94, pose_frames: int = 40
) -> StandinSetup:
    """Write a complete stand-in setup under ``dest`` (see the module docstring)."""
    import torch
    import yaml

    from lexperience.backends._dreamtalk_checkout import Checkout, import_checkout

    root = dest / "dreamtalk-standin"
    shutil.copytree(STANDIN, root, ignore=shutil.ignore_patterns("__pycache__"))
    modules = import_checkout(Checkout(root.resolve()))
    cfg = modules.get_cfg_defaults()
    torch.manual_seed(seed)
    sched = cfg.DIFFUSION.SCHEDULE
    diff = modules.DiffusionNet(
        cfg=cfg,
        net=modules.NoisePredictor(cfg),
        var_sched=modules.VarianceSchedule(sched.NUM_STEPS, sched.BETA_1, sched.BETA_T, sched.MODE),
    )
    conf = yaml.safe_load((root / "generators" / "renderer_conf.yaml").read_text())
    renderer = modules.FaceGenerator(**conf)
    ckpt = root / "checkpoints"
    ckpt.mkdir(exist_ok=True)
    denoising, render = ckpt / "denoising_network.pth", ckpt / "renderer.pt"
    state = {f"diff_net.{k}": v for k, v in diff.state_dict().items()}
    torch.save({"model_state_dict": state, "epoch": 1}, denoising)
    torch.save({"net_G_ema": renderer.state_dict(), "net_G": renderer.state_dict()}, render)
    style = write_style(
        root / "data/style_clip/3DMM/M030_front_neutral_level1_001.mat", style_frames
    )
    pose = write_pose(root / "data/pose/RichardShelby_front_neutral_level1_001.mat", pose_frames)
    return StandinSetup(root.resolve(), denoising, render, style, pose)


def clear_checkout(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
