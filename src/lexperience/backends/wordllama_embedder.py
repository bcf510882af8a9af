"""``wordllama``: static word embeddings bundled in the ``wordllama`` wheel, for semantic search
in episodes (offline; needs ``pip install "lexperience[semantic]"``).

WordLlama (MIT) ships its 256-dimension ``l2_supercat`` model (16 MB) inside the wheel. An
embedding is the mean of token vectors: no neural network runs at query time, so embedding a
question takes ~0.1 ms and a 3-hour episode's passages ~50 ms on one core. Nothing is
downloaded: the model is loaded from the package folder with downloads disabled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import ConfigurationError

__all__ = ["WordLlamaEmbedder"]

log = logging.getLogger(__name__)


def _import_wordllama() -> Any:
    """Import wordllama without letting it configure the root logger.

    ``wordllama.inference`` calls ``logging.basicConfig(level=INFO)`` at import, which would
    make every library's INFO messages appear in the user's program; with a handler already on
    the root logger that call does nothing, so one is held there during the import.
    """
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        return require("wordllama", "semantic", feature="semantic search in episodes")
    finally:
        root.removeHandler(placeholder)


class WordLlamaEmbedder:
    """Unit-length sentence vectors from WordLlama's bundled model.

    Args:
        dim: vector size; the bundled model has 256 (smaller sizes truncate it: 64, 128).
    """

    name = "wordllama"

    def __init__(self, *, dim: int = 256) -> None:
        if dim not in (64, 128, 256):
            raise ConfigurationError(f"dim must be 64, 128 or 256, got {dim!r}")
        self.dim = dim
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the bundled model once (about 0.5 s)."""
        with self._lock:
            if self._model is None:
                wordllama = _import_wordllama()
                folder = Path(wordllama.__file__).parent
                # The wheel holds weights/ and tokenizers/; as a "cache dir" the package folder
                # lets WordLlama find both, with downloads off.
                try:
                    self._model = wordllama.WordLlama.load(
                        cache_dir=folder,
                        dim=256,
                        trunc_dim=None if self.dim == 256 else self.dim,
                        disable_download=True,
                    )
                except (FileNotFoundError, ValueError, OSError) as exc:
                    raise ConfigurationError(
                        f"the WordLlama model bundled in {folder} cannot be loaded ({exc}); "
                        'reinstall it with pip install --force-reinstall "lexperience[semantic]"'
                    ) from exc
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A ``(len(texts), dim)`` float32 array of L2-normalised rows (zero rows for texts
        with no known token)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.load()
        vectors = np.asarray(model.embed(list(texts), norm=False), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out = np.zeros_like(vectors)
        np.divide(vectors, norms, out=out, where=norms > 0)
        return out
