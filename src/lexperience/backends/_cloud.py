"""Shared plumbing of the cloud backends (OpenAI, ElevenLabs, Replicate).

* :func:`resolve_api_key` reads a key from the argument or the environment and wraps it in a
  :class:`Secret`, whose ``repr`` and ``str`` never show it.
* :class:`ConnectOptions`: the timeout and retry policy of a backend's requests, one frozen model
  for every cloud backend (``conn_options=``; the plain ``timeout=`` / ``max_retries=`` keywords
  build one).
* :func:`retry` and :func:`retry_stream`: the one retry loop of the cloud backends. They retry
  retryable errors (429, 408/409/5xx, timeouts, dropped connections) with exponential back-off,
  honouring ``Retry-After`` and OpenAI's ``x-should-retry``; a stream is retried only before its
  first item (what was already yielded was already used).
* :class:`~lexperience.backends._cloud_errors.ErrorMapper` (re-exported here) maps every SDK
  failure into :mod:`lexperience.errors`; :class:`~lexperience.backends._loop_local.LoopLocal`
  keeps one SDK client per event loop.

Everything here is private to :mod:`lexperience.backends`; :class:`ConnectOptions` is re-exported
by every cloud backend module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._redact import register_secret
from ..errors import BackendError, ConfigurationError, MissingCredentialsError
from ._cloud_errors import (
    ErrorMapper,
    error_for_status,
    retry_after_seconds,
    should_retry_hint,
)
from ._loop_local import LoopLocal

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ConnectOptions",
    "ErrorMapper",
    "LoopLocal",
    "Secret",
    "connect_options",
    "error_for_status",
    "resolve_api_key",
    "retry",
    "retry_after_seconds",
    "retry_stream",
]

log = logging.getLogger(__name__)

#: Seconds an HTTP request may wait for the next bytes (not the SDKs' 240-600 s).
DEFAULT_TIMEOUT = 30.0
#: Retries after the first attempt, for errors that may go away (429, 5xx, timeouts).
DEFAULT_MAX_RETRIES = 2

T = TypeVar("T")


class Secret:
    """An API key that does not show itself: ``repr`` and ``str`` print ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)  # every wrapped error and log line hides it from now on

    def get(self) -> str:
        """The key itself, for the SDK client only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:  # never pickle a key by accident
        raise TypeError("a Secret cannot be pickled")


def resolve_api_key(
    api_key: str | Secret | None,
    *,
    env_var: str,
    backend: str,
    required: bool = True,
    use_env: bool = True,
) -> Secret | None:
    """The key from ``api_key`` or else (``use_env``) the environment variable ``env_var``.

    Raises:
        MissingCredentialsError: no key and ``required``.
    """
    if isinstance(api_key, Secret):
        return api_key
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError(f"api_key for {backend} must be a string")
    value = (api_key or (os.environ.get(env_var) if use_env else None) or "").strip()
    if value:
        return Secret(value)
    if required:
        raise MissingCredentialsError(backend=backend, env_var=env_var)
    return None


def check_timeout(value: float | None, name: str = "timeout") -> float | None:
    """Validate a timeout option (``None`` disables it)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds or None")
    return float(value)


def check_retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError("max_retries must be an integer >= 0")
    return value


class ConnectOptions(BaseModel):
    """How long a cloud backend waits for a service and how it retries (one object for all).

    In the spirit of livekit-agents' ``APIConnectOptions``. Pass it as ``conn_options=`` to
    ``OpenAISTT``, ``OpenAILLM``, ``OpenAITTS``, ``ElevenLabsTTS`` or ``ReplicateAvatar``; their
    ``timeout=`` and ``max_retries=`` keywords are shortcuts for the first two fields.

    Attributes:
        timeout: seconds a request may wait for the next bytes of an answer (connecting takes at
            most 10 s of it); ``None`` waits forever.
        max_retries: retries after the first attempt, of errors that may go away: 429, 408, 409,
            5xx, timeouts and dropped connections. A stream is retried only before its first
            item. 0 turns retries off.
        retry_interval: seconds before the first retry.
        retry_backoff: each further retry waits this many times longer.
        max_retry_interval: the longest wait between two attempts. A server's ``Retry-After``
            (up to 30 s) replaces the computed wait.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float | None = Field(default=DEFAULT_TIMEOUT, gt=0)
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    retry_interval: float = Field(default=0.5, ge=0)
    retry_backoff: float = Field(default=2.0, ge=1)
    max_retry_interval: float = Field(default=8.0, ge=0)

    def retry_delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based) after ``error``."""
        hinted = retry_after_seconds(error)
        if hinted is not None:
            return hinted
        delay = min(self.retry_interval * self.retry_backoff**attempt, self.max_retry_interval)
        return delay * (1.0 - 0.25 * random.random())  # jitter: retries of many turns spread


def connect_options(
    conn_options: ConnectOptions | None, *, timeout: float | None, max_retries: int
) -> ConnectOptions:
    """The options of a backend from its ``conn_options=`` or its ``timeout=``/``max_retries=``.

    Raises:
        ConfigurationError: bad values, or ``conn_options`` together with a non-default
            ``timeout`` or ``max_retries`` (which one should win is not clear).
    """
    if conn_options is None:
        try:
            return ConnectOptions(
                timeout=check_timeout(timeout), max_retries=check_retries(max_retries)
            )
        except ValidationError as exc:  # pragma: no cover - the checks above catch it first
            raise ConfigurationError(f"bad connection options: {exc}") from exc
    if not isinstance(conn_options, ConnectOptions):
        raise ConfigurationError(
            f"conn_options must be a ConnectOptions, got {type(conn_options).__name__}"
        )
    if timeout != DEFAULT_TIMEOUT or max_retries != DEFAULT_MAX_RETRIES:
        raise ConfigurationError(
            "pass either conn_options or timeout=/max_retries=, not both "
            "(conn_options=ConnectOptions(timeout=..., max_retries=...))"
        )
    return conn_options


# -- retries ----------------------------------------------------------------------------------
def _may_retry(
    err: BackendError,
    attempt: int,
    options: ConnectOptions,
    retry_if: Callable[[BackendError], bool] | None,
) -> bool:
    if attempt >= options.max_retries:
        return False
    allowed = err.retryable if retry_if is None else retry_if(err)
    hint = should_retry_hint(err.__cause__)
    if hint is False:
        return False
    if hint is True and retry_if is None:
        return True
    return allowed


async def _pause(
    err: BackendError, attempt: int, options: ConnectOptions, mapper: ErrorMapper, what: str
) -> None:
    delay = options.retry_delay(attempt, err.__cause__ or err)
    log.debug(
        "%s %s failed (%s); retry %d of %d in %.2f s",
        mapper.service,
        what,
        mapper.redact(str(err)),
        attempt + 1,
        options.max_retries,
        delay,
    )
    await asyncio.sleep(delay)


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    mapper: ErrorMapper,
    options: ConnectOptions,
    retry_if: Callable[[BackendError], bool] | None = None,
    what: str = "request",
) -> T:
    """Run ``call`` (errors mapped by ``mapper``) and retry it as ``options`` allow.

    ``retry_if`` narrows which errors are retried (default: the retryable ones), e.g. to retry a
    POST only when it surely did nothing.
    """
    attempt = 0
    while True:
        started = time.perf_counter()
        try:
            with mapper.mapped():
                result = await call()
        except BackendError as err:
            if not _may_retry(err, attempt, options, retry_if):
                raise
            await _pause(err, attempt, options, mapper, what)
            attempt += 1
            continue
        log.debug(
            "%s %s took %.3f s%s",
            mapper.service,
            what,
            time.perf_counter() - started,
            f" (after {attempt} retries)" if attempt else "",
        )
        return result


async def retry_stream(
    open_stream: Callable[[], AsyncIterator[T]],
    *,
    mapper: ErrorMapper,
    options: ConnectOptions,
    retry_if: Callable[[BackendError], bool] | None = None,
    what: str = "stream",
) -> AsyncIterator[T]:
    """Yield the items of ``open_stream()``, opening it again on a retryable error that comes
    before its first item (never after: those items were already used)."""
    attempt = 0
    while True:
        started = time.perf_counter()
        first = True
        stream = open_stream()
        try:
            with mapper.mapped():
                async for item in stream:
                    if first:
                        first = False
                        log.debug(
                            "%s %s: first item after %.3f s",
                            mapper.service,
                            what,
                            time.perf_counter() - started,
                        )
                    yield item
            log.debug("%s %s done in %.3f s", mapper.service, what, time.perf_counter() - started)
            return
        except BackendError as err:
            if not first or not _may_retry(err, attempt, options, retry_if):
                raise
            failure = err
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        await _pause(failure, attempt, options, mapper, what)
        attempt += 1
