"""OpenAI speech to text: ``gpt-4o-mini-transcribe`` (default), ``gpt-4o-transcribe``,
``whisper-1`` or any newer transcription model, through ``audio.transcriptions``.

Models that stream (every ``gpt-*-transcribe``) are called with ``stream=True``: the transcript
arrives as ``transcript.text.delta`` events, then one ``transcript.text.done``.
:meth:`OpenAISTT.transcribe_stream` yields the deltas as they come (the pipeline turns them into
``PartialTranscript`` events: this backend is a :class:`~lexperience.protocols.StreamingSTT`);
``on_partial`` is called with each one too. ``whisper-1`` does not stream and is called plainly.

Install with ``pip install "lexperience[openai]"``; the key comes from ``api_key=`` or
``OPENAI_API_KEY``. Any OpenAI-compatible server with a transcription endpoint (vLLM, LocalAI,
speaches) works through ``base_url``.

The clip is resampled and encoded as a WAV before the upload; for anything but a tiny clip that
CPU work (about 30 ms per second of 48 kHz audio) runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import Any

from ..errors import ConfigurationError
from ..media import Audio
from ..transcript import Transcript
from ._cloud import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ConnectOptions,
    Secret,
    retry,
    retry_stream,
)
from ._openai_common import OpenAIBackend, OpenAIConnection
from ._openai_sse import sse_events

__all__ = ["ConnectOptions", "OpenAISTT"]

log = logging.getLogger(__name__)

#: Clips of at most this many samples are prepared on the event loop (a few ms at most);
#: longer ones in a worker thread.
INLINE_MAX_SAMPLES = 4_000

#: Called with each transcript delta as it streams in (may be a coroutine function).
PartialCallback = Callable[[str], Any]

_NON_STREAMING_PREFIXES = ("whisper",)


def _supports_streaming(model: str) -> bool:
    return not model.lower().startswith(_NON_STREAMING_PREFIXES)


class OpenAISTT(OpenAIBackend):
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
        api_key: the key; default ``OPENAI_API_KEY`` (see ``send_env_key``).
        base_url: an OpenAI-compatible server, e.g. ``http://localhost:8000/v1``; default
            ``OPENAI_BASE_URL`` or api.openai.com.
        send_env_key: send ``OPENAI_API_KEY`` to a ``base_url=`` that is not OpenAI's (by
            default it goes only to api.openai.com or to a server named by ``OPENAI_BASE_URL``).
        timeout: seconds to wait for the next bytes of an answer (default 30).
        max_retries: retries of 408/409/429/5xx, timeouts and connection errors, before the
            first transcript delta.
        conn_options: a :class:`ConnectOptions` instead of ``timeout``/``max_retries`` (also sets
            the back-off).
        organization / project: OpenAI organisation and project ids.
        extra_body: extra JSON fields merged into the request.
    """

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
        send_env_key: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        conn_options: ConnectOptions | None = None,
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
            send_env_key=send_env_key,
            timeout=timeout,
            max_retries=max_retries,
            conn_options=conn_options,
            organization=organization,
            project=project,
        )

    def __repr__(self) -> str:
        return f"OpenAISTT(model={self.model!r}, stream={self.stream}, {self._conn!r})"

    def _wav(self, audio: Audio) -> bytes:
        """The upload: ``audio`` at ``upload_sample_rate`` (if lower) as a 16-bit WAV."""
        clip = audio
        if self.upload_sample_rate is not None and audio.sample_rate > self.upload_sample_rate:
            clip = audio.resample(self.upload_sample_rate)
        return clip.to_wav_bytes()

    async def _params(self, audio: Audio, language: str | None) -> dict[str, Any]:
        lang = language or self.language
        if audio.samples.size > INLINE_MAX_SAMPLES:
            wav = await asyncio.to_thread(self._wav, audio)
        else:
            wav = self._wav(audio)
        params: dict[str, Any] = {
            "file": ("audio.wav", wav, "audio/wav"),
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
        return params

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        """Transcribe ``audio``; ``language`` (ISO 639-1) overrides the default hint."""
        final: Transcript | None = None
        async for item in self.transcribe_stream(audio, language=language):
            if isinstance(item, Transcript):
                final = item
        assert final is not None  # transcribe_stream always ends with one
        return final

    async def transcribe_stream(
        self, audio: Audio, *, language: str | None = None
    ) -> AsyncIterator[str | Transcript]:
        """Yield the transcript's text deltas as they arrive (streaming models), then the
        :class:`Transcript`. A retryable failure is retried only before the first delta."""
        lang = language or self.language
        started = time.perf_counter()
        params = await self._params(audio, language)
        errors = self._conn.errors
        if not self.stream:

            async def once() -> str:
                result = await self._conn.client.audio.transcriptions.create(**params)
                text = result if isinstance(result, str) else getattr(result, "text", None)
                if not isinstance(text, str):
                    raise errors.error("the transcription response has no text", retryable=True)
                return text

            text = await retry(once, mapper=errors, options=self._conn.options,
                               what="transcription")  # fmt: skip
        else:
            deltas: list[str] = []
            final: list[str] = []
            stream = retry_stream(
                lambda: self._streamed(self._conn.client, params, final),
                mapper=errors,
                options=self._conn.options,
                what="transcription",
            )
            async for delta in stream:
                deltas.append(delta)
                await self._partial(delta)
                yield delta
            if final:
                text = final[0]
            elif deltas:
                text = "".join(deltas)
            else:
                raise errors.error(
                    "the transcription stream ended without a transcript", retryable=True
                )
        log.debug(
            "openai stt: %.2f s of audio transcribed in %.3f s (%s)",
            audio.duration,
            time.perf_counter() - started,
            self.model,
        )
        yield Transcript(text=text.strip(), language=lang, duration=audio.duration)

    async def _streamed(
        self, client: Any, params: dict[str, Any], final: list[str]
    ) -> AsyncIterator[str]:
        """The deltas of one streamed request; the ``done`` text lands in ``final``."""
        errors = self._conn.errors
        # the body is read as raw events (see _openai_sse): no SDK model per event
        create = client.audio.transcriptions.with_streaming_response.create
        async with (
            create(**params, stream=True) as response,
            aclosing(sse_events(response)) as events,
        ):
            async for event in events:
                kind = event.get("type") if isinstance(event, dict) else None
                if kind == "transcript.text.delta":
                    delta = event.get("delta", "") or ""
                    if delta and isinstance(delta, str):
                        yield delta
                elif kind == "transcript.text.done":
                    text = event.get("text")
                    if isinstance(text, str):
                        final[:] = [text]
                elif kind == "error":
                    detail = event.get("message") or "error event"
                    raise errors.error(f"transcription failed mid-stream: {detail}", retryable=True)

    async def _partial(self, delta: str) -> None:
        if self.on_partial is None or not delta:
            return
        result = self.on_partial(delta)
        if inspect.isawaitable(result):
            await result
