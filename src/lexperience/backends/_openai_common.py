"""What the three OpenAI backends share: settings, the client, the error mapper."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from .._optional import require
from ..errors import ConfigurationError
from ._cloud import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ErrorMapper,
    LoopLocal,
    Secret,
    check_retries,
    check_timeout,
    resolve_api_key,
)

__all__ = ["OpenAIConnection"]

ENV_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
#: Sent when a non-OpenAI server (Ollama, vLLM, llama.cpp) needs no key: the SDK requires one.
LOCAL_PLACEHOLDER_KEY = "not-needed"


@functools.lru_cache(maxsize=1)
def _shared_ssl_context() -> Any:
    """httpx2's default TLS context (same CA bundle and settings), built once per process."""
    httpx2 = require("httpx2", "openai", feature="the OpenAI backends")
    return httpx2.create_ssl_context()


def _is_openai_host(base_url: str | None) -> bool:
    if not base_url:
        return True
    host = urlparse(base_url).hostname or ""
    return host == "openai.com" or host.endswith(".openai.com")


class OpenAIConnection:
    """Client settings and a lazily built ``openai.AsyncOpenAI`` (one per event loop).

    A key is required for api.openai.com; for any other ``base_url`` (an OpenAI-compatible local
    server) a missing key is replaced by a placeholder, since those servers usually take none.
    """

    def __init__(
        self,
        *,
        stage: str,
        api_key: str | Secret | None,
        base_url: str | None,
        timeout: float | None,
        max_retries: int,
        organization: str | None = None,
        project: str | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get(ENV_BASE_URL) or "").strip() or None
        if self.base_url is not None and not urlparse(self.base_url).scheme.startswith("http"):
            raise ConfigurationError(
                f"base_url must be an http(s) URL such as http://localhost:11434/v1, got "
                f"{self.base_url!r}"
            )
        official = _is_openai_host(self.base_url)
        key = resolve_api_key(api_key, env_var=ENV_KEY, backend="openai", required=official)
        self.api_key: Secret = key or Secret(LOCAL_PLACEHOLDER_KEY)
        self.official = official
        self.timeout = check_timeout(timeout) if timeout is not None else None
        self.max_retries = check_retries(max_retries)
        self.organization = organization
        self.project = project
        self.default_headers = dict(default_headers or {})
        self.errors = ErrorMapper(
            service="OpenAI" if official else "the OpenAI-compatible server",
            backend="openai",
            stage=stage,
            secrets=(self.api_key,),
        )
        self._client: LoopLocal[Any] = LoopLocal(self._build, lambda c: c.close())

    def __repr__(self) -> str:
        where = self.base_url or "api.openai.com"
        return f"OpenAIConnection({where}, timeout={self.timeout}, max_retries={self.max_retries})"

    def _build(self) -> Any:
        openai = require("openai", "openai", feature="the OpenAI backends")
        httpx2 = require("httpx2", "openai", feature="the OpenAI backends")
        timeout = (
            httpx2.Timeout(self.timeout, connect=min(self.timeout, 10.0))
            if self.timeout is not None
            else None
        )
        kwargs: dict[str, Any] = {
            "api_key": self.api_key.get(),
            "timeout": timeout,
            "max_retries": self.max_retries,
        }
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        if self.organization:
            kwargs["organization"] = self.organization
        if self.project:
            kwargs["project"] = self.project
        if self.default_headers:
            kwargs["default_headers"] = self.default_headers
        # One TLS context for every client: building one loads the CA bundle (~50 ms of CPU on
        # the event loop), which three backends x N conversations would otherwise each pay.
        kwargs["http_client"] = openai.DefaultAsyncHttpxClient(
            verify=_shared_ssl_context(), timeout=timeout
        )
        return openai.AsyncOpenAI(**kwargs)

    @property
    def client(self) -> Any:
        """The ``AsyncOpenAI`` client of the running event loop."""
        return self._client.get()

    async def aclose(self) -> None:
        await self._client.aclose()


DEFAULTS = {"timeout": DEFAULT_TIMEOUT, "max_retries": DEFAULT_MAX_RETRIES}
