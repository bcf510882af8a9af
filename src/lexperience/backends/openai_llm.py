"""OpenAI chat models, streamed: Chat Completions (default) or the Responses API.

Chat Completions is what every OpenAI-compatible server speaks, so the same backend drives a
local model through ``base_url``:

* Ollama: ``OpenAILLM(base_url="http://localhost:11434/v1", model="llama3.2")``
* vLLM: ``OpenAILLM(base_url="http://localhost:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")``
* llama.cpp server: ``OpenAILLM(base_url="http://localhost:8080/v1", model="local")``

``api="responses"`` uses OpenAI's Responses API instead (``response.output_text.delta`` events).
Install with ``pip install "lexperience[openai]"``; the key comes from ``api_key=`` or
``OPENAI_API_KEY`` (not needed for a local server).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Literal

from ..errors import BackendError, ConfigurationError, RateLimitError
from ..messages import Message
from ._cloud import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ConnectOptions, Secret, retry_stream
from ._openai_common import OpenAIBackend, OpenAIConnection
from ._openai_sse import sse_events

__all__ = ["ConnectOptions", "OpenAILLM"]

log = logging.getLogger(__name__)

Api = Literal["chat", "responses"]
TokenParam = Literal["max_tokens", "max_completion_tokens"]


class OpenAILLM(OpenAIBackend):
    """Streams a reply from an OpenAI (or OpenAI-compatible) chat model.

    Args:
        model: the model name (default ``gpt-4.1-mini``: fast first token, no reasoning delay).
        api: ``"chat"`` (Chat Completions, default) or ``"responses"`` (Responses API).
        temperature: sampling temperature; ``None`` leaves the server default.
        max_tokens: the longest reply in tokens (the pipeline's per-turn limit wins when given).
        max_tokens_param: how Chat Completions names the limit: ``max_completion_tokens``
            (api.openai.com, required by reasoning models) or ``max_tokens`` (what Ollama,
            vLLM and llama.cpp read). Default: chosen by ``base_url``.
        base_url: an OpenAI-compatible server; default ``OPENAI_BASE_URL`` or api.openai.com.
        api_key: the key; default ``OPENAI_API_KEY`` (see ``send_env_key``). Not needed for a
            local server.
        send_env_key: send ``OPENAI_API_KEY`` to a ``base_url=`` that is not OpenAI's (by
            default it goes only to api.openai.com or to a server named by ``OPENAI_BASE_URL``).
        timeout: seconds to wait for the next bytes (first token included; default 30).
        max_retries: retries of 408/409/429/5xx, timeouts and connection errors before the
            first token.
        conn_options: a :class:`ConnectOptions` instead of ``timeout``/``max_retries`` (also sets
            the back-off).
        organization / project: OpenAI organisation and project ids.
        extra_body: extra JSON fields merged into each request (e.g. ``{"top_k": 40}`` for vLLM,
            ``{"reasoning": {"effort": "low"}}`` for the Responses API).
    """

    def __init__(
        self,
        *,
        model: str = "gpt-4.1-mini",
        api: Api = "chat",
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_tokens_param: TokenParam | None = None,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        send_env_key: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        conn_options: ConnectOptions | None = None,
        organization: str | None = None,
        project: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if api not in ("chat", "responses"):
            raise ConfigurationError(f"api must be 'chat' or 'responses', got {api!r}")
        if not model or not isinstance(model, str):
            raise ConfigurationError("model must be a non-empty model name")
        if temperature is not None and not 0.0 <= temperature <= 2.0:
            raise ConfigurationError("temperature must be between 0 and 2")
        if max_tokens is not None and max_tokens < 1:
            raise ConfigurationError("max_tokens must be >= 1")
        if max_tokens_param not in (None, "max_tokens", "max_completion_tokens"):
            raise ConfigurationError(
                "max_tokens_param must be 'max_tokens' or 'max_completion_tokens'"
            )
        self.model = model
        self.api: Api = api
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self._conn = OpenAIConnection(
            stage="llm",
            api_key=api_key,
            base_url=base_url,
            send_env_key=send_env_key,
            timeout=timeout,
            max_retries=max_retries,
            conn_options=conn_options,
            organization=organization,
            project=project,
        )
        self.max_tokens_param: TokenParam = max_tokens_param or (
            "max_completion_tokens" if self._conn.official else "max_tokens"
        )

    def __repr__(self) -> str:
        return f"OpenAILLM(model={self.model!r}, api={self.api!r}, {self._conn!r})"

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the reply to ``messages`` as text deltas, the first as soon as it is generated.

        A failure before the first delta is retried as ``conn_options`` allow; after it, it
        is raised (what was yielded was already used)."""
        limit = max_tokens if max_tokens is not None else self.max_tokens
        if self.api == "responses":
            return retry_stream(
                lambda: self._responses(messages, limit),
                mapper=self._conn.errors,
                options=self._conn.options,
                what="responses stream",
            )
        return retry_stream(
            lambda: self._chat(messages, limit),
            mapper=self._conn.errors,
            options=self._conn.options,
            what="chat stream",
        )

    # -- Chat Completions ---------------------------------------------------------------------
    async def _chat(self, messages: Sequence[Message], limit: int | None) -> AsyncIterator[str]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_openai() for m in messages],
            "stream": True,
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if limit is not None:
            params[self.max_tokens_param] = limit
        if self.extra_body:
            params["extra_body"] = self.extra_body
        errors = self._conn.errors
        with errors.mapped():
            # the body is read as raw events (see _openai_sse): no SDK model per token
            create = self._conn.client.chat.completions.with_streaming_response.create
            async with create(**params) as response, aclosing(sse_events(response)) as chunks:
                async for chunk in chunks:
                    for choice in _choices(chunk):
                        content = _field(choice.get("delta"), "content")
                        if content and isinstance(content, str):
                            yield content
                        if choice.get("finish_reason") == "content_filter":
                            raise errors.error(
                                "the reply was stopped by the provider's content filter"
                            )

    # -- Responses API ------------------------------------------------------------------------
    async def _responses(
        self, messages: Sequence[Message], limit: int | None
    ) -> AsyncIterator[str]:
        params: dict[str, Any] = {
            "model": self.model,
            "input": [
                {"role": "developer" if m.role == "system" else m.role, "content": m.content}
                for m in messages
            ],
            "stream": True,
            "store": False,
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if limit is not None:
            params["max_output_tokens"] = max(16, limit)  # the API's minimum is 16
        if self.extra_body:
            params["extra_body"] = self.extra_body
        errors = self._conn.errors
        with errors.mapped():
            create = self._conn.client.responses.with_streaming_response.create
            async with create(**params) as response, aclosing(sse_events(response)) as events:
                async for event in events:
                    if not isinstance(event, dict):
                        continue
                    kind = event.get("type")
                    if kind == "response.output_text.delta":
                        delta = event.get("delta")
                        if delta:
                            yield delta
                    elif kind == "error":
                        raise self._event_error(event.get("code"), event.get("message"))
                    elif kind == "response.failed":
                        error = _field(event.get("response"), "error")
                        raise self._event_error(_field(error, "code"), _field(error, "message"))
                    elif kind in ("response.completed", "response.incomplete"):
                        break

    def _event_error(self, code: object, message: object) -> BackendError:
        errors = self._conn.errors
        text = f"the response failed: {message or 'no message'}" + (f" ({code})" if code else "")
        code_s = str(code or "")
        if code_s == "rate_limit_exceeded":
            return RateLimitError(errors.redact(text), backend="openai", stage="llm")
        # server_error (and an error without a code) may pass; invalid_prompt, quota... do not
        return errors.error(text, retryable=code_s in ("server_error", ""))


def _field(obj: object, name: str) -> Any:
    """``obj[name]`` when ``obj`` is a JSON object, else ``None``."""
    return obj.get(name) if isinstance(obj, dict) else None


def _choices(chunk: object) -> list[dict[str, Any]]:
    """The choices of a chat chunk that belong to the first completion (index 0)."""
    choices = _field(chunk, "choices")
    if not isinstance(choices, list):
        return []
    return [c for c in choices if isinstance(c, dict) and c.get("index", 0) in (0, None)]
