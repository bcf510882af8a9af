"""Reading and checking DreamTalk's two checkpoints before any network is built.

* ``denoising_network.pth``: a dict whose ``model_state_dict`` holds the diffusion network under
  ``diff_net.`` (``diff_net.net.content_encoder...``, ``diff_net.net.style_encoder...``,
  ``diff_net.net.decoder...``, the noise schedule ``diff_net.var_sched...``, the guidance's
  ``diff_net.null_style_clip``);
* ``renderer.pt``: a dict whose ``net_G_ema`` holds the face generator (``mapping_net.``,
  ``warpping_net.``, ``editing_net.``).

:func:`check_denoising` and :func:`check_renderer` look at key prefixes and at the shapes of a few
tensors whose sizes follow from the checkout's configuration (model width, expression size, style
length, schedule length, the 1024-d wav2vec2 features, the renderer's 73 driving coefficients),
so a wrong, swapped, truncated or mismatched file is reported by name before anything is loaded
into a network. Files are opened with ``torch.load(weights_only=True)`` (tensors only, no code
runs) and memory-mapped where the format allows it, so the check reads little of a large file.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "AUDIO_DIM",
    "COEFF_NC",
    "DenoisingLayout",
    "RendererLayout",
    "check_denoising",
    "check_renderer",
    "checkpoint_path",
    "read_checkpoint",
]

#: wav2vec2-large features (DreamTalk's content encoder takes 1024-d inputs).
AUDIO_DIM = 1024
#: The renderer is driven by 64 expression + 9 pose coefficients per frame.
COEFF_NC = 73
_DENOISE_PREFIX = "diff_net."
_RENDER_KEY = "net_G_ema"
_RENDER_PARTS = ("mapping_net.", "warpping_net.", "editing_net.")


@dataclass(frozen=True)
class DenoisingLayout:
    """The tensor sizes a checkout's configuration implies for ``denoising_network.pth``."""

    d_model: int
    face3d_dim: int
    style_max_len: int
    num_steps: int
    guidance: bool = True
    audio_dim: int = AUDIO_DIM

    def expected(self) -> dict[str, tuple[int, ...]]:
        d, face = self.d_model, self.face3d_dim
        shapes = {
            "diff_net.net.content_encoder.increase_embed_dim.weight": (d, self.audio_dim),
            "diff_net.net.style_encoder.increase_embed_dim.weight": (d, face),
            "diff_net.net.content_xt_to_decoder_input_wo_time.0.weight": (d, d + face),
            "diff_net.net.time_embed_net.0.weight": (d, d),
            "diff_net.var_sched.alpha_bars": (self.num_steps + 1,),
        }
        if self.guidance:
            shapes["diff_net.null_style_clip"] = (self.style_max_len, face)
        return shapes


@dataclass(frozen=True)
class RendererLayout:
    """The tensor sizes ``renderer_conf.yaml`` implies for ``renderer.pt``."""

    descriptor_nc: int
    coeff_nc: int = COEFF_NC


def _shape(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


def _prefixes(keys: Any, depth: int = 2) -> str:
    seen = sorted({".".join(str(k).split(".")[:depth]) for k in keys})
    return ", ".join(seen[:8]) + (" ..." if len(seen) > 8 else "") if seen else "none"


def read_checkpoint(path: Path, *, what: str, torch: Any, trust: bool = False) -> Any:
    """``torch.load`` of ``path`` on the CPU: memory-mapped if possible, tensors only unless
    ``trust``. Raises :class:`ConfigurationError` for a missing, unreadable or unsafe file."""
    if not path.is_file():
        raise ConfigurationError(f"the {what} checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise ConfigurationError(f"the {what} checkpoint {path} is empty (0 bytes)")
    load_errors: tuple[type[BaseException], ...] = (
        pickle.UnpicklingError,
        EOFError,
        RuntimeError,
        ValueError,
        OSError,
        AttributeError,
        ImportError,
    )
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=not trust, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # an old (non-zip) torch.save format cannot be memory-mapped: read it whole
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        if not trust and "weights_only" in str(exc).lower().replace(" ", "_"):
            raise ConfigurationError(
                f"the {what} checkpoint {path} holds Python objects besides tensors, which "
                "lexperience does not unpickle by default (unpickling can run code). If you "
                "trust the file (you got it from DreamTalk's authors), pass "
                f"trust_checkpoints=True. ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from exc
        raise ConfigurationError(
            f"the {what} checkpoint {path} is not a PyTorch checkpoint or is corrupt: {exc}"
        ) from exc
    except load_errors as exc:
        raise ConfigurationError(
            f"the {what} checkpoint {path} cannot be read ({type(exc).__name__}: "
            f"{str(exc)[:200]}); is the download complete?"
        ) from exc


def _check_shapes(
    state: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], path: Path, what: str
) -> None:
    for key, shape in expected.items():
        if key not in state:
            raise ConfigurationError(
                f"the {what} checkpoint {path} lacks {key}: it does not match this DreamTalk "
                f"checkout (keys found: {_prefixes(state.keys(), 3)})"
            )
        got = _shape(state[key])
        if got != shape:
            raise ConfigurationError(
                f"the {what} checkpoint {path} does not match this DreamTalk checkout: {key} has "
                f"shape {got}, its configuration needs {shape} (a checkpoint of another model or "
                "version, or a changed configs/default.py)"
            )


def check_denoising(checkpoint: Any, layout: DenoisingLayout, path: Path) -> dict[str, Any]:
    """The diffusion network's state dict (``diff_net.`` stripped) after checking its layout."""
    if not isinstance(checkpoint, Mapping):
        raise ConfigurationError(
            f"{path} is not DreamTalk's denoising_network.pth: it holds a "
            f"{type(checkpoint).__name__}, not a dict with 'model_state_dict'"
        )
    if "model_state_dict" not in checkpoint:
        if _RENDER_KEY in checkpoint:
            raise ConfigurationError(
                f"{path} is a renderer checkpoint (it has '{_RENDER_KEY}'), not "
                "denoising_network.pth: are denoising_checkpoint and renderer_checkpoint swapped?"
            )
        raise ConfigurationError(
            f"{path} is not DreamTalk's denoising_network.pth: no 'model_state_dict' (it has "
            f"{_prefixes(checkpoint.keys(), 1)})"
        )
    state = checkpoint["model_state_dict"]
    if not isinstance(state, Mapping):
        raise ConfigurationError(f"{path}: 'model_state_dict' is not a state dict")
    ours = {k[len(_DENOISE_PREFIX) :]: v for k, v in state.items() if k.startswith(_DENOISE_PREFIX)}
    if not ours:
        raise ConfigurationError(
            f"{path} is not DreamTalk's denoising_network.pth: none of its keys start with "
            f"'{_DENOISE_PREFIX}' (found: {_prefixes(state.keys())})"
        )
    if not any(k.startswith("net.decoder.") for k in ours):
        raise ConfigurationError(f"{path} has no diff_net.net.decoder.* weights: it is incomplete")
    _check_shapes(state, layout.expected(), path, "denoising")
    return ours


def check_renderer(checkpoint: Any, layout: RendererLayout, path: Path) -> dict[str, Any]:
    """The face generator's state dict (``net_G_ema``) after checking its layout."""
    if not isinstance(checkpoint, Mapping) or _RENDER_KEY not in checkpoint:
        if isinstance(checkpoint, Mapping) and "model_state_dict" in checkpoint:
            raise ConfigurationError(
                f"{path} is a denoising checkpoint (it has 'model_state_dict'), not renderer.pt: "
                "are denoising_checkpoint and renderer_checkpoint swapped?"
            )
        found = _prefixes(checkpoint.keys(), 1) if isinstance(checkpoint, Mapping) else "no dict"
        raise ConfigurationError(
            f"{path} is not DreamTalk's renderer.pt: no '{_RENDER_KEY}' (found: {found})"
        )
    state = checkpoint[_RENDER_KEY]
    if not isinstance(state, Mapping):
        raise ConfigurationError(f"{path}: '{_RENDER_KEY}' is not a state dict")
    lacking = [p.rstrip(".") for p in _RENDER_PARTS if not any(k.startswith(p) for k in state)]
    if lacking:
        raise ConfigurationError(
            f"{path} is not DreamTalk's renderer.pt: it has no {', '.join(lacking)} weights "
            f"(found: {_prefixes(state.keys(), 1)})"
        )
    key = "mapping_net.first.0.weight"
    got = _shape(state.get(key))
    if got is None or len(got) != 3 or got[:2] != (layout.descriptor_nc, layout.coeff_nc):
        raise ConfigurationError(
            f"{path} does not match this DreamTalk checkout: {key} has shape {got}, "
            f"renderer_conf.yaml needs ({layout.descriptor_nc}, {layout.coeff_nc}, k)"
        )
    return dict(state)


def checkpoint_path(value: str | os.PathLike[str] | None, default: Path, option: str) -> Path:
    """``value`` or ``default``, checked to be a file (:class:`ConfigurationError` otherwise)."""
    path = Path(value).expanduser() if value is not None else default
    if not path.is_file():
        hint = "" if value is not None else f" (the default; pass {option}=... to use another)"
        raise ConfigurationError(
            f"DreamTalk checkpoint not found: {path}{hint}. DreamTalk's authors give the "
            "checkpoints out by request for research use; see docs/backends/dreamtalk.md"
        )
    return path
