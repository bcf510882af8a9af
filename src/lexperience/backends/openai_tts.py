"""OpenAI text to speech, streamed as raw 24 kHz PCM through ``audio.speech``.

The request asks for ``response_format="pcm"`` (24 kHz, signed 16-bit little-endian, mono) and the
body is read as it arrives, so the first :class:`AudioChunk` is yielded while the rest of the
sentence is still being synthesised. Install with ``pip install "lexperience[openai]"``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..media import AudioChunk
from ._cloud import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ConnectOptions, Secret, retry_stream
from ._openai_common import OpenAIBackend, OpenAIConnection

__all__ = ["ConnectOptions", "OpenAITTS", "pcm16_to_float"]

log = logging.getLogger(__name__)

PCM_RATE = 24_000


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Signed 16-bit little-endian PCM bytes (an even count) to float32 in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class OpenAITTS(OpenAIBackend):
    """Speaks text with an OpenAI voice, streamed.

    Args:
        voice: a built-in voice (``alloy``, ``ash``, ``ballad``, ``coral``, ``echo``, ``fable``,
            ``nova``, ``onyx``, ``sage``, ``shimmer``, ``verse``, ``marin``, ``cedar``) or a custom
            voice id (``voice_...``). A :class:`Conversation` passes the persona's
            ``voices["openai"]``.
        model: ``gpt-4o-mini-tts`` (default; follows ``instructions``), ``tts-1``, ``tts-1-hd``.
        instructions: how to speak (tone, pace, accent); gpt-4o-mini-tts only.
        speed: 0.25 to 4.0; ``None`` for the default 1.0.
        chunk_seconds: the size of the chunks yielded (the network decides when they arrive).
        api_key / base_url / send_env_key / timeout / max_retries / conn_options / organization /
            project / extra_body: as for :class:`OpenAILLM` (a failure is retried before the
            first chunk only).
    """

    sample_rate: int = PCM_RATE

    def __init__(
        self,
        *,
        voice: str = "alloy",
        model: str = "gpt-4o-mini-tts",
        instructions: str | None = None,
        speed: float | None = None,
        chunk_seconds: float = 0.1,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        send_env_key: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        conn_options: ConnectOptions | None = None,
        organization: str | None = None,
        project: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not voice or not isinstance(voice, str):
            raise ConfigurationError("voice must be a voice name or id")
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise ConfigurationError("speed must be between 0.25 and 4.0")
        if not 0.01 <= chunk_seconds <= 5.0:
            raise ConfigurationError("chunk_seconds must be between 0.01 and 5")
        self.voice = voice
        self.model = model
        self.instructions = instructions
        self.speed = speed
        self.chunk_seconds = chunk_seconds
        self.extra_body = dict(extra_body or {})
        self._conn = OpenAIConnection(
            stage="tts",
            api_key=api_key,
            base_url=base_url,
            send_env_key=send_env_key,
            timeout=timeout,
            max_retries=max_retries,
            conn_options=conn_options,
            organization=organization,
            project=project,
        )

    def __repr__(self) -> str:
        return f"OpenAITTS(voice={self.voice!r}, model={self.model!r}, {self._conn!r})"

    def stream(self, text: str) -> AsyncIterator[AudioChunk]:
        """Yield the speech for ``text`` in ~``chunk_seconds`` chunks as the body streams in."""
        return retry_stream(
            lambda: self._speech(text),
            mapper=self._conn.errors,
            options=self._conn.options,
            what="speech stream",
        )

    async def _speech(self, text: str) -> AsyncIterator[AudioChunk]:
        voice: Any = {"id": self.voice} if self.voice.startswith("voice_") else self.voice
        params: dict[str, Any] = {
            "model": self.model,
            "voice": voice,
            "input": text,
            "response_format": "pcm",
        }
        if self.instructions:
            params["instructions"] = self.instructions
        if self.speed is not None:
            params["speed"] = self.speed
        if self.extra_body:
            params["extra_body"] = self.extra_body
        chunk_bytes = max(2, int(self.chunk_seconds * PCM_RATE) * 2)
        errors = self._conn.errors
        received = 0
        with errors.mapped():
            speech = self._conn.client.audio.speech.with_streaming_response
            async with speech.create(**params) as response:
                content_type = str(response.headers.get("content-type", ""))
                if content_type.startswith(("application/json", "text/")):
                    body = await response.read()
                    raise errors.error(
                        f"expected PCM audio, got {content_type}: {body[:200]!r}", retryable=True
                    )
                pending = b""
                async for data in response.iter_bytes(chunk_bytes):
                    received += len(data)
                    pending += data
                    usable = len(pending) - (len(pending) % 2)
                    if usable == 0:
                        continue
                    block, pending = pending[:usable], pending[usable:]
                    yield AudioChunk(pcm16_to_float(block), PCM_RATE, text=text)
        if received < 2:
            raise errors.error(f"no audio came back for {text[:60]!r}", retryable=True)
        log.debug(
            "openai tts: %.2f s of audio for %d characters", received / 2 / PCM_RATE, len(text)
        )
