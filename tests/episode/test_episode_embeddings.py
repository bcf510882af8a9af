"""The WordLlama embedder (the semantic extra): offline, quiet, and optional."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lexperience import Episode, InvalidInputError, MissingDependencyError, Segment
from lexperience._optional import is_installed

needs_wordllama = pytest.mark.skipif(
    not is_installed("wordllama"),
    reason='needs the semantic extra: pip install "lexperience[semantic]"',
)


@needs_wordllama
def test_vectors_are_unit_length_and_close_in_meaning() -> None:
    from lexperience.backends.wordllama_embedder import WordLlamaEmbedder

    emb = WordLlamaEmbedder()
    v = emb.embed(
        [
            "the storm drain hums at fifty eight hertz",
            "what pitch does the drain make",
            "my grandmother baked bread on sundays",
            "",
        ]
    )
    assert v.shape == (4, 256) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5)
    assert not v[3].any()  # no token: a zero vector, not NaN
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    assert emb.embed([]).shape == (0, 256)
    assert WordLlamaEmbedder(dim=64).embed(["x y"]).shape == (1, 64)


@needs_wordllama
def test_it_loads_with_no_network_and_leaves_logging_alone(tmp_path) -> None:
    code = (
        "import logging, socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network use is not allowed')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from lexperience.backends.wordllama_embedder import WordLlamaEmbedder\n"
        "v = WordLlamaEmbedder().embed(['hello there'])\n"
        "print(v.shape, logging.getLogger().handlers)\n"
    )
    env = {"HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.strip() == "(1, 256) []"
    )  # no root handler: wordllama's basicConfig was a no-op
    assert not (tmp_path / ".cache").exists()  # nothing downloaded or cached


def test_a_missing_extra_names_the_pip_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wordllama", None)
    ep = Episode(segments=[Segment(start=0, end=1, text="hello")])
    with pytest.raises(MissingDependencyError, match=r'pip install "lexperience\[semantic\]"'):
        ep.use_embeddings()
    assert ep.embedder is None and ep.search("hello", before=5)  # words only, still working


class Letters:
    """A toy embedder: one dimension per letter a-z."""

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def test_any_embedder_can_be_fused_and_switched_off() -> None:
    ep = Episode(
        segments=[
            Segment(start=0, end=2, text="zzz zzz zzz", speaker="A"),
            Segment(start=3, end=5, text="apple banana", speaker="B"),
        ]
    )
    assert ep.search("zz", before=10) == []  # no shared word: words alone find nothing
    ep.use_embeddings(Letters())
    hybrid = ep.search("zz", before=10)
    assert hybrid[0].text == "zzz zzz zzz" and hybrid[0].score > 0
    assert all(p.end <= 1.0 for p in ep.search("zz", before=1.0))  # still cut at the position
    ep.use_embeddings(False)
    assert ep.embedder is None and ep.search("zz", before=10) == []
    with pytest.raises(InvalidInputError, match="not an Embedder"):
        ep.use_embeddings(object())  # type: ignore[arg-type]
