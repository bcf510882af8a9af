"""Voice activity detection: the :class:`VAD` contract and :class:`SileroVAD`.

Silero VAD (MIT) runs through onnxruntime on 32 ms frames of 16 kHz audio. Its ONNX weights come
inside the ``faster-whisper`` wheel (``faster_whisper/assets/silero_vad_v6.onnx``), which the
``live`` and ``local`` extras install together with onnxruntime; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._optional import require
from ..errors import ConfigurationError

__all__ = ["VAD", "SileroVAD", "bundled_silero_model"]

log = logging.getLogger(__name__)

_CONTEXT = 64  # samples of the previous frame the model sees before each 512-sample frame


@runtime_checkable
class VAD(Protocol):
    """A streaming voice activity detector.

    ``sample_rate`` and ``frame_samples`` fix its input; :meth:`probabilities` takes a whole
    number of frames (in stream order, the model keeps state between calls) and returns one
    speech probability per frame; :meth:`reset` forgets the state. It is called from a worker
    thread, one call at a time.
    """

    sample_rate: int
    frame_samples: int

    def probabilities(self, frames: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def bundled_silero_model() -> Path:
    """The Silero VAD ONNX file shipped inside the ``faster-whisper`` wheel."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        require("faster_whisper", "live", feature="the Silero voice activity detector")
        raise ConfigurationError("faster_whisper has no package folder")  # pragma: no cover
    assets = Path(next(iter(spec.submodule_search_locations))) / "assets"
    found = sorted(assets.glob("silero_vad*.onnx"))
    if not found:
        raise ConfigurationError(
            f"no silero_vad*.onnx in {assets}: this faster-whisper version does not ship the "
            'Silero VAD model; install faster-whisper==1.2.1 (pip install "lexperience[live]") '
            "or pass SileroVAD(model=PATH)"
        )
    return found[-1]


class SileroVAD:
    """Silero VAD on onnxruntime (CPU, one thread): about 0.1 ms per 32 ms frame.

    Args:
        model: path of a Silero VAD ONNX file (v5/v6 interface: ``input``, ``h``, ``c``);
            default: the one inside the ``faster-whisper`` wheel.
    """

    sample_rate = 16_000
    frame_samples = 512

    def __init__(self, model: str | Path | None = None) -> None:
        ort = require("onnxruntime", "live", feature="the Silero voice activity detector")
        path = Path(model) if model is not None else bundled_silero_model()
        if not path.is_file():
            raise ConfigurationError(f"Silero VAD model not found: {path}")
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        try:
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigurationError(f"cannot load the Silero VAD model {path}: {exc}") from exc
        names = {i.name for i in self._session.get_inputs()}
        if not {"input", "h", "c"} <= names:
            raise ConfigurationError(
                f"{path} is not a Silero VAD v5/v6 model (inputs {sorted(names)})"
            )
        self.path = path
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._h = np.zeros((1, 1, 128), dtype=np.float32)
            self._c = np.zeros((1, 1, 128), dtype=np.float32)
            self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Speech probability of each 512-sample frame of ``frames`` (float32 at 16 kHz)."""
        x = np.asarray(frames, dtype=np.float32).reshape(-1)
        n = x.shape[0] // self.frame_samples
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        rows = x[: n * self.frame_samples].reshape(n, self.frame_samples)
        with self._lock:
            contexts = np.empty((n, _CONTEXT), dtype=np.float32)
            contexts[0] = self._context
            if n > 1:
                contexts[1:] = rows[:-1, -_CONTEXT:]
            batch = np.ascontiguousarray(np.concatenate([contexts, rows], axis=1))
            # the model carries its state across the rows of one call (frames in order)
            probs, self._h, self._c = self._session.run(
                None, {"input": batch, "h": self._h, "c": self._c}
            )
            self._context = rows[-1, -_CONTEXT:].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1)[:n]
