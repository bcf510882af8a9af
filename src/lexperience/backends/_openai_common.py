"""What the three OpenAI backends share: the connection (settings, key, client, error mapper)
and their common base class with its lifecycle."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from .._optional import require
from ..errors import ConfigurationError
from ._cloud import (
    ConnectOptions,
    ErrorMapper,
    LoopLocal,
    Secret,
    connect_options,
    resolve_api_key,
)

__all__ = ["OpenAIBackend", "OpenAIConnection"]

log = logging.getLogger(__name__)

ENV_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
#: Which HTTP stack the OpenAI backends use: ``auto`` (aiohttp when it is installed, else
#: httpx), ``aiohttp`` or ``httpx``.
ENV_HTTP = "LEXPERIENCE_OPENAI_HTTP"
#: Sent when a non-OpenAI server (Ollama, vLLM, llama.cpp) needs no key: the SDK requires one.
LOCAL_PLACEHOLDER_KEY = "not-needed"


@functools.lru_cache(maxsize=1)
def _shared_ssl_context() -> Any:
    """httpx2's default TLS context (same CA bundle and settings), built once per process."""
    httpx2 = require("httpx2", "openai", feature="the OpenAI backends")
    return httpx2.create_ssl_context()


def http_stack() -> str:
    """``"aiohttp"`` or ``"httpx"``: the HTTP stack new OpenAI clients get (see ``ENV_HTTP``).

    The SDK's aiohttp transport (``openai.DefaultAioHttpClient``, the ``openai[aiohttp]``
    extra) reads a streamed body for about half the CPU of httpx's pure-Python stack (h11,
    httpcore, anyio): with 50 conversations on one event loop, that is what decides how late
    the first audio comes (issue 19)."""
    choice = os.environ.get(ENV_HTTP, "auto").strip().lower() or "auto"
    if choice not in ("auto", "aiohttp", "httpx"):
        raise ConfigurationError(f"{ENV_HTTP} must be auto, aiohttp or httpx, got {choice!r}")
    if choice == "httpx":
        return "httpx"
    if importlib.util.find_spec("aiohttp") is not None:
        return "aiohttp"
    if choice == "aiohttp":
        raise ConfigurationError(f"{ENV_HTTP}=aiohttp needs aiohttp: pip install 'openai[aiohttp]'")
    return "httpx"


def is_openai_host(base_url: str | None) -> bool:
    """Whether ``base_url`` is OpenAI's own API (``None``: the SDK default, api.openai.com)."""
    if not base_url:
        return True
    host = urlparse(base_url).hostname or ""
    return host == "openai.com" or host.endswith(".openai.com")


class OpenAIConnection:
    """Client settings and a lazily built ``openai.AsyncOpenAI`` (one per event loop).

    Which key is sent:

    * ``api_key=`` when given, to any server;
    * else ``OPENAI_API_KEY`` to api.openai.com (required there), to a server named by
      ``OPENAI_BASE_URL`` (both come from the environment, as the SDK reads them), or to a
      ``base_url=`` argument when ``send_env_key=True``;
    * else a placeholder: OpenAI-compatible local servers take no key, and the environment's key
      is not handed to a server it was not meant for.

    Retries are this library's (:func:`~lexperience.backends._cloud.retry`, by the
    :class:`ConnectOptions`); the SDK's own are turned off, so one policy applies to every cloud
    backend.
    """

    def __init__(
        self,
        *,
        stage: str,
        api_key: str | Secret | None,
        base_url: str | None,
        send_env_key: bool,
        timeout: float | None,
        max_retries: int,
        conn_options: ConnectOptions | None,
        organization: str | None,
        project: str | None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        from_env = False
        if not base_url and os.environ.get(ENV_BASE_URL, "").strip():
            base_url, from_env = os.environ[ENV_BASE_URL], True
        self.base_url = (base_url or "").strip() or None
        if self.base_url is not None and not urlparse(self.base_url).scheme.startswith("http"):
            raise ConfigurationError(
                f"base_url must be an http(s) URL such as http://localhost:11434/v1, got "
                f"{self.base_url!r}"
            )
        official = is_openai_host(self.base_url)
        use_env = official or from_env or bool(send_env_key)
        key = resolve_api_key(
            api_key, env_var=ENV_KEY, backend="openai", required=official, use_env=use_env
        )
        if key is None and not use_env and os.environ.get(ENV_KEY):
            log.debug(
                "not sending OPENAI_API_KEY to %s (pass api_key= or send_env_key=True)",
                urlparse(self.base_url or "").hostname,
            )
        self.api_key: Secret = key or Secret(LOCAL_PLACEHOLDER_KEY)
        self.official = official
        self.options = connect_options(conn_options, timeout=timeout, max_retries=max_retries)
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
        return (
            f"OpenAIConnection({where}, timeout={self.options.timeout}, "
            f"max_retries={self.options.max_retries})"
        )

    @property
    def timeout(self) -> float | None:
        return self.options.timeout

    @property
    def max_retries(self) -> int:
        return self.options.max_retries

    def _build(self) -> Any:
        openai = require("openai", "openai", feature="the OpenAI backends")
        httpx2 = require("httpx2", "openai", feature="the OpenAI backends")
        seconds = self.options.timeout
        timeout = httpx2.Timeout(seconds, connect=min(seconds, 10.0)) if seconds else None
        kwargs: dict[str, Any] = {
            "api_key": self.api_key.get(),
            "timeout": timeout,
            "max_retries": 0,  # retried by lexperience, with ConnectOptions
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
        stack = http_stack()
        http_client = (
            openai.DefaultAioHttpClient if stack == "aiohttp" else openai.DefaultAsyncHttpxClient
        )
        kwargs["http_client"] = http_client(verify=_shared_ssl_context(), timeout=timeout)
        log.debug("building an OpenAI client for %s (%s)", self.base_url or "api.openai.com", stack)
        return openai.AsyncOpenAI(**kwargs)

    @property
    def client(self) -> Any:
        """The ``AsyncOpenAI`` client of the running event loop."""
        return self._client.get()

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAIBackend:
    """What :class:`OpenAISTT`, :class:`OpenAILLM` and :class:`OpenAITTS` share: the connection
    (built by each one's ``__init__`` from its connection keywords) and its lifecycle."""

    name = "openai"
    _conn: OpenAIConnection

    @property
    def conn_options(self) -> ConnectOptions:
        """The timeout and retry options in effect."""
        return self._conn.options

    async def aopen(self) -> None:
        """Build the SDK client of the running event loop now, not in the first turn (the SDK's
        imports and the client cost a few ms of that turn's first audio; :class:`Conversation`
        calls this once). Nothing goes over the network."""
        self._conn.client  # noqa: B018 - LoopLocal.get builds and keeps it

    async def aclose(self) -> None:
        """Close the HTTP connection pool (idempotent; the backend can be used again)."""
        await self._conn.aclose()
