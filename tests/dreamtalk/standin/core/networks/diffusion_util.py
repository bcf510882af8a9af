"""Stand-in of DreamTalk's ``core/networks/diffusion_util.py``: ``VarianceSchedule`` and a tiny
``NoisePredictor`` with DreamTalk's constructor, ``forward`` signature, sub-module names and
tensor shapes.

What the stand-in predicts (``x0``, shape ``(B, L, 64)``) is a small learned term plus three
coefficients that tests read back from the rendered frames:

* coefficient 0: the mean of the audio window's centre feature (the frame's own audio);
* coefficient 1: the mean of the style code (so guidance and style caching are visible);
* coefficient 2: the mean of the window's last feature (the right context, so seams are visible).
"""

from __future__ import annotations

import torch
from core.utils import sinusoidal_embedding
from torch import nn


class VarianceSchedule(nn.Module):
    """A linear beta schedule of ``num_steps`` steps; index 0 is the clean sample."""

    def __init__(self, num_steps: int, beta_1: float, beta_T: float, mode: str = "linear") -> None:
        super().__init__()
        assert mode == "linear"
        self.num_steps = num_steps
        betas = torch.cat([torch.zeros(1), torch.linspace(beta_1, beta_T, steps=num_steps)])
        alphas = 1 - betas
        self.register_buffer("betas", betas)
        self.register_buffer("alphas", alphas)
        self.register_buffer("alpha_bars", torch.cumprod(alphas, dim=0))


class StyleEncoder(nn.Module):
    """(B, L, C_exp) style clip + (B, L) padding mask (True = padding) -> (B, D) style code."""

    def __init__(self, d_model: int, input_dim: int) -> None:
        super().__init__()
        self.increase_embed_dim = nn.Linear(input_dim, d_model)
        self.calls = 0  # test instrumentation (not a parameter)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        h = torch.tanh(self.increase_embed_dim(x))
        if pad_mask is None:
            return h.mean(dim=1)
        keep = (~pad_mask).unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)


class ContentEncoder(nn.Module):
    """(B, L, W, 1024) wav2vec windows -> (B, L, W, D)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.increase_embed_dim = nn.Linear(1024, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.increase_embed_dim(x)


class Decoder(nn.Module):
    """(B, L, W, D) content + (B, D) style code -> (B, L, C_exp)."""

    def __init__(self, d_model: int, output_dim: int) -> None:
        super().__init__()
        self.tail_fc = nn.Linear(d_model, output_dim)

    def forward(self, content: torch.Tensor, style_code: torch.Tensor) -> torch.Tensor:
        centre = content[:, :, content.shape[2] // 2, :]
        return 0.01 * torch.tanh(self.tail_fc(centre + style_code[:, None, :]))


class NoisePredictor(nn.Module):
    def __init__(self, cfg: object) -> None:
        super().__init__()
        d = cfg.D_MODEL  # type: ignore[attr-defined]
        face = cfg.DATASET.FACE3D_DIM  # type: ignore[attr-defined]
        self.content_encoder = ContentEncoder(d)
        self.style_encoder = StyleEncoder(d, face)
        self.decoder = Decoder(d, face)
        self.content_xt_to_decoder_input_wo_time = nn.Sequential(
            nn.Linear(d + face, d), nn.ReLU(), nn.Linear(d, d)
        )
        self.time_sinusoidal_dim = d
        self.time_embed_net = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.calls: list[tuple[int, int]] = []  # (batch, frames) per call: test instrumentation

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        audio: torch.Tensor,
        style_clip: torch.Tensor | None,
        style_pad_mask: torch.Tensor | None,
        ready_style_code: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_t (B, L, C_exp), t (B,) float, audio (B, L, W, 1024) -> x0 (B, L, C_exp)."""
        self.calls.append((int(x_t.shape[0]), int(x_t.shape[1])))
        width = audio.shape[2]
        content = self.content_encoder(audio)
        x_t_expand = x_t.unsqueeze(2).repeat(1, 1, width, 1)
        hidden = self.content_xt_to_decoder_input_wo_time(torch.cat((content, x_t_expand), dim=3))
        time = self.time_embed_net(sinusoidal_embedding(t, self.time_sinusoidal_dim))
        hidden = hidden + time[:, None, None, :]
        if ready_style_code is not None:
            style_code = ready_style_code
        else:
            style_code = self.style_encoder(style_clip, style_pad_mask)
        out = self.decoder(hidden, style_code)
        analytic = torch.stack(
            [
                audio[:, :, width // 2, :].mean(-1),
                style_code.mean(-1, keepdim=True).expand(-1, out.shape[1]),
                audio[:, :, -1, :].mean(-1),
            ],
            dim=-1,
        )
        return torch.cat([analytic.to(out.dtype), out[..., 3:]], dim=-1)
