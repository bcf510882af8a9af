"""How the cloud backends turn SDK, HTTP and websocket failures into :mod:`lexperience.errors`.

:class:`ErrorMapper` translates every exception the three SDKs (openai, elevenlabs, replicate) and
the libraries under them (httpx, httpx2, websockets) raise, once, with the key scrubbed from the
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

When the service named the request (OpenAI's ``x-request-id`` header, ElevenLabs'
``request-id``, an ``x-request-id`` on a Replicate answer) the id is kept on the error as
``BackendError.request_id`` and shown at the end of its message, for support tickets.

Everything here is private to :mod:`lexperience.backends`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import sys
from collections.abc import Awaitable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import AuthenticationError, BackendError, BackendTimeoutError, RateLimitError

if TYPE_CHECKING:
    from ._cloud import Secret

__all__ = [
    "ErrorMapper",
    "error_for_status",
    "remember_request_id",
    "request_id_in",
    "request_id_of",
    "retry_after_seconds",
    "should_retry_hint",
    "tag_request_id",
]

T = TypeVar("T")

_RETRY_AFTER_MAX = 30.0
_REQUEST_ID_HEADERS = ("x-request-id", "request-id")

#: The request id of the last HTTP answer this task received from a client that records it
#: (set by :func:`remember_request_id`, read by :func:`tag_request_id`).
_LAST_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lexperience_last_request_id", default=None
)

# -- status codes -----------------------------------------------------------------------------
_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip


def _with_id(message: str, request_id: str | None) -> str:
    return f"{message} (request id {request_id})" if request_id else message


def error_for_status(
    status: int,
    detail: str,
    *,
    service: str,
    backend: str,
    stage: str | None,
    request_id: str | None = None,
) -> BackendError:
    """The typed error for an HTTP ``status`` (see the module table)."""
    reason = _REASONS.get(status, "")
    head = f"{service} answered HTTP {status}{' ' + reason if reason else ''}"
    message = f"{head}: {detail}" if detail else head
    kw: dict[str, Any] = {
        "backend": backend,
        "stage": stage,
        "status": status,
        "request_id": request_id,
    }
    if status in (401, 403):
        return AuthenticationError(
            _with_id(
                f"{message} (check the API key; it is passed as api_key=... or read from the "
                "environment)",
                request_id,
            ),
            **kw,
        )
    if status == 429:
        return RateLimitError(_with_id(message, request_id), **kw)
    retryable = status in (408, 409) or status >= 500
    return BackendError(_with_id(message, request_id), retryable=retryable, **kw)


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


def _chain(exc: BaseException | None, depth: int = 4) -> Iterator[BaseException]:
    while exc is not None and depth > 0:
        yield exc
        exc = exc.__cause__
        depth -= 1


def _refused(exc: BaseException) -> BaseException | None:
    """The aiohttp connection failure under ``exc``: the SDK's aiohttp transport raises a
    refused or unresolvable connection as ``ConnectTimeout``, which it is not."""
    error = getattr(sys.modules.get("aiohttp"), "ClientConnectorError", None)
    links = _chain(exc, depth=6) if isinstance(error, type) else ()
    return next((e for e in links if isinstance(e, error)), None)  # type: ignore[arg-type]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not hasattr(headers, "getlist"):  # a plain dict keeps the server's case
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    return None if value is None else str(value)


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """The server's ``Retry-After`` (or ``retry-after-ms``) on ``exc`` or its cause, if any."""
    for link in _chain(exc):
        headers = _headers_of(link)
        if headers is None:
            continue
        for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            value = _header(headers, name)
            if value is None:
                continue
            try:
                seconds = float(value) / divisor
            except (TypeError, ValueError):
                continue
            if 0 <= seconds <= _RETRY_AFTER_MAX:
                return seconds
    return None


def should_retry_hint(exc: BaseException | None) -> bool | None:
    """What the server's ``x-should-retry`` header (OpenAI sends one) says, if it says."""
    for link in _chain(exc):
        headers = _headers_of(link)
        value = _header(headers, "x-should-retry") if headers is not None else None
        if value == "true":
            return True
        if value == "false":
            return False
    return None


def _clean_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 200 or not text.isprintable():
        return None
    return text


def request_id_in(headers: Mapping[str, str] | None) -> str | None:
    """The request id in response ``headers`` (``x-request-id`` or ``request-id``), if any."""
    if headers is None:
        return None
    for name in _REQUEST_ID_HEADERS:
        found = _clean_id(_header(headers, name))
        if found:
            return found
    return None


def request_id_of(exc: BaseException | None) -> str | None:
    """The id the service gave the failed request (an attribute or a response header)."""
    for link in _chain(exc):
        found = _clean_id(getattr(link, "request_id", None)) or request_id_in(_headers_of(link))
        if found:
            return found
    return None


async def remember_request_id(response: Any) -> None:
    """An httpx response hook: note the answer's request id for :func:`tag_request_id`."""
    _LAST_REQUEST_ID.set(request_id_in(getattr(response, "headers", None)))


async def tag_request_id(call: Awaitable[T]) -> T:
    """Await an SDK call made through a client with the :func:`remember_request_id` hook; an
    exception it raises carries the failed answer's id as ``request_id`` (the Replicate SDK keeps
    no response on its errors)."""
    _LAST_REQUEST_ID.set(None)
    try:
        return await call
    except Exception as exc:
        if getattr(exc, "request_id", None) is None:
            with contextlib.suppress(AttributeError, TypeError):
                exc.request_id = _LAST_REQUEST_ID.get()  # type: ignore[attr-defined]
        raise


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
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        request_id: str | None = None,
    ) -> BackendError:
        return BackendError(
            self.redact(_with_id(message, request_id)),
            backend=self.backend,
            stage=self.stage,
            retryable=retryable,
            status=status,
            request_id=request_id,
        )

    def timeout(self, message: str) -> BackendTimeoutError:
        return BackendTimeoutError(self.redact(message), backend=self.backend, stage=self.stage)

    def status(
        self, status: int, detail: object = None, *, request_id: str | None = None
    ) -> BackendError:
        return error_for_status(
            status,
            self.redact(_describe_body(detail)),
            service=self.service,
            backend=self.backend,
            stage=self.stage,
            request_id=request_id,
        )

    # -- the mapping --------------------------------------------------------------------------
    def translate(self, exc: BaseException) -> BackendError | None:
        """The typed error for ``exc``, or ``None`` when ``exc`` is not a service failure
        (a programming error, a cancellation): those propagate unchanged."""
        if isinstance(exc, BackendError):
            return exc
        if not isinstance(exc, Exception):
            return None
        refused = _refused(exc)
        if refused is not None:
            name = type(refused).__name__
            return self.error(f"could not reach {self.service} ({name})", retryable=True)
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
            return self.status(
                exc.status_code,
                exc.body if exc.body is not None else exc.message,
                request_id=request_id_of(exc),
            )
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
        request_id = request_id_of(exc)
        if exc.status_code is None:
            return self.error(
                f"{self.service} failed: {_describe_body(exc.body) or 'no details'}",
                retryable=True,
                request_id=request_id,
            )
        return self.status(int(exc.status_code), exc.body, request_id=request_id)

    def _replicate(self, exc: Exception) -> BackendError | None:
        if "replicate" not in sys.modules:
            return None
        try:
            from replicate.exceptions import ModelError, ReplicateError
        except ImportError:  # pragma: no cover - a broken install
            return None
        if isinstance(exc, ReplicateError):
            detail = exc.detail or exc.title or ""
            request_id = request_id_of(exc)
            if exc.status is None:
                return self.error(
                    f"{self.service} failed: {detail or 'no details'}",
                    retryable=False,
                    request_id=request_id,
                )
            return self.status(int(exc.status), detail, request_id=request_id)
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
                return self.status(
                    exc.response.status_code,
                    _safe_text(exc.response),
                    request_id=request_id_of(exc),
                )
            if isinstance(exc, module.UnsupportedProtocol):
                return self.error(f"bad {service} URL: {exc}", retryable=False)
            if isinstance(exc, (module.RemoteProtocolError, module.DecodingError)):
                return self.error(
                    f"{service} sent a malformed or truncated response ({type(exc).__name__})",
                    retryable=True,
                )
            return self.error(
                f"could not reach {service} ({type(exc).__name__}: {exc})", retryable=True
            )
        for name in ("httpx2", "httpx"):  # InvalidURL is not an HTTPError
            module = sys.modules.get(name)
            if module is not None and isinstance(exc, module.InvalidURL):
                return self.error(f"bad {self.service} URL: {exc}", retryable=False)
        return None

    def _websocket(self, exc: Exception) -> BackendError | None:
        module = sys.modules.get("websockets.exceptions")
        if module is None or not isinstance(exc, module.WebSocketException):
            return None
        service = self.service
        if isinstance(exc, module.InvalidStatus):
            response = exc.response
            body = getattr(response, "body", b"") or b""
            return self.status(int(response.status_code), body, request_id=request_id_of(exc))
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
