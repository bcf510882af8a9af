"""Stand-in of DreamTalk's ``generators/face_model.py`` (a PIRenderer-style face generator):
``FaceGenerator`` with the same constructor (the sections of ``renderer_conf.yaml``), sub-module
names (``mapping_net``, ``warpping_net``, ``editing_net``) and ``forward`` shapes.

Its ``fake_image`` is the source image (plus a tiny learned term) with four horizontal stripes at
the top that show the driving coefficients of the window's centre frame, so tests can read them
back: rows 8k..8k+7 show coefficient ``STRIPES[k]`` as a grey level ((v + 1) / 2 * 255).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Driving coefficients shown in the stripes: audio, style, right context, first pose angle.
STRIPES = (0, 1, 2, 64)
STRIPE_ROWS = 8


class MappingNet(nn.Module):
    def __init__(self, coeff_nc: int, descriptor_nc: int, layer: int) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Conv1d(coeff_nc, descriptor_nc, kernel_size=7))
        self.pooling = nn.AdaptiveAvgPool1d(1)

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        return self.pooling(self.first(coeffs))


class WarpingNet(nn.Module):
    def __init__(self, image_nc: int, descriptor_nc: int, base_nc: int, max_nc: int,
                 encoder_layer: int, decoder_layer: int, use_spect: bool) -> None:  # fmt: skip
        super().__init__()
        self.flow_out = nn.Sequential(nn.Conv2d(image_nc, 2, kernel_size=3, padding=1))

    def forward(self, image: torch.Tensor, descriptor: torch.Tensor) -> dict[str, torch.Tensor]:
        flow = self.flow_out(F.avg_pool2d(image, 4)) * 0.0
        return {"flow_field": flow, "warp_image": image + flow.mean()}


class EditingNet(nn.Module):
    def __init__(self, image_nc: int, descriptor_nc: int, layer: int, base_nc: int, max_nc: int,
                 num_res_blocks: int, use_spect: bool) -> None:  # fmt: skip
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(2 * image_nc, image_nc, kernel_size=1))

    def forward(
        self, image: torch.Tensor, warp: torch.Tensor, descriptor: torch.Tensor
    ) -> torch.Tensor:
        small = 0.002 * torch.tanh(self.encoder(torch.cat([image, warp], 1)) + descriptor.mean())
        return image + small


class FaceGenerator(nn.Module):
    def __init__(
        self, mapping_net: dict, warpping_net: dict, editing_net: dict, common: dict
    ) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.mapping_net = MappingNet(**mapping_net)
        self.warpping_net = WarpingNet(**warpping_net, **common)
        self.editing_net = EditingNet(**editing_net, **common)

    def forward(self, input_image: torch.Tensor, driving_source: torch.Tensor,
                stage: str | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """input_image (B, 3, 256, 256) in [-1, 1], driving_source (B, 73, 27)."""
        assert input_image.shape[1:] == (3, 256, 256), input_image.shape
        assert driving_source.shape[1:] == (73, 27), driving_source.shape
        descriptor = self.mapping_net(driving_source)
        output = self.warpping_net(input_image, descriptor)
        fake = self.editing_net(input_image, output["warp_image"], descriptor).clone()
        centre = driving_source.shape[2] // 2
        for k, index in enumerate(STRIPES):
            value = driving_source[:, index, centre].clamp(-1, 1).to(fake.dtype)
            fake[:, :, k * STRIPE_ROWS : (k + 1) * STRIPE_ROWS, :] = value[:, None, None, None]
        output["fake_image"] = fake
        return output
