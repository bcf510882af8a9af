"""DreamTalk's networks on one device: loaded once, shared, and driven chunk by chunk.

:class:`Models` builds the checkout's ``DiffusionNet`` and ``FaceGenerator`` from the checked
checkpoints, moves them to the device and exposes the three steps of a chunk: wav2vec2 features,
the DDIM sampling of expression coefficients, and rendering. Every avatar with the same checkout,
checkpoints, device and precision shares one :class:`Models` (a weak cache: the networks are freed
when the last avatar using them is gone).

The DDIM loop is lexperience's own, over the checkout's noise predictor and noise schedule: the
same timesteps, x0-prediction update and classifier-free guidance as DreamTalk's sampler
(``uncond + scale * (cond - uncond)``), but the style code is computed once per style clip and
passed as ``ready_style_code``, guidance is skipped entirely at ``cfg_scale == 1.0`` (it would
give the conditional prediction again at twice the cost), the starting noise is given per frame,
and a stop flag is checked between steps. On CUDA the networks run under fp16 autocast.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import weakref
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import BackendError, ConfigurationError, LexperienceError
from ._dreamtalk_checkout import CheckoutModules
from ._dreamtalk_checkpoints import (
    AUDIO_DIM,
    COEFF_NC,
    DenoisingLayout,
    RendererLayout,
    check_denoising,
    check_renderer,
    read_checkpoint,
)
from ._dreamtalk_timeline import ddim_timesteps
from ._dreamtalk_torch import AudioEncoder, autocast, torch_module

__all__ = ["ModelKey", "Models", "Stopped", "get_models"]

log = logging.getLogger(__name__)

_CACHE = 8  # style codes / portrait tensors kept per Models


class Stopped(Exception):
    """The reply was abandoned: the worker stops at the next step."""


@dataclass(frozen=True)
class ModelKey:
    """What makes two avatars' networks the same (file identity includes size and mtime)."""

    checkout: Path
    denoising: tuple[str, int, int]
    renderer: tuple[str, int, int]
    encoder: str
    device: str
    fp16: bool

    @staticmethod
    def file(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return str(path.resolve()), st.st_size, st.st_mtime_ns


class Models:
    """DreamTalk's networks, checked and loaded on ``device`` (see the module docstring)."""

    def __init__(
        self,
        modules: CheckoutModules,
        *,
        denoising: Path,
        renderer: Path,
        renderer_conf: Path,
        encoder: Callable[[], AudioEncoder],
        device: str,
        fp16: bool,
        trust: bool = False,
    ) -> None:
        torch = torch_module()
        self.torch = torch
        self.device = device
        self.fp16 = fp16
        self.lock = threading.Lock()  # one chunk step at a time on the device
        self.counts: Counter[str] = Counter()  # calls per step: features, sample, render, ...
        self.seconds: defaultdict[str, float] = defaultdict(float)  # wall seconds per step
        cfg = modules.get_cfg_defaults()
        try:
            layout = DenoisingLayout(
                d_model=int(cfg.D_MODEL),
                face3d_dim=int(cfg.DATASET.FACE3D_DIM),
                style_max_len=int(cfg.DATASET.STYLE_MAX_LEN),
                num_steps=int(cfg.DIFFUSION.SCHEDULE.NUM_STEPS),
                guidance=bool(cfg.CF_GUIDANCE.TRAINING),
            )
            predict = str(cfg.DIFFUSION.PREDICT_WHAT)
            self.win = int(cfg.WIN_SIZE)
            schedule = cfg.DIFFUSION.SCHEDULE
        except AttributeError as exc:
            raise ConfigurationError(
                f"the checkout's configs/default.py lacks a DreamTalk setting: {exc}"
            ) from exc
        if predict != "x0":
            raise ConfigurationError(
                f"the checkout's configuration predicts {predict!r}; DreamTalk's DDIM sampler "
                "(and lexperience's) needs an x0-predicting network"
            )
        self.layout = layout
        self.num_steps = layout.num_steps
        self.face3d_dim = layout.face3d_dim
        self.guidance = layout.guidance
        diff_state = check_denoising(
            read_checkpoint(denoising, what="denoising", torch=torch, trust=trust),
            layout,
            denoising,
        )
        conf = _renderer_conf(renderer_conf)
        render_state = check_renderer(
            read_checkpoint(renderer, what="renderer", torch=torch, trust=trust),
            RendererLayout(descriptor_nc=int(conf["mapping_net"]["descriptor_nc"])),
            renderer,
        )
        try:
            net = modules.NoisePredictor(cfg)
            sched = modules.VarianceSchedule(
                num_steps=int(schedule.NUM_STEPS),
                beta_1=float(schedule.BETA_1),
                beta_T=float(schedule.BETA_T),
                mode=str(schedule.MODE),
            )
            self.diff_net = modules.DiffusionNet(cfg=cfg, net=net, var_sched=sched)
            self.renderer = modules.FaceGenerator(**conf)
        except Exception as exc:
            raise ConfigurationError(f"building DreamTalk's networks failed: {exc}") from exc
        try:
            self.diff_net.load_state_dict(diff_state, strict=True)
        except RuntimeError as exc:
            raise ConfigurationError(
                f"{denoising} does not fit the checkout's network: {exc}"
            ) from exc
        result = self.renderer.load_state_dict(render_state, strict=False)
        if result.missing_keys:
            raise ConfigurationError(
                f"{renderer} lacks {len(result.missing_keys)} weights of the checkout's renderer "
                f"(e.g. {', '.join(result.missing_keys[:3])})"
            )
        del diff_state, render_state
        for module in (self.diff_net, self.renderer):
            module.to(device).eval()
            module.requires_grad_(False)
        self.alpha_bars = self.diff_net.var_sched.alpha_bars.detach().double().cpu().numpy()
        self.encoder = encoder()
        dim = int(getattr(self.encoder, "dim", AUDIO_DIM))
        if dim != layout.audio_dim:
            raise ConfigurationError(
                f"the audio features are {dim}-dimensional; DreamTalk's content encoder needs "
                f"{layout.audio_dim} (wav2vec2-large-xlsr-53-english)"
            )
        self._codes: OrderedDict[str, Any] = OrderedDict()
        self._sources: OrderedDict[str, Any] = OrderedDict()
        self._null: Any = None
        log.info("dreamtalk: networks loaded on %s (fp16=%s)", device, fp16)

    # -- errors ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        self.counts[step] += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] += time.perf_counter() - start

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Inference mode, autocast, and DreamTalk's failures as :class:`BackendError`."""
        torch = self.torch
        oom = tuple(
            t
            for t in (
                getattr(torch, "OutOfMemoryError", None),
                getattr(torch.cuda, "OutOfMemoryError", None),
            )
            if isinstance(t, type)
        )
        try:
            with torch.inference_mode(), autocast(torch, self.device, self.fp16):
                yield
        except (Stopped, LexperienceError):
            raise
        except Exception as exc:
            text = str(exc).lower()
            if (oom and isinstance(exc, oom)) or "out of memory" in text:
                if self.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                raise BackendError(
                    f"the GPU ran out of memory while {what}. Use fewer DDIM steps "
                    "(ddim_steps=5), fp16=True, a smaller render_batch, shorter chunks "
                    "(max_chunk_seconds), or free GPU memory used by other processes",
                    backend="dreamtalk",
                    stage="avatar",
                    retryable=False,
                ) from exc
            if "can't allocate memory" in text:  # the CPU allocator
                raise BackendError(
                    f"out of memory while {what} on the CPU: use shorter chunks "
                    "(max_chunk_seconds) or a smaller render_batch",
                    backend="dreamtalk",
                    stage="avatar",
                    retryable=False,
                ) from exc
            raise BackendError(
                f"DreamTalk failed while {what}: {type(exc).__name__}: {exc}",
                backend="dreamtalk",
                stage="avatar",
                retryable=False,
            ) from exc

    # -- per style clip and per portrait, cached ----------------------------------------------
    def _tensor(self, array: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def style_code(self, key: str, clip: np.ndarray, mask: np.ndarray) -> Any:
        """The style code ``(1, D)`` of a prepared style clip, computed once per ``key``."""
        code = self._codes.get(key)
        if code is not None:
            self._codes.move_to_end(key)
            return code
        with self.guard("encoding the style clip"):
            code = self.diff_net.net.style_encoder(
                self._tensor(clip[None]), self._tensor(mask[None])
            )
        self.counts["style_code"] += 1
        self._codes[key] = code
        while len(self._codes) > _CACHE:
            self._codes.popitem(last=False)
        return code

    def null_code(self) -> Any:
        """The unconditional style code of classifier-free guidance (computed once)."""
        if self._null is None:
            if not self.guidance:
                raise ConfigurationError(
                    "this checkout's network was not trained for classifier-free guidance "
                    "(CF_GUIDANCE.TRAINING is off): use cfg_scale=1.0"
                )
            with self.guard("encoding the null style"):
                clip = self.diff_net.null_style_clip.unsqueeze(0)
                mask = self.diff_net.null_pad_mask.unsqueeze(0)
                self._null = self.diff_net.net.style_encoder(clip, mask)
        return self._null

    def source(self, key: str, crop: np.ndarray) -> Any:
        """The portrait as the renderer's input ``(1, 3, 256, 256)`` in [-1, 1], once per ``key``."""
        tensor = self._sources.get(key)
        if tensor is not None:
            self._sources.move_to_end(key)
            return tensor
        image = crop.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        tensor = self._tensor(image)
        self.counts["source"] += 1
        self._sources[key] = tensor
        while len(self._sources) > _CACHE:
            self._sources.popitem(last=False)
        return tensor

    # -- one chunk ------------------------------------------------------------------------------
    def features(self, samples: np.ndarray) -> np.ndarray:
        """50 Hz audio features of mono ``samples`` at the encoder's rate."""
        with self._timed("features"), self.guard("computing wav2vec2 features"):
            feats = np.asarray(self.encoder(samples), dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.layout.audio_dim:
            raise BackendError(
                f"the audio encoder returned shape {feats.shape}; expected (frames, "
                f"{self.layout.audio_dim})",
                backend="dreamtalk",
                stage="avatar",
            )
        return feats

    def sample(
        self,
        windows: np.ndarray,
        noise: np.ndarray,
        code: Any,
        *,
        steps: int,
        cfg_scale: float,
        stop: threading.Event | None = None,
    ) -> np.ndarray:
        """Expression coefficients ``(n, 64)`` for ``n`` frames' audio windows ``(n, W, C)``,
        sampled with ``steps`` DDIM steps from ``noise`` ``(n, 64)``."""
        torch = self.torch
        n = int(windows.shape[0])
        timesteps = ddim_timesteps(self.num_steps, steps)
        previous = np.concatenate([[0], timesteps[:-1]])
        guided = cfg_scale != 1.0
        with self._timed("sample"), self.guard(f"sampling {n} frames"):
            audio = self._tensor(windows[None])
            x = self._tensor(noise[None]).float()
            codes = code
            if guided:
                audio = torch.cat([audio, audio], dim=0)
                codes = torch.cat([code, self.null_code()], dim=0)
            for i in reversed(range(steps)):
                if stop is not None and stop.is_set():
                    raise Stopped
                t, t_prev = int(timesteps[i]), int(previous[i])
                a, a_prev = float(self.alpha_bars[t]), float(self.alpha_bars[t_prev])
                batch = 2 if guided else 1
                t_in = torch.full((batch,), float(t), device=self.device)
                x_in = torch.cat([x, x], dim=0) if guided else x
                out = self.diff_net.net(
                    x_in, t=t_in, audio=audio, style_clip=None, style_pad_mask=None,
                    ready_style_code=codes,
                ).float()  # fmt: skip
                if guided:
                    cond, uncond = out.chunk(2)
                    x0 = uncond + cfg_scale * (cond - uncond)
                else:
                    x0 = out
                eps = (x - math.sqrt(a) * x0) / math.sqrt(1.0 - a)
                x = math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps
            face = self.diff_net._latent_to_face3d(x)
            return np.asarray(face[0].float().cpu().numpy(), dtype=np.float32)

    def render(self, source: Any, driving: np.ndarray) -> np.ndarray:
        """Frames ``(n, 256, 256, 3)`` uint8 RGB for driving windows ``(n, 73, 27)``."""
        torch = self.torch
        n = int(driving.shape[0])
        if driving.shape[1] != COEFF_NC:
            raise ValueError(f"driving coefficients must be (n, {COEFF_NC}, window)")
        with self._timed("render"), self.guard(f"rendering {n} frames"):
            out = self.renderer(source.expand(n, -1, -1, -1), self._tensor(driving))["fake_image"]
            pixels = ((out.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
            return np.ascontiguousarray(pixels.permute(0, 2, 3, 1).cpu().numpy())

    def peak_memory(self, reset: bool = False) -> int | None:
        """Peak bytes allocated on the CUDA device (``None`` elsewhere)."""
        if not self.device.startswith("cuda"):
            return None
        cuda = self.torch.cuda
        peak = int(cuda.max_memory_allocated(self.device))
        if reset:
            cuda.reset_peak_memory_stats(self.device)
        return peak


def _renderer_conf(path: Path) -> dict[str, Any]:
    yaml = require("yaml", "dreamtalk", feature="reading DreamTalk's renderer_conf.yaml")
    try:
        conf = yaml.safe_load(path.read_text())
        descriptor = conf["mapping_net"]["descriptor_nc"]
        coeff = conf["mapping_net"]["coeff_nc"]
    except (OSError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{path} is not DreamTalk's renderer configuration: {exc}"
        ) from exc
    if int(coeff) != COEFF_NC or not isinstance(descriptor, int):
        raise ConfigurationError(
            f"{path}: the renderer takes {coeff} coefficients per frame; lexperience drives it "
            f"with DreamTalk's {COEFF_NC} (64 expression + 9 pose)"
        )
    return dict(conf)


_models: weakref.WeakValueDictionary[ModelKey, Models] = weakref.WeakValueDictionary()
_models_lock = threading.Lock()


def get_models(key: ModelKey, build: Callable[[], Models]) -> Models:
    """The shared :class:`Models` for ``key``, built once (concurrent callers wait for it)."""
    with _models_lock:
        models = _models.get(key)
        if models is None:
            models = build()
            _models[key] = models
        return models
