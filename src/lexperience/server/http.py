"""HTTP plumbing of the service: the error responses, the body-size cap, the access log.

Every error is an :class:`~lexperience.server.schema.ErrorBody` with the status below; the
lexperience error tree maps onto statuses once, here:

===============================  ======  ============================================
error                            status  notes
===============================  ======  ============================================
bad or missing token             401     ``WWW-Authenticate: Bearer``
unknown conversation or media    404
``ConversationBusyError``        409     a turn of that conversation is running
body over ``max_request_bytes``  413
``InvalidInputError``            422     not audio, silent, too long, empty text...
``ConfigurationError``           400     an unknown persona or backend name
``RateLimited``                  429     ``Retry-After``
``BackendTimeoutError``          504     ``retryable`` in the body
``BackendError``                 502     ``retryable`` in the body
``ServerBusy``, full, closing    503     ``Retry-After``
anything else                    500     logged; the body says only "internal error"
===============================  ======  ============================================
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._redact import redact
from ..errors import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    ConversationBusyError,
    InvalidInputError,
)
from .codec import error_body
from .limits import RateLimited, ServerBusy
from .schema import ErrorBody, WireError
from .store import TooManyConversations

__all__ = ["AccessLog", "BodyLimit", "JsonFormatter", "error_response", "status_for"]

log = logging.getLogger("lexperience.server.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def status_for(error: BaseException) -> int:
    if isinstance(error, RateLimited):
        return 429
    if isinstance(error, (ServerBusy, TooManyConversations)):
        return 503
    if isinstance(error, ConversationBusyError):
        return 409
    if isinstance(error, InvalidInputError):
        return 422
    if isinstance(error, ConfigurationError):
        return 400
    if isinstance(error, BackendTimeoutError):
        return 504
    if isinstance(error, BackendError):
        return 502
    return 500


def error_response(error: BaseException | WireError, status: int | None = None) -> Any:
    """A JSON response for ``error`` (with ``Retry-After`` where the error has one)."""
    from starlette.responses import JSONResponse

    if isinstance(error, WireError):
        body, code = error, status or 500
    else:
        retry = getattr(error, "retry_after", None)
        body = error_body(error, retry_after=retry)
        code = status or status_for(error)
        if code == 500:
            body = WireError(type="InternalError", message="internal error")
    headers = {"Retry-After": str(max(1, round(body.retry_after)))} if body.retry_after else {}
    if code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(ErrorBody(error=body).model_dump(), status_code=code, headers=headers)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, by ``Content-Length`` when it is sent
    and by counting otherwise (chunked uploads), before the application reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(self.limit, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(self.limit, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(limit: int, send: Send) -> None:
    body = (
        ErrorBody(
            error=WireError(
                type="RequestTooLarge",
                message=f"the request body is larger than {limit} bytes (max_request_bytes)",
            )
        )
        .model_dump_json()
        .encode()
    )
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


_SECRET_QUERY = re.compile(r"(access_token|token)=[^&]*")


class AccessLog:
    """One log record per request (method, path, status, milliseconds, client), no token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            query = _SECRET_QUERY.sub(r"\1=***", scope.get("query_string", b"").decode("latin-1"))
            path = redact(scope.get("path", "") + (f"?{query}" if query else ""))
            client = (scope.get("client") or ("?", 0))[0]
            log.info(
                "%s %s %d %.0f ms",
                scope.get("method", "WS"),
                path,
                status,
                (time.perf_counter() - started) * 1000,
                extra={"client": client, "status": status, "path": path},
            )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                data[key] = (
                    value if isinstance(value, (int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            data["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(data)
