"""The PyTorch boundary of the dreamtalk avatar: importing torch, choosing the device and the
precision, and the wav2vec2 audio features (read with ``transformers`` from a local folder)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._optional import require
from ..errors import ConfigurationError

__all__ = ["AudioEncoder", "Wav2Vec2Encoder", "autocast", "resolve_device", "torch_module"]

log = logging.getLogger(__name__)


@runtime_checkable
class AudioEncoder(Protocol):
    """What DreamTalk's content encoder reads: ``dim``-wide audio features at 50 Hz.

    ``encoder(samples)`` takes mono float32 samples at ``sample_rate`` and returns a
    ``(frames, dim)`` array, one row per 20 ms (wav2vec2's hop of 320 samples at 16 kHz).
    """

    sample_rate: int
    dim: int

    def __call__(self, samples: np.ndarray) -> np.ndarray: ...


def torch_module() -> Any:
    """PyTorch, or :class:`MissingDependencyError` naming the ``dreamtalk`` extra."""
    return require("torch", "dreamtalk", feature="the dreamtalk avatar (PyTorch)")


def resolve_device(torch: Any, device: str, fp16: bool | None) -> tuple[str, bool]:
    """``(device, fp16)`` after checking them against this PyTorch build."""
    cuda = bool(torch.cuda.is_available())
    if device == "auto":
        device = "cuda" if cuda else "cpu"
        if not cuda:
            log.warning(
                "dreamtalk: no CUDA GPU is visible to PyTorch; running on the CPU, which is "
                "fine for checking a setup but far too slow for live replies"
            )
    if device.startswith("cuda"):
        if not cuda:
            build = getattr(getattr(torch, "version", None), "cuda", None)
            why = (
                f"this PyTorch ({torch.__version__}) is a CPU-only build: install a CUDA build "
                "(https://pytorch.org/get-started/locally/)"
                if not build
                else f"PyTorch {torch.__version__} (CUDA {build}) finds no usable GPU: check the "
                "driver (nvidia-smi) and CUDA_VISIBLE_DEVICES"
            )
            raise ConfigurationError(f'device="{device}" but {why}; or pass device="cpu"')
        _, _, index = device.partition(":")
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ConfigurationError(
                f'device="{device}": there are {torch.cuda.device_count()} CUDA devices'
            )
    else:
        try:
            torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ConfigurationError(f"device={device!r} is not a PyTorch device: {exc}") from exc
    is_cuda = device.startswith("cuda")
    if fp16 is None:
        fp16 = is_cuda
    elif fp16 and not is_cuda:
        raise ConfigurationError("fp16=True needs a CUDA device; on the CPU it runs in fp32")
    return device, bool(fp16)


class Wav2Vec2Encoder:
    """wav2vec2 features from a local copy of ``jonatasgrosman/wav2vec2-large-xlsr-53-english``
    (read with ``transformers``; never downloaded)."""

    sample_rate = 16_000

    def __init__(self, directory: Path, *, torch: Any, device: str, fp16: bool) -> None:
        directory = Path(directory).expanduser()
        if not (directory / "config.json").is_file():
            raise ConfigurationError(
                f"no wav2vec2 model in {directory} (config.json missing): put a local copy of "
                "jonatasgrosman/wav2vec2-large-xlsr-53-english there, or pass wav2vec2=... "
                "(see docs/backends/dreamtalk.md)"
            )
        weights = ("model.safetensors", "pytorch_model.bin")
        if not any((directory / w).is_file() for w in weights):
            raise ConfigurationError(
                f"{directory} has no wav2vec2 weights ({' or '.join(weights)})"
            )
        transformers = require("transformers", "dreamtalk", feature="wav2vec2 audio features")
        try:
            self._extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(
                str(directory), local_files_only=True
            )
            model = transformers.Wav2Vec2Model.from_pretrained(
                str(directory), local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load wav2vec2 from {directory}: {exc}") from exc
        self._model = model.eval().to(device)
        self._model.requires_grad_(False)
        self._torch = torch
        self._device = device
        self._fp16 = fp16
        self.dim = int(model.config.hidden_size)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        torch = self._torch
        inputs = self._extractor(samples, sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode(), autocast(torch, self._device, self._fp16):
            hidden = self._model(inputs.input_values.to(self._device)).last_hidden_state[0]
        return np.asarray(hidden.float().cpu().numpy(), dtype=np.float32)


def autocast(torch: Any, device: str, fp16: bool) -> Any:
    if not fp16:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.float16)
