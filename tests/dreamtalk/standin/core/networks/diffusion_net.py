"""Stand-in of DreamTalk's ``core/networks/diffusion_net.py``: ``DiffusionNet`` with the same
constructor, attributes (``net``, ``var_sched``), buffers (``null_style_clip``,
``null_pad_mask``) and latent conversion. It has no sampler of its own: lexperience runs its own
DDIM loop over ``net`` and ``var_sched``, as it does with the real DreamTalk."""

from __future__ import annotations

import torch
from torch import nn


class DiffusionNet(nn.Module):
    def __init__(self, cfg: object, net: nn.Module, var_sched: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = net
        self.var_sched = var_sched
        self.face3d_latent_type = cfg.TRAIN.FACE3D_LATENT.TYPE  # type: ignore[attr-defined]
        self.predict_what = cfg.DIFFUSION.PREDICT_WHAT  # type: ignore[attr-defined]
        if cfg.CF_GUIDANCE.TRAINING:  # type: ignore[attr-defined]
            length = cfg.DATASET.STYLE_MAX_LEN  # type: ignore[attr-defined]
            dim = cfg.DATASET.FACE3D_DIM  # type: ignore[attr-defined]
            self.register_buffer("null_style_clip", torch.zeros(length, dim))
            self.register_buffer("null_pad_mask", torch.tensor([False] * length))

    def _latent_to_face3d(self, latent: torch.Tensor) -> torch.Tensor:
        if self.face3d_latent_type != "face3d":
            raise ValueError(f"Invalid face3d latent type: {self.face3d_latent_type}")
        return latent

    def sample(self, *args: object, **kwargs: object) -> torch.Tensor:
        raise NotImplementedError("the stand-in has no sampler")
