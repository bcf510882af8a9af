"""Stand-in of DreamTalk's ``configs/default.py``: the same configuration keys, tiny networks.

DreamTalk uses a yacs ``CfgNode``; this stand-in has a minimal node with the same attribute
access, ``clone``, ``defrost`` and ``freeze``, so that it needs no yacs.
"""

from __future__ import annotations

import copy
from typing import Any


class CN(dict):  # type: ignore[type-arg]
    """A dict with attribute access, like yacs' CfgNode."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if self.get("_frozen", False):
            raise AttributeError("the config is frozen")
        self[name] = value

    def clone(self) -> CN:
        return copy.deepcopy(self)

    def defrost(self) -> None:
        dict.__setitem__(self, "_frozen", False)

    def freeze(self) -> None:
        dict.__setitem__(self, "_frozen", True)


_C = CN()
_C.WIN_SIZE = 5
_C.D_MODEL = 16  # DreamTalk: 256

_C.DATASET = CN()
_C.DATASET.FACE3D_DIM = 64
_C.DATASET.NUM_FRAMES = 64
_C.DATASET.STYLE_MAX_LEN = 256

_C.TRAIN = CN()
_C.TRAIN.FACE3D_LATENT = CN()
_C.TRAIN.FACE3D_LATENT.TYPE = "face3d"

_C.DIFFUSION = CN()
_C.DIFFUSION.PREDICT_WHAT = "x0"
_C.DIFFUSION.SCHEDULE = CN()
_C.DIFFUSION.SCHEDULE.NUM_STEPS = 1000
_C.DIFFUSION.SCHEDULE.BETA_1 = 1e-4
_C.DIFFUSION.SCHEDULE.BETA_T = 0.02
_C.DIFFUSION.SCHEDULE.MODE = "linear"

_C.CF_GUIDANCE = CN()
_C.CF_GUIDANCE.TRAINING = True
_C.CF_GUIDANCE.INFERENCE = True
_C.CF_GUIDANCE.NULL_PROB = 0.1
_C.CF_GUIDANCE.SCALE = 1.0

_C.INFERENCE = CN()
_C.INFERENCE.CHECKPOINT = "checkpoints/denoising_network.pth"


def get_cfg_defaults() -> CN:
    return _C.clone()
