"""Shared plumbing of the cloud backends (OpenAI, ElevenLabs, Replicate).

* :func:`resolve_api_key` reads a key from the argument or the environment and wraps it in a
  :class:`Secret`, whose ``repr`` and ``str`` never show it.
* :class:`ErrorMapper` turns every exception the three SDKs (and the HTTP and websocket libraries
  under them) raise into the :mod:`lexperience.errors` tree, once, with the key scrubbed from the
  message:

  ========================================  ===============================================
  what happened                             raised as
  ========================================  ===============================================
  HTTP 401 / 403                            :class:`AuthenticationError` (not retryable)
  HTTP 429                                  :class:`RateLimitError` (retryable)
  HTTP 408 / 409 / 5xx                      :class:`BackendError` ``retryable=True``
  any other 4xx                             :class:`BackendError` ``retryable=False``
  a timeout (openai ``APITimeoutError``,    :class:`BackendTimeoutError` (retryable)
  raw ``httpx`` / ``httpx2`` timeouts)
  a malformed body (bad JSON or SSE, a      :class:`BackendError` ``retryable=True``
  body cut short, a dropped connection)
  ========================================  ===============================================

* :func:`retry` retries a coroutine on retryable errors with exponential back-off (honouring
  ``Retry-After``), for the SDK calls that do not retry by themselves (ElevenLabs streaming,
  Replicate POSTs).
* :class:`LoopLocal` keeps one SDK client per event loop: HTTP connection pools belong to the loop
  that opened them, and :meth:`Conversation.reply` runs turns on its own background loop.

Everything here is private to :mod:`lexperience.backends`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from ..errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    MissingCredentialsError,
    RateLimitError,
)

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ErrorMapper",
    "LoopLocal",
    "Secret",
    "error_for_status",
    "resolve_api_key",
    "retry",
    "retry_after_seconds",
]

#: Seconds an HTTP request may wait for the next bytes (not the SDKs' 240-600 s).
DEFAULT_TIMEOUT = 30.0
#: Retries after the first attempt, for errors that may go away (429, 5xx, timeouts).
DEFAULT_MAX_RETRIES = 2

_BACKOFF_BASE = 0.5
_BACKOFF_MAX = 8.0
_RETRY_AFTER_MAX = 30.0

T = TypeVar("T")


class Secret:
    """An API key that does not show itself: ``repr`` and ``str`` print ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

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
    api_key: str | Secret | None, *, env_var: str, backend: str, required: bool = True
) -> Secret | None:
    """The key from ``api_key`` or else the environment variable ``env_var``.

    Raises:
        MissingCredentialsError: neither is set and ``required``.
    """
    if isinstance(api_key, Secret):
        return api_key
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError(f"api_key for {backend} must be a string")
    value = (api_key or os.environ.get(env_var) or "").strip()
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


# -- status codes -----------------------------------------------------------------------------
_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip


def error_for_status(
    status: int, detail: str, *, service: str, backend: str, stage: str | None
) -> BackendError:
    """The typed error for an HTTP ``status`` (see the module table)."""
    reason = _REASONS.get(status, "")
    head = f"{service} answered HTTP {status}{' ' + reason if reason else ''}"
    message = f"{head}: {detail}" if detail else head
    kw: dict[str, Any] = {"backend": backend, "stage": stage, "status": status}
    if status in (401, 403):
        return AuthenticationError(
            f"{message} (check the API key; it is passed as api_key=... or read from the "
            "environment)",
            **kw,
        )
    if status == 429:
        return RateLimitError(message, **kw)
    retryable = status in (408, 409) or status >= 500
    return BackendError(message, retryable=retryable, **kw)


def _describe_body(body: object) -> str:
    """A short human message from an API error body (JSON of any of the three services)."""
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str):
        text = body.strip()
        try:
            body = json.loads(text)
        except ValueError:
            return text[:300]
    if isinstance(body, Mapping):
        for key in ("error", "detail"):
            inner = body.get(key)
            if inner is not None and inner is not body:
                found = _describe_body(inner)
                if found:
                    return found
        for key in ("message", "title", "msg", "status"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:300]
        return ""
    if isinstance(body, list) and body:
        return _describe_body(body[0])
    return str(body)[:300]


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    headers = getattr(exc, "headers", None)
    if isinstance(headers, Mapping):
        return headers
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None and hasattr(headers, "get"):
        return headers  # type: ignore[no-any-return]
    return None


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """The server's ``Retry-After`` (or ``retry-after-ms``) on ``exc`` or its cause, if any."""
    seen = 0
    while exc is not None and seen < 4:
        headers = _headers_of(exc)
        if headers is not None:
            for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
                value = headers.get(name)
                if value is None:
                    continue
                try:
                    seconds = float(value) / divisor
                except (TypeError, ValueError):
                    continue
                if 0 <= seconds <= _RETRY_AFTER_MAX:
                    return seconds
        exc = exc.__cause__
        seen += 1
    return None


class ErrorMapper:
    """Translates SDK and network exceptions of one backend into :mod:`lexperience.errors`.

    Args:
        service: how messages name the service ("OpenAI", "ElevenLabs", "Replicate").
        backend: the registry name put on errors.
        stage: ``stt`` / ``llm`` / ``tts`` / ``avatar``.
        secrets: keys scrubbed from every message.
    """

    def __init__(
        self, *, service: str, backend: str, stage: str, secrets: tuple[Secret | None, ...] = ()
    ) -> None:
        self.service = service
        self.backend = backend
        self.stage = stage
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        return f"ErrorMapper({self.service!r}, stage={self.stage!r})"

    # -- helpers ------------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        for secret in self._secrets:
            value = secret.get()
            if value:
                text = text.replace(value, "***")
        return text

    def error(
        self, message: str, *, retryable: bool = False, status: int | None = None
    ) -> BackendError:
        return BackendError(
            self.redact(message),
            backend=self.backend,
            stage=self.stage,
            retryable=retryable,
            status=status,
        )

    def timeout(self, message: str) -> BackendTimeoutError:
        return BackendTimeoutError(self.redact(message), backend=self.backend, stage=self.stage)

    def status(self, status: int, detail: object = None) -> BackendError:
        return error_for_status(
            status,
            self.redact(_describe_body(detail)),
            service=self.service,
            backend=self.backend,
            stage=self.stage,
        )

    # -- the mapping --------------------------------------------------------------------------
    def translate(self, exc: BaseException) -> BackendError | None:
        """The typed error for ``exc``, or ``None`` when ``exc`` is not a service failure
        (a programming error, a cancellation): those propagate unchanged."""
        if isinstance(exc, BackendError):
            return exc
        if not isinstance(exc, Exception):
            return None
        for translate in (
            self._openai,
            self._elevenlabs,
            self._replicate,
            self._http,
            self._websocket,
        ):
            found = translate(exc)
            if found is not None:
                return found
        service = self.service
        if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
            return self.error(f"{service} sent a malformed response ({exc})", retryable=True)
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return self.timeout(f"{service} did not answer in time")
        if isinstance(exc, ConnectionError):
            return self.error(f"lost the connection to {service}: {exc}", retryable=True)
        if _is_validation_error(exc):
            return self.error(
                f"{service} sent a response of an unexpected shape: {exc}", retryable=True
            )
        return None

    def _openai(self, exc: Exception) -> BackendError | None:
        openai = sys.modules.get("openai")
        if openai is None or not isinstance(exc, openai.OpenAIError):
            return None
        service = self.service
        if isinstance(exc, openai.APITimeoutError):
            return self.timeout(f"{service} did not answer in time (request timed out)")
        if isinstance(exc, openai.APIStatusError):
            return self.status(exc.status_code, exc.body if exc.body is not None else exc.message)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            more = f" ({type(cause).__name__})" if cause is not None else ""
            return self.error(f"could not reach {service}: connection error{more}", retryable=True)
        if isinstance(exc, openai.APIResponseValidationError):
            return self.error(f"{service} sent a response of an unexpected shape", retryable=True)
        if isinstance(exc, openai.APIError):  # an error event inside a stream
            detail = _describe_body(exc.body) or exc.message
            return self.error(f"{service} reported an error mid-stream: {detail}", retryable=True)
        return self.error(f"{service} failed: {type(exc).__name__}: {exc}")

    def _elevenlabs(self, exc: Exception) -> BackendError | None:
        if "elevenlabs" not in sys.modules:
            return None
        try:
            from elevenlabs.core.api_error import ApiError
        except ImportError:  # pragma: no cover - a broken install
            return None
        if not isinstance(exc, ApiError):
            return None
        if exc.status_code is None:
            return self.error(f"{self.service} failed: {_describe_body(exc.body)}", retryable=True)
        return self.status(int(exc.status_code), exc.body)

    def _replicate(self, exc: Exception) -> BackendError | None:
        if "replicate" not in sys.modules:
            return None
        try:
            from replicate.exceptions import ModelError, ReplicateError
        except ImportError:  # pragma: no cover - a broken install
            return None
        if isinstance(exc, ReplicateError):
            detail = exc.detail or exc.title or ""
            if exc.status is None:
                return self.error(f"{self.service} failed: {detail}", retryable=False)
            return self.status(int(exc.status), detail)
        if isinstance(exc, ModelError):
            return self.error(f"the {self.service} model failed: {exc}", retryable=False)
        return None

    def _http(self, exc: Exception) -> BackendError | None:
        for name in ("httpx2", "httpx"):
            module = sys.modules.get(name)
            if module is None or not isinstance(exc, module.HTTPError):
                continue
            service = self.service
            if isinstance(exc, module.TimeoutException):
                return self.timeout(f"{service} did not answer in time ({type(exc).__name__})")
            if isinstance(exc, module.HTTPStatusError):
                return self.status(exc.response.status_code, _safe_text(exc.response))
            if isinstance(exc, (module.InvalidURL, module.UnsupportedProtocol)):
                return self.error(f"bad {service} URL: {exc}", retryable=False)
            if isinstance(exc, (module.RemoteProtocolError, module.DecodingError)):
                return self.error(
                    f"{service} sent a malformed or truncated response ({type(exc).__name__})",
                    retryable=True,
                )
            return self.error(
                f"could not reach {service} ({type(exc).__name__}: {exc})", retryable=True
            )
        return None

    def _websocket(self, exc: Exception) -> BackendError | None:
        module = sys.modules.get("websockets.exceptions")
        if module is None or not isinstance(exc, module.WebSocketException):
            return None
        service = self.service
        if isinstance(exc, module.InvalidStatus):
            response = exc.response
            body = getattr(response, "body", b"") or b""
            return self.status(int(response.status_code), body)
        if isinstance(exc, module.ConnectionClosed):
            frame = exc.rcvd
            code = frame.code if frame is not None else 1006
            reason = frame.reason if frame is not None else "no close frame"
            if code == 1008:  # policy violation: a bad key, a bad voice, quota
                return self.error(
                    f"{service} closed the websocket: {reason or 'policy violation'}",
                    retryable=False,
                )
            return self.error(
                f"{service} closed the websocket unexpectedly (code {code}: {reason})",
                retryable=True,
            )
        if isinstance(exc, module.InvalidURI):
            return self.error(f"bad {service} websocket URL: {exc}", retryable=False)
        return self.error(
            f"{service} websocket failed: {type(exc).__name__}: {exc}", retryable=True
        )

    @contextlib.contextmanager
    def mapped(self) -> Iterator[None]:
        """Re-raise known service failures inside the block as typed errors."""
        try:
            yield
        except BackendError as exc:
            exc.backend = exc.backend or self.backend
            exc.stage = exc.stage or self.stage
            raise
        except Exception as exc:
            err = self.translate(exc)
            if err is None:
                raise
            raise err from exc


def _safe_text(response: Any) -> str:
    try:
        return str(response.text)[:300]
    except Exception:  # a streamed body that was not read
        return ""


def _is_validation_error(exc: Exception) -> bool:
    for name in ("pydantic", "pydantic.v1"):
        module = sys.modules.get(name)
        error = getattr(module, "ValidationError", None) if module is not None else None
        if isinstance(error, type) and isinstance(exc, error):
            return True
    return False


# -- retries ----------------------------------------------------------------------------------
def backoff_delay(attempt: int, error: BaseException | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based)."""
    hinted = retry_after_seconds(error)
    if hinted is not None:
        return hinted
    delay = min(_BACKOFF_BASE * (2.0**attempt), _BACKOFF_MAX)
    return delay * (1.0 - 0.25 * random.random())


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    mapper: ErrorMapper,
    max_retries: int,
    retry_if: Callable[[BackendError], bool] | None = None,
) -> T:
    """Run ``call`` and retry it on retryable errors, at most ``max_retries`` more times."""
    attempt = 0
    while True:
        try:
            with mapper.mapped():
                return await call()
        except BackendError as err:
            allowed = err.retryable if retry_if is None else retry_if(err)
            if not allowed or attempt >= max_retries:
                raise
            await asyncio.sleep(backoff_delay(attempt, err.__cause__ or err))
            attempt += 1


# -- one client per event loop ----------------------------------------------------------------
class LoopLocal(Generic[T]):
    """Builds an SDK client lazily, one per running event loop, and closes it on :meth:`aclose`."""

    def __init__(
        self,
        factory: Callable[[], T],
        closer: Callable[[T], Awaitable[object]] | None = None,
    ) -> None:
        self._factory = factory
        self._closer = closer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._value: T | None = None

    def __repr__(self) -> str:
        return f"LoopLocal({'open' if self._value is not None else 'idle'})"

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._value is None or self._loop is not loop or self._loop.is_closed():
            # A client bound to another (or a closed) loop cannot be reused; its sockets die with
            # that loop.
            self._value = self._factory()
            self._loop = loop
        return self._value

    async def aclose(self) -> None:
        value, loop = self._value, self._loop
        self._value, self._loop = None, None
        if value is None or self._closer is None:
            return
        with contextlib.suppress(Exception):
            if loop is asyncio.get_running_loop():
                await self._closer(value)
