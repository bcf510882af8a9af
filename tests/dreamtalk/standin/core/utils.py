"""Stand-in of DreamTalk's ``core/utils.py``.

Like the real one it imports dlib at the top (DreamTalk crops portraits with dlib), so importing
the networks needs dlib unless the caller provides a placeholder: lexperience does.
"""

from __future__ import annotations

import dlib  # noqa: F401  (imported at the top, as in DreamTalk)
import torch


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) -> (B, dim) sinusoidal embedding of the diffusion step."""
    half = dim // 2
    timesteps = timesteps.float()
    freqs = torch.pow(10000, -torch.arange(half).to(timesteps).div(half))
    angles = torch.outer(timesteps, freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
