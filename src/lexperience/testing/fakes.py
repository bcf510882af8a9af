"""Scripted stand-ins for every protocol, with configurable latency and failures.

Use them in your own tests to exercise a :class:`~lexperience.Conversation`, a UI or a server
without models or network. They are deterministic: the same arguments give the same output.
Each fake counts the streams it has open in ``active`` so a test can check that an interrupted
turn left nothing running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

import numpy as np

from ..errors import BackendError
from ..framing import AudioFramer
from ..media import Audio, AudioChunk, VideoFrame
from ..messages import Message
from ..transcript import Transcript, Word
from ..visemes import VISEME_OPENNESS, VisemeCue, char_to_viseme

__all__ = ["FakeAvatar", "FakeLLM", "FakeSTT", "FakeStreamingSTT", "FakeTTS", "speech_like"]


def _maybe_fail(error: BaseException | None) -> None:
    if error is not None:
        raise error


class FakeSTT:
    """Returns ``text`` (or ``text(audio)``) after ``latency`` seconds, or raises ``error``."""

    name = "fake"

    def __init__(
        self,
        text: str | Callable[[Audio], str] = "What is a black hole?",
        *,
        latency: float = 0.0,
        error: BaseException | None = None,
        language: str = "en",
    ) -> None:
        self.text = text
        self.latency = latency
        self.error = error
        self.language = language
        self.calls: list[Audio] = []

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        self.calls.append(audio)
        await asyncio.sleep(self.latency)
        _maybe_fail(self.error)
        text = self.text(audio) if callable(self.text) else self.text
        words = text.split()
        step = audio.duration / max(1, len(words))
        return Transcript(
            text=text,
            language=language or self.language,
            duration=audio.duration,
            words=tuple(
                Word(text=w, start=i * step, end=(i + 1) * step) for i, w in enumerate(words)
            ),
        )


class FakeStreamingSTT(FakeSTT):
    """A :class:`FakeSTT` that also streams (a :class:`~lexperience.protocols.StreamingSTT`): it
    yields the transcript word by word, ``word_interval`` seconds apart, then the
    :class:`Transcript`."""

    def __init__(
        self,
        text: str | Callable[[Audio], str] = "What is a black hole?",
        *,
        word_interval: float = 0.0,
        **kwargs: object,
    ) -> None:
        super().__init__(text, **kwargs)  # type: ignore[arg-type]
        self.word_interval = word_interval

    async def transcribe_stream(
        self, audio: Audio, *, language: str | None = None
    ) -> AsyncIterator[str | Transcript]:
        transcript = await self.transcribe(audio, language=language)
        for i, word in enumerate(transcript.text.split(" ")):
            await asyncio.sleep(self.word_interval)
            yield word if i == 0 else " " + word
        yield transcript


class FakeLLM:
    """Streams ``reply`` word by word.

    Args:
        reply: the text, or a function of the messages returning it. The default echoes the
            user's last message, which makes cross-talk between conversations easy to detect.
        first_token_latency: seconds before the first word.
        token_interval: seconds between words.
        fail_after: raise ``error`` after this many words (``None``: never).
        error: the exception to raise (default: a retryable :class:`BackendError`).
    """

    name = "fake"

    def __init__(
        self,
        reply: str | Callable[[Sequence[Message]], str] | None = None,
        *,
        first_token_latency: float = 0.0,
        token_interval: float = 0.0,
        fail_after: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.reply = reply
        self.first_token_latency = first_token_latency
        self.token_interval = token_interval
        self.fail_after = fail_after
        self.error = error or BackendError("scripted failure", backend="fake", retryable=True)
        self.calls: list[list[Message]] = []
        self.active = 0
        self.tokens_sent = 0

    def _text(self, messages: Sequence[Message]) -> str:
        if callable(self.reply):
            return self.reply(messages)
        if self.reply is not None:
            return self.reply
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return f"You asked: {last.rstrip('?.! ')}. That is a fine question. Here is my answer."

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        self.active += 1
        try:
            await asyncio.sleep(self.first_token_latency)
            words = self._text(messages).split(" ")
            if max_tokens is not None:
                words = words[:max_tokens]
            for i, word in enumerate(words):
                if self.fail_after is not None and i >= self.fail_after:
                    raise self.error
                if i:
                    await asyncio.sleep(self.token_interval)
                self.tokens_sent += 1
                yield word if i == 0 else " " + word
        finally:
            self.active -= 1


_VOWELS = frozenset({"aa", "E", "ih", "oh", "ou"})


def speech_like(
    text: str, sample_rate: int, seconds_per_char: float = 0.06
) -> tuple[np.ndarray, list[VisemeCue]]:
    """A deterministic voice-like signal for ``text`` (a voiced tone per word with syllable-rate
    loudness changes and pauses between words) and the matching viseme cues: like real speech,
    open vowels are loud and closed consonants quiet (each letter's loudness follows how far its
    viseme opens the mouth)."""
    rng = np.random.default_rng(len(text))
    parts: list[np.ndarray] = []
    cues: list[VisemeCue] = []
    t = 0.0
    gap = int(0.08 * sample_rate)
    for word in text.split():
        n = max(int(len(word) * seconds_per_char * sample_rate), gap)
        tt = np.arange(n) / sample_rate
        f0 = 110 + 40 * rng.random()
        voiced = sum(np.sin(2 * np.pi * f0 * k * tt) / k for k in range(1, 6))
        envelope = np.sin(np.pi * np.arange(n) / n) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * tt))
        visemes = [char_to_viseme(ch) for ch in word]
        # Vowels last longer than consonants, as in speech (the word's length stays the same).
        weights = np.array([1.6 if v in _VOWELS else 0.7 for v in visemes])
        edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * (n / sample_rate)
        gains = np.array([0.05 + 0.95 * VISEME_OPENNESS.get(v, 0.5) for v in visemes])
        letter = np.clip(np.searchsorted(edges, tt, side="right") - 1, 0, len(word) - 1)
        ramp = max(1, int(0.01 * sample_rate))  # 10 ms glides between letters, no clicks
        gain = np.convolve(gains[letter], np.ones(ramp) / ramp, mode="same")
        parts.append((0.25 * voiced * np.abs(envelope) * gain).astype(np.float32))
        for i, v in enumerate(visemes):
            cues.append(VisemeCue(t + float(edges[i]), t + float(edges[i + 1]), v))
        t += n / sample_rate
        parts.append(np.zeros(gap, dtype=np.float32))
        cues.append(VisemeCue(t, t + gap / sample_rate, "sil"))
        t += gap / sample_rate
    if not parts:
        return np.zeros(0, dtype=np.float32), []
    return np.concatenate(parts), cues


class FakeTTS:
    """Speaks any text as :func:`speech_like` tones, in ``chunk_seconds`` chunks.

    Args:
        sample_rate: output rate in Hz.
        seconds_per_char: speaking speed.
        first_chunk_latency: seconds before the first chunk of each sentence.
        realtime_factor: seconds of work per second of audio (0.25 = four times real time).
        fail_on: raise ``error`` when the text contains this substring.
        with_visemes: attach character-derived viseme cues to the chunks.
    """

    name = "fake"

    def __init__(
        self,
        *,
        sample_rate: int = 16_000,
        seconds_per_char: float = 0.06,
        chunk_seconds: float = 0.2,
        first_chunk_latency: float = 0.0,
        realtime_factor: float = 0.0,
        fail_on: str | None = None,
        error: BaseException | None = None,
        with_visemes: bool = True,
    ) -> None:
        self.sample_rate = sample_rate
        self.seconds_per_char = seconds_per_char
        self.chunk_seconds = chunk_seconds
        self.first_chunk_latency = first_chunk_latency
        self.realtime_factor = realtime_factor
        self.fail_on = fail_on
        self.error = error or BackendError("scripted TTS failure", backend="fake")
        self.with_visemes = with_visemes
        self.texts: list[str] = []
        self.active = 0

    async def stream(self, text: str) -> AsyncIterator[AudioChunk]:
        self.texts.append(text)
        self.active += 1
        try:
            await asyncio.sleep(self.first_chunk_latency)
            if self.fail_on is not None and self.fail_on in text:
                raise self.error
            samples, cues = speech_like(text, self.sample_rate, self.seconds_per_char)
            step = max(1, int(self.chunk_seconds * self.sample_rate))
            for start in range(0, samples.shape[0], step):
                block = samples[start : start + step]
                t0, t1 = start / self.sample_rate, (start + block.shape[0]) / self.sample_rate
                mine = tuple(
                    VisemeCue(max(c.start, t0) - t0, min(c.end, t1) - t0, c.viseme)
                    for c in cues
                    if c.end > t0 and c.start < t1
                ) if self.with_visemes else ()  # fmt: skip
                if start and self.realtime_factor:
                    await asyncio.sleep(block.shape[0] / self.sample_rate * self.realtime_factor)
                yield AudioChunk(block, self.sample_rate, text=text, visemes=mine)
        finally:
            self.active -= 1


class FakeAvatar:
    """Emits ``fps`` frames per second of audio: a grey square whose brightness follows loudness.

    The frame count over a whole stream is ``round(audio_seconds * fps)`` exactly, the contract
    every avatar keeps.
    """

    name = "fake"

    def __init__(
        self,
        *,
        fps: float = 25.0,
        size: tuple[int, int] = (64, 64),
        realtime_factor: float = 0.0,
        error_after_frames: int | None = None,
    ) -> None:
        self.fps = fps
        self.size = size
        self.realtime_factor = realtime_factor
        self.error_after_frames = error_after_frames
        self.active = 0

    def _frame(self, samples: np.ndarray, index: int) -> VideoFrame:
        level = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
        value = int(min(255, 30 + level * 900))
        image = np.full((self.size[1], self.size[0], 3), value, dtype=np.uint8)
        return VideoFrame(image, index, self.fps)

    async def animate(self, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[VideoFrame]:
        self.active += 1
        try:
            framer = AudioFramer(self.fps)
            async for chunk in audio:
                for index, samples in framer.push(chunk):
                    if self.error_after_frames is not None and index >= self.error_after_frames:
                        raise BackendError("scripted avatar failure", backend="fake")
                    if self.realtime_factor:
                        await asyncio.sleep(self.realtime_factor / self.fps)
                    yield self._frame(samples, index)
            for index, samples in framer.finish():
                yield self._frame(samples, index)
        finally:
            self.active -= 1
