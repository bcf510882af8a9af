"""Checkpoint checks on small synthetic state dicts (right and wrong key layouts), reading
files safely, and the backend refusing a wrong checkpoint before it builds any network."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from dreamtalk_standin import StandinSetup

from lexperience.backends._dreamtalk_checkpoints import (
    DenoisingLayout,
    RendererLayout,
    check_denoising,
    check_renderer,
    read_checkpoint,
)
from lexperience.errors import ConfigurationError

LAYOUT = DenoisingLayout(d_model=8, face3d_dim=64, style_max_len=16, num_steps=1000)
P = Path("denoising_network.pth")


def _denoising_state(d: int = 8) -> dict[str, Any]:
    t = torch.zeros
    return {
        "diff_net.net.content_encoder.increase_embed_dim.weight": t(d, 1024),
        "diff_net.net.style_encoder.increase_embed_dim.weight": t(d, 64),
        "diff_net.net.content_xt_to_decoder_input_wo_time.0.weight": t(d, d + 64),
        "diff_net.net.time_embed_net.0.weight": t(d, d),
        "diff_net.net.decoder.tail_fc.weight": t(64, d),
        "diff_net.var_sched.alpha_bars": t(1001),
        "diff_net.null_style_clip": t(16, 64),
        "diff_net.null_pad_mask": torch.zeros(16, dtype=torch.bool),
    }


def _renderer_state(descriptor: int = 8) -> dict[str, Any]:
    return {
        "mapping_net.first.0.weight": torch.zeros(descriptor, 73, 7),
        "warpping_net.flow_out.0.weight": torch.zeros(2, 3, 3, 3),
        "editing_net.encoder.0.weight": torch.zeros(3, 6, 1, 1),
    }


def test_a_right_denoising_layout_passes_with_the_prefix_stripped() -> None:
    state = check_denoising({"model_state_dict": _denoising_state(), "epoch": 3}, LAYOUT, P)
    assert "net.decoder.tail_fc.weight" in state and "null_style_clip" in state
    assert not any(k.startswith("diff_net.") for k in state)


def test_shapes_only_need_a_shape_attribute() -> None:
    arrays = {k: np.zeros(tuple(v.shape)) for k, v in _denoising_state().items()}
    assert check_denoising({"model_state_dict": arrays}, LAYOUT, P)


@pytest.mark.parametrize(
    ("checkpoint", "message"),
    [
        ([1, 2], "not a dict"),
        ({"state_dict": {}}, "no 'model_state_dict'"),
        ({"net_G_ema": _renderer_state()}, "swapped"),
        ({"model_state_dict": {"net.decoder.x": torch.zeros(1)}}, "start with 'diff_net.'"),
        (
            {
                "model_state_dict": {
                    k: v for k, v in _denoising_state().items() if "decoder" not in k
                }
            },
            "no diff_net.net.decoder",
        ),
        (
            {
                "model_state_dict": {
                    k: v for k, v in _denoising_state().items() if "time_embed" not in k
                }
            },
            "lacks diff_net.net.time_embed_net.0.weight",
        ),
    ],
)
def test_wrong_denoising_layouts_are_named(checkpoint: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_denoising(checkpoint, LAYOUT, P)


def test_a_checkpoint_of_another_width_is_reported_with_both_shapes() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_denoising({"model_state_dict": _denoising_state(d=16)}, LAYOUT, P)
    text = str(info.value)
    assert "content_encoder.increase_embed_dim.weight" in text
    assert "(16, 1024)" in text and "(8, 1024)" in text


def test_guidance_buffers_are_only_required_when_the_config_trains_guidance() -> None:
    state = {k: v for k, v in _denoising_state().items() if "null" not in k}
    with pytest.raises(ConfigurationError, match="null_style_clip"):
        check_denoising({"model_state_dict": state}, LAYOUT, P)
    no_guidance = DenoisingLayout(8, 64, 16, 1000, guidance=False)
    assert check_denoising({"model_state_dict": state}, no_guidance, P)


def test_renderer_layouts() -> None:
    layout = RendererLayout(descriptor_nc=8)
    state = check_renderer({"net_G_ema": _renderer_state(), "net_G": {}}, layout, Path("r.pt"))
    assert set(state) == set(_renderer_state())
    with pytest.raises(ConfigurationError, match="swapped"):
        check_renderer({"model_state_dict": _denoising_state()}, layout, Path("r.pt"))
    with pytest.raises(ConfigurationError, match="no 'net_G_ema'"):
        check_renderer({"net_G": _renderer_state()}, layout, Path("r.pt"))
    partial = {k: v for k, v in _renderer_state().items() if not k.startswith("editing")}
    with pytest.raises(ConfigurationError, match="no editing_net weights"):
        check_renderer({"net_G_ema": partial}, layout, Path("r.pt"))
    with pytest.raises(ConfigurationError, match=r"\(8, 73, k\)"):
        check_renderer({"net_G_ema": _renderer_state(descriptor=256)}, layout, Path("r.pt"))


class _Opaque:
    """Something torch's weights-only loader refuses (any class that is not a tensor)."""

    def __init__(self) -> None:
        self.value = 1


def test_reading_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        read_checkpoint(tmp_path / "none.pth", what="denoising", torch=torch)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="empty"):
        read_checkpoint(empty, what="denoising", torch=torch)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"<html>404 not found</html>" * 10)
    with pytest.raises(ConfigurationError, match=r"junk\.pth"):
        read_checkpoint(junk, what="denoising", torch=torch)
    truncated = tmp_path / "truncated.pth"
    torch.save({"model_state_dict": _denoising_state()}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ConfigurationError, match=r"truncated\.pth"):
        read_checkpoint(truncated, what="denoising", torch=torch)


def test_python_objects_need_trust(tmp_path: Path) -> None:
    path = tmp_path / "objects.pth"
    torch.save({"model_state_dict": _denoising_state(), "meta": _Opaque()}, path)
    with pytest.raises(ConfigurationError, match="trust_checkpoints=True"):
        read_checkpoint(path, what="denoising", torch=torch)
    loaded = read_checkpoint(path, what="denoising", torch=torch, trust=True)
    assert isinstance(loaded["meta"], _Opaque)


def test_old_format_files_are_read_without_memory_mapping(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    state = collections.OrderedDict(_denoising_state())
    torch.save({"model_state_dict": state}, path, _use_new_zipfile_serialization=False)
    loaded = read_checkpoint(path, what="denoising", torch=torch)
    assert check_denoising(loaded, LAYOUT, path)


def test_the_backend_refuses_a_wrong_checkpoint_before_building_networks(
    standin: StandinSetup, tmp_path: Path, make_avatar: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lexperience.backends import _dreamtalk_checkout

    built: list[str] = []
    real = _dreamtalk_checkout.import_checkout

    def spying(checkout: Any) -> Any:
        modules = real(checkout)

        def noise_predictor(cfg: Any) -> Any:
            built.append("NoisePredictor")
            return modules.NoisePredictor(cfg)

        return type(modules)(**{**modules.__dict__, "NoisePredictor": noise_predictor})

    monkeypatch.setattr("lexperience.backends.dreamtalk_avatar.import_checkout", spying)
    # the two files swapped
    avatar = make_avatar(
        denoising_checkpoint=standin.renderer, renderer_checkpoint=standin.denoising
    )
    with pytest.raises(ConfigurationError, match="swapped"):
        avatar.load()
    # a denoising network of another width (a different model)
    other = tmp_path / "other.pth"
    ckpt = torch.load(standin.denoising, weights_only=True)
    key = "diff_net.net.content_encoder.increase_embed_dim.weight"
    ckpt["model_state_dict"][key] = torch.zeros(32, 1024)
    torch.save(ckpt, other)
    with pytest.raises(ConfigurationError, match=r"\(32, 1024\)"):
        make_avatar(denoising_checkpoint=other).load()
    assert built == []  # refused before any network was built
    # the right files load
    make_avatar().load()
    assert built == ["NoisePredictor"]


def test_missing_checkpoints_are_named_at_construction(
    standin: StandinSetup, tmp_path: Path, make_avatar: Any
) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(standin.checkout, bare, ignore=shutil.ignore_patterns("checkpoints"))
    with pytest.raises(ConfigurationError, match=r"denoising_network\.pth.*denoising_checkpoint="):
        make_avatar(checkout=bare)
    with pytest.raises(ConfigurationError, match=r"renderer\.pt"):
        make_avatar(checkout=bare, denoising_checkpoint=standin.denoising)
    with pytest.raises(ConfigurationError, match=r"nowhere\.pth"):
        make_avatar(denoising_checkpoint=tmp_path / "nowhere.pth")
