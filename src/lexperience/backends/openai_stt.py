"""OpenAI speech to text: ``gpt-4o-mini-transcribe`` (default), ``gpt-4o-transcribe``,
``whisper-1`` or any newer transcription model, through ``audio.transcriptions``.

Models that stream (every ``gpt-*-transcribe``) are called with ``stream=True``: the transcript
arrives as ``transcript.text.delta`` events, handed to ``on_partial`` as they come, then one
``transcript.text.done``. ``whisper-1`` does not stream and is called plainly.

Install with ``pip install "lexperience[openai]"``; the key comes from ``api_key=`` or
``OPENAI_API_KEY``. Any OpenAI-compatible server with a transcription endpoint (vLLM, LocalAI,
speaches) works through ``base_url``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigurationError
from ..media import Audio
from ..transcript import Transcript
from ._cloud import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Secret
from ._openai_common import OpenAIConnection

__all__ = ["OpenAISTT"]

#: Called with each transcript delta as it streams in (may be a coroutine function).
PartialCallback = Callable[[str], Any]

_NON_STREAMING_PREFIXES = ("whisper",)


def _supports_streaming(model: str) -> bool:
    return not model.lower().startswith(_NON_STREAMING_PREFIXES)


class OpenAISTT:
    """Transcribes a clip with the OpenAI transcription API.

    Args:
        model: ``gpt-4o-mini-transcribe`` (default, fast and cheap), ``gpt-4o-transcribe``,
            ``whisper-1``, or a newer model name.
        language: a default ISO 639-1 language hint, used when :meth:`transcribe` is called
            without one (a :class:`Conversation` always passes the persona's language).
        prompt: text that guides spelling and style (names, jargon), sent with every request.
        temperature: sampling temperature (0-1); ``None`` leaves the server default.
        stream: stream the transcript (``None``: when the model supports it, i.e. not whisper).
        on_partial: called with each transcript delta as it streams in; sync or async.
        upload_sample_rate: the audio is resampled to this rate (Hz) before upload, which keeps
            uploads small (the models work at 16 kHz anyway); ``None`` uploads it as it is.
        api_key: the key; default ``OPENAI_API_KEY``. Not needed for a non-OpenAI ``base_url``.
        base_url: an OpenAI-compatible server, e.g. ``http://localhost:8000/v1``; default
            ``OPENAI_BASE_URL`` or api.openai.com.
        timeout: seconds to wait for the next bytes of an answer (default 30).
        max_retries: retries of 408/409/429/5xx and connection errors (the SDK's own).
        extra_body: extra JSON fields merged into the request.
    """

    name = "openai"

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini-transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        stream: bool | None = None,
        on_partial: PartialCallback | None = None,
        upload_sample_rate: int | None = 16_000,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        organization: str | None = None,
        project: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigurationError("model must be a non-empty model name")
        if temperature is not None and not 0.0 <= temperature <= 1.0:
            raise ConfigurationError("temperature must be between 0 and 1")
        if on_partial is not None and not callable(on_partial):
            raise ConfigurationError("on_partial must be callable")
        self.model = model
        self.language = language
        self.prompt = prompt
        self.temperature = temperature
        self.stream = _supports_streaming(model) if stream is None else bool(stream)
        self.on_partial = on_partial
        self.upload_sample_rate = upload_sample_rate
        self.extra_body = dict(extra_body or {})
        self._conn = OpenAIConnection(
            stage="stt",
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            organization=organization,
            project=project,
        )

    def __repr__(self) -> str:
        return f"OpenAISTT(model={self.model!r}, stream={self.stream}, {self._conn!r})"

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._conn.aclose()

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        """Transcribe ``audio``; ``language`` (ISO 639-1) overrides the default hint."""
        lang = language or self.language
        clip = audio
        if self.upload_sample_rate is not None and audio.sample_rate > self.upload_sample_rate:
            clip = audio.resample(self.upload_sample_rate)
        params: dict[str, Any] = {
            "file": ("audio.wav", clip.to_wav_bytes(), "audio/wav"),
            "model": self.model,
            "response_format": "json",
        }
        if lang:
            params["language"] = lang
        if self.prompt:
            params["prompt"] = self.prompt
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.extra_body:
            params["extra_body"] = self.extra_body
        errors = self._conn.errors
        with errors.mapped():
            client = self._conn.client
            if not self.stream:
                result = await client.audio.transcriptions.create(**params)
                text = result if isinstance(result, str) else getattr(result, "text", None)
                if not isinstance(text, str):
                    raise errors.error("the transcription response has no text", retryable=True)
            else:
                text = await self._streamed(client, params)
        return Transcript(text=text.strip(), language=lang, duration=audio.duration)

    async def _streamed(self, client: Any, params: dict[str, Any]) -> str:
        errors = self._conn.errors
        stream = await client.audio.transcriptions.create(**params, stream=True)
        deltas: list[str] = []
        final: str | None = None
        try:
            async for event in stream:
                kind = getattr(event, "type", None)
                if kind == "transcript.text.delta":
                    delta = getattr(event, "delta", "") or ""
                    deltas.append(delta)
                    await self._partial(delta)
                elif kind == "transcript.text.done":
                    final = getattr(event, "text", None)
                elif kind == "error":
                    detail = getattr(event, "message", None) or "error event"
                    raise errors.error(f"transcription failed mid-stream: {detail}", retryable=True)
        finally:
            await stream.close()
        if final is None:
            if not deltas:
                raise errors.error(
                    "the transcription stream ended without a transcript", retryable=True
                )
            final = "".join(deltas)
        return final

    async def _partial(self, delta: str) -> None:
        if self.on_partial is None or not delta:
            return
        result = self.on_partial(delta)
        if inspect.isawaitable(result):
            await result
