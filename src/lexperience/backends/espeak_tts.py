"""``espeak``: the espeak-ng formant synthesiser, through ctypes (offline, tiny, robotic)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import numpy as np

from ..errors import ConfigurationError
from ..media import AudioChunk
from ..visemes import phoneme_to_viseme
from . import _espeak
from ._local import Emit, VisemeTrack, check_text, thread_stream

__all__ = ["EspeakTTS"]


class EspeakTTS:
    """espeak-ng speech with exact phoneme timings for lip sync; needs ``lexperience[local]``.

    The voice is robotic but costs almost nothing (about 10 ms of CPU per second of speech) and
    every phoneme comes with its start sample, so the viseme cues on each chunk are exact.

    Args:
        voice: an espeak-ng voice or language code (``"en-us"``, ``"en-gb"``, ``"fr"``, ...).
        language: the language to speak (ISO 639-1, e.g. a persona's ``language``); when
            ``voice`` is not given, the voice is that language's (``"en"`` speaks ``"en-us"``).
        rate: speaking rate in words per minute (80-450).
        speed: a factor on ``rate`` (0.5-2), e.g. a persona's speaking rate.
        pitch: base pitch, 0-100.
        volume: amplitude, 0-200 (100 is normal).
        chunk_seconds: length of the audio chunks yielded (0.05-2 s).
        with_visemes: attach viseme cues to the chunks.

    Limits: 22,050 Hz mono; one synthesis at a time per process (libespeak-ng is global state:
    concurrent streams queue up, each takes milliseconds). Licence: espeak-ng is GPL-3.0.
    """

    name = "espeak"

    def __init__(
        self,
        voice: str | None = None,
        *,
        language: str | None = None,
        rate: int = 165,
        speed: float | None = None,
        pitch: int = 50,
        volume: int = 100,
        chunk_seconds: float = 0.2,
        with_visemes: bool = True,
    ) -> None:
        if voice is None:
            if language is not None and (not isinstance(language, str) or not language.strip()):
                raise ConfigurationError(
                    f"language must be a language code such as 'en', got {language!r}"
                )
            code = (language or "en").strip().lower().replace("_", "-")
            voice = "en-us" if code == "en" else code
        if not isinstance(voice, str) or not voice.strip():
            raise ConfigurationError(
                f"espeak voice must be a voice name such as 'en-us', got {voice!r}"
            )
        if speed is not None and (
            isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.5 <= speed <= 2
        ):
            raise ConfigurationError(f"speed must be a number from 0.5 to 2, got {speed!r}")
        for label, value, low, high in (
            ("rate", rate, 80, 450),
            ("pitch", pitch, 0, 100),
            ("volume", volume, 0, 200),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigurationError(
                    f"espeak {label} must be an integer in {low}-{high}, got {value!r}"
                )
        if not 0.05 <= chunk_seconds <= 2.0:
            raise ConfigurationError(
                f"chunk_seconds must be within 0.05-2 s, got {chunk_seconds!r}"
            )
        self.voice = voice.strip()
        self.language = language
        self.rate = rate if speed is None else min(450, max(80, round(rate * float(speed))))
        self.pitch = pitch
        self.volume = volume
        self.chunk_seconds = float(chunk_seconds)
        self.with_visemes = with_visemes
        self.sample_rate = _espeak.SAMPLE_RATE
        self._checked = False

    def load(self) -> None:
        """Load libespeak-ng and check the voice (blocking; idempotent)."""
        if not self._checked:
            _espeak.check_voice(self.voice)
            self._checked = True

    async def aopen(self) -> None:
        await asyncio.to_thread(self.load)

    async def stream(self, text: str) -> AsyncIterator[AudioChunk]:
        """Speak ``text``, yielding ``chunk_seconds`` chunks as espeak-ng produces them."""
        spoken = check_text(text, backend="espeak")

        def produce(emit: Emit[AudioChunk], stop: threading.Event) -> None:
            self.load()
            rate = self.sample_rate
            step = max(1, round(self.chunk_seconds * rate))
            track = VisemeTrack(rate)
            pending: list[np.ndarray] = []
            buffered = 0
            sent = 0  # samples already emitted

            def flush(upto: int) -> None:
                nonlocal pending, buffered, sent
                joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                block, rest = joined[:upto], joined[upto:]
                pending, buffered = ([rest], rest.shape[0]) if rest.shape[0] else ([], 0)
                cues = track.cues(sent, sent + block.shape[0]) if self.with_visemes else ()
                samples = block.astype(np.float32) / 32768.0
                emit(AudioChunk(samples, rate, text=spoken, visemes=cues))
                sent += block.shape[0]
                track.forget_before(sent)

            def sink(samples: np.ndarray, events: list[_espeak.EspeakEvent]) -> bool:
                nonlocal buffered
                if stop.is_set():
                    return False
                for ev in events:
                    if ev.kind == "phoneme":
                        track.add(ev.sample, phoneme_to_viseme(ev.phoneme))
                    elif ev.kind == "end":
                        track.add(ev.sample, "sil")
                if samples.shape[0]:
                    pending.append(samples)
                    buffered += samples.shape[0]
                while buffered >= step:
                    flush(step)
                return not stop.is_set()

            _espeak.synthesize(
                spoken, voice=self.voice, sink=sink, rate=self.rate, pitch=self.pitch,
                volume=self.volume,
            )  # fmt: skip
            if buffered and not stop.is_set():
                flush(buffered)

        # Closed explicitly, so that closing this generator stops the worker at once.
        async with contextlib.aclosing(thread_stream(produce, name="lexperience-espeak")) as items:
            async for chunk in items:
                yield chunk
