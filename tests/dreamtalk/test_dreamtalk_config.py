"""Configuration and path validation: options, the checkout (finding it, refusing what is not
DreamTalk, importing it without touching the caller's modules), devices, style clips, poses,
and building the backend through the registry."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from dreamtalk_standin import StandinAudioEncoder, StandinSetup, write_pose, write_style

from lexperience import registry
from lexperience.backends._dreamtalk_checkout import Checkout, import_checkout, locate_checkout
from lexperience.backends._dreamtalk_inputs import STILL_POSE, read_pose, read_style_clip
from lexperience.backends._dreamtalk_torch import resolve_device
from lexperience.backends.dreamtalk_avatar import DreamTalkAvatar
from lexperience.conversation import build_backend
from lexperience.errors import ConfigurationError, InvalidInputError, MissingDependencyError
from lexperience.persona import Persona


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ddim_steps": 3}, "do not divide"),
        ({"ddim_steps": 0}, "ddim_steps"),
        ({"cfg_scale": -1.0}, "cfg_scale"),
        ({"face_detector": "mtcnn"}, "face_detector"),
        ({"size": 10}, "size"),
        ({"overlap_frames": -1}, "overlap_frames"),
        ({"render_batch": 0}, "render_batch"),
        ({"flush_after": 0.0}, "flush_after"),
    ],
)
def test_bad_options_are_configuration_errors(
    make_avatar: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_avatar(**options)


def test_a_portrait_is_required(make_avatar: Any) -> None:
    with pytest.raises(ConfigurationError, match="needs a portrait"):
        make_avatar(portrait=None)


def test_a_folder_that_is_not_dreamtalk_is_named_with_what_it_lacks(
    tmp_path: Path, make_avatar: Any
) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "utils.py").write_text("")
    with pytest.raises(ConfigurationError) as info:
        make_avatar(checkout=tmp_path)
    text = str(info.value)
    assert "is not a DreamTalk checkout" in text and "configs/default.py" in text
    assert "core/utils.py" not in text  # it has that one
    with pytest.raises(ConfigurationError, match="not a folder"):
        make_avatar(checkout=tmp_path / "missing")


def test_checkout_from_the_environment_or_sys_path(
    standin: StandinSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DREAMTALK_HOME", str(standin.checkout))
    assert locate_checkout(None).root == standin.checkout
    monkeypatch.delenv("DREAMTALK_HOME")
    monkeypatch.setattr(sys, "path", ["/nonexistent", str(standin.checkout)])
    assert locate_checkout(None).root == standin.checkout  # an "installed" copy
    monkeypatch.setattr(sys, "path", ["/nonexistent"])
    with pytest.raises(ConfigurationError, match="needs a DreamTalk checkout"):
        locate_checkout(None)


def test_importing_the_checkout_leaves_the_callers_modules_alone(standin: StandinSetup) -> None:
    mine = types.ModuleType("core")
    sys.modules["core"] = mine
    try:
        modules = import_checkout(Checkout(standin.checkout))
        assert sys.modules["core"] is mine  # the caller's own "core" is back
        assert "core.networks" not in sys.modules and "configs" not in sys.modules
        assert "dlib" not in sys.modules  # the placeholder is gone too
        assert modules.DiffusionNet.__module__ == "core.networks.diffusion_net"
        assert import_checkout(Checkout(standin.checkout)) is modules  # imported once
    finally:
        del sys.modules["core"]


def test_a_checkout_without_dreamtalks_classes_is_refused(
    standin: StandinSetup, tmp_path: Path
) -> None:
    fake = tmp_path / "fake"
    shutil.copytree(standin.checkout, fake)
    (fake / "generators" / "face_model.py").write_text("class Something:\n    pass\n")
    with pytest.raises(ConfigurationError, match=r"generators\.face_model\.FaceGenerator"):
        import_checkout(Checkout(fake))
    broken = tmp_path / "broken"
    shutil.copytree(standin.checkout, broken)
    (broken / "configs" / "default.py").write_text("import not_a_real_package_xyz\n")
    with pytest.raises(ConfigurationError, match="not_a_real_package_xyz"):
        import_checkout(Checkout(broken))


def test_two_checkouts_in_one_process(standin: StandinSetup, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(standin.checkout, copy)
    a = import_checkout(Checkout(standin.checkout))
    b = import_checkout(Checkout(copy.resolve()))
    assert a.FaceGenerator is not b.FaceGenerator
    assert (
        Path(b.FaceGenerator.forward.__code__.co_filename).resolve().is_relative_to(copy.resolve())
    )


class _FakeCuda:
    def __init__(self, available: bool, count: int = 0) -> None:
        self._available, self._count = available, count

    def is_available(self) -> bool:
        return self._available

    def device_count(self) -> int:
        return self._count


def _fake_torch(available: bool, build: str | None, count: int = 0) -> Any:
    return types.SimpleNamespace(
        cuda=_FakeCuda(available, count),
        version=types.SimpleNamespace(cuda=build),
        __version__="2.13.0",
        device=torch.device,
    )


def test_devices() -> None:
    with pytest.raises(ConfigurationError, match="CPU-only build"):
        resolve_device(_fake_torch(False, None), "cuda", None)
    with pytest.raises(ConfigurationError, match="nvidia-smi"):
        resolve_device(_fake_torch(False, "12.8"), "cuda", None)
    with pytest.raises(ConfigurationError, match="1 CUDA devices"):
        resolve_device(_fake_torch(True, "12.8", 1), "cuda:3", None)
    assert resolve_device(_fake_torch(True, "12.8", 1), "cuda:0", None) == ("cuda:0", True)
    assert resolve_device(_fake_torch(True, "12.8", 1), "auto", False) == ("cuda", False)
    assert resolve_device(_fake_torch(False, None), "auto", None) == ("cpu", False)
    with pytest.raises(ConfigurationError, match="fp16=True needs a CUDA"):
        resolve_device(_fake_torch(False, None), "cpu", True)
    with pytest.raises(ConfigurationError, match="not a PyTorch device"):
        resolve_device(_fake_torch(False, None), "gpu7", None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_device_cuda_without_a_gpu_fails_at_load(make_avatar: Any) -> None:
    avatar = make_avatar(device="cuda")
    with pytest.raises(ConfigurationError, match='device="cuda"'):
        avatar.load()


def test_style_clips(tmp_path: Path) -> None:
    mat = write_style(tmp_path / "style.mat", 30, level=0.5)
    exp = read_style_clip(mat)
    assert exp.shape == (30, 64) and abs(float(exp.mean()) - 0.5) < 0.05
    txt = tmp_path / "style.txt"
    np.savetxt(txt, exp)
    assert np.allclose(read_style_clip(txt), exp, atol=1e-6)
    assert read_style_clip(exp).shape == (30, 64)
    scipy.io.savemat(str(tmp_path / "bad.mat"), {"coeff": np.zeros((5, 100))})
    with pytest.raises(ConfigurationError, match="257 3DMM"):
        read_style_clip(tmp_path / "bad.mat")
    scipy.io.savemat(str(tmp_path / "other.mat"), {"weights": np.zeros(3)})
    with pytest.raises(ConfigurationError, match="not a DreamTalk style clip"):
        read_style_clip(tmp_path / "other.mat")
    (tmp_path / "broken.mat").write_bytes(b"not a mat file")
    with pytest.raises(ConfigurationError, match=r"as a \.mat"):
        read_style_clip(tmp_path / "broken.mat")
    with pytest.raises(ConfigurationError, match="not found"):
        read_style_clip(tmp_path / "none.mat")
    with pytest.raises(ConfigurationError, match="NaN"):
        read_style_clip(np.full((4, 64), np.nan))
    with pytest.raises(ConfigurationError, match=r"\(frames, 64\)"):
        read_style_clip(np.zeros((4, 3)))


def test_poses(tmp_path: Path) -> None:
    pose = read_pose(write_pose(tmp_path / "pose.mat", 12))
    assert pose.shape == (12, 9)
    assert pose[0, 0] == pytest.approx(-0.5) and pose[-1, 0] == pytest.approx(0.5)
    assert pose[0, 6:].tolist() == pytest.approx([0.99, 128.0, 123.5])  # the crop columns
    assert np.array_equal(read_pose("still"), STILL_POSE)
    scipy.io.savemat(str(tmp_path / "nopar.mat"), {"coeff": np.zeros((4, 257))})
    with pytest.raises(ConfigurationError, match="transform_params"):
        read_pose(tmp_path / "nopar.mat")
    (tmp_path / "pose.txt").write_text("0 0 0\n")
    with pytest.raises(ConfigurationError, match=r"\.mat file"):
        read_pose(tmp_path / "pose.txt")


def test_style_and_pose_default_to_the_checkouts_samples(
    standin: StandinSetup, tmp_path: Path, make_avatar: Any
) -> None:
    avatar = make_avatar()
    assert avatar.pose.shape == (40, 9)  # the stand-in's sample pose
    bare = tmp_path / "nodata"
    shutil.copytree(standin.checkout, bare, ignore=shutil.ignore_patterns("data"))
    with pytest.raises(ConfigurationError, match="style_clip="):
        make_avatar(checkout=bare)
    assert make_avatar(checkout=bare, style_clip=standin.style, pose="still").pose.shape == (1, 9)


def test_portrait_errors(make_avatar: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        make_avatar(portrait=tmp_path / "nobody.png")
    with pytest.raises(InvalidInputError, match="no face found"):
        make_avatar(portrait=np.full((300, 300, 3), 128, np.uint8))
    with pytest.raises(InvalidInputError, match="square face crop"):
        make_avatar(portrait=np.full((300, 500, 3), 128, np.uint8), crop=False)


def test_registry_builds_it_by_name_with_the_persona_portrait(
    standin: StandinSetup, tmp_path: Path, astronaut: np.ndarray
) -> None:
    spec = registry.get_spec("avatar", "dreamtalk")
    assert spec.extra == "dreamtalk" and "torch" in spec.requires
    from PIL import Image

    png = tmp_path / "face.png"
    Image.fromarray(astronaut).save(png)
    persona = Persona(name="Test", prompt="A test.", portrait=png)
    options = {
        "checkout": standin.checkout,
        "audio_encoder": StandinAudioEncoder(),
        "device": "cpu",
    }
    avatar = build_backend("avatar", "dreamtalk", persona, options)
    assert isinstance(avatar, DreamTalkAvatar) and avatar.fps == 25.0
    assert avatar.preview().shape == (256, 256, 3)
    with pytest.raises(ConfigurationError, match="it accepts"):
        registry.create("avatar", "dreamtalk", steps=5)


@pytest.mark.parametrize("module", ["torch", "cv2", "scipy"])
def test_a_missing_package_names_the_extra(
    make_avatar: Any, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    from lexperience.backends import dreamtalk_avatar

    monkeypatch.setattr(dreamtalk_avatar, "is_installed", lambda name: name != module)
    with pytest.raises(MissingDependencyError) as info:
        make_avatar()
    assert info.value.module == module
    assert info.value.install_command == 'pip install "lexperience[dreamtalk]"'
