"""The FastAPI application of ``lexperience serve``: :func:`create_app`.

Routes (all under bearer auth when tokens are set, except the two probes):

* ``GET /healthz`` (the process answers) and ``GET /readyz`` (the models are loaded);
* ``GET /v1/personas``, ``GET /v1/backends``: what clients may choose;
* ``POST /v1/conversations`` -> id; ``GET`` / ``DELETE /v1/conversations/{id}``;
* ``POST /v1/conversations/{id}/turns``: a question as JSON text, a multipart ``audio`` file or a
  raw ``audio/*`` body -> transcript, reply text, metrics and media URLs;
* ``GET /v1/conversations/{id}/turns/{turn}/reply.wav|reply.mp4``;
* ``WS /v1/conversations/{id}/stream`` (:mod:`lexperience.server.ws`).

The OpenAPI document is at ``/openapi.json`` (and ``/docs``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from .._optional import require
from .._redact import redact
from .._version import __version__
from ..errors import InvalidInputError, LexperienceError, TurnCancelledError
from ..registry import KINDS
from ..reply import Reply
from .codec import reply_body
from .http import AccessLog, BodyLimit, error_response
from .limits import RateLimited, ServerBusy
from .schema import ConversationInfo, CreateConversation, ErrorBody, TextTurn, WireError, WireReply
from .settings import ServerSettings
from .state import ServiceState
from .store import TooManyConversations
from .ws import serve_stream

require("fastapi", "server", feature="the HTTP service")
require("multipart", "server", feature="audio uploads (python-multipart)")

from fastapi import Depends, FastAPI, Request, Response, WebSocket  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "a bad persona or backend name", 401: "missing or wrong token",
        404: "unknown conversation", 409: "a turn of this conversation is running",
        413: "the body is too large", 422: "unusable input", 429: "too many turns",
        502: "a backend failed", 503: "the server is full or shutting down",
        504: "a backend timed out",
    }.items()
}  # fmt: skip

_TURN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TextTurn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"audio": {"type": "string", "format": "binary"}},
                    "required": ["audio"],
                }
            },
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The service as an ASGI application (FastAPI), for ``uvicorn`` or any ASGI server."""
    settings = settings or ServerSettings()
    settings.check_exposure()
    state = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title="lexperience",
        version=__version__,
        description="Conversational talking avatars: ask in text or speech, get the answer "
        "spoken, with a lip-synced face, streamed.",
        lifespan=lifespan,
    )
    app.state.lexperience = state

    # -- errors -------------------------------------------------------------------------------
    async def on_error(request: Request, exc: Exception) -> Any:
        return error_response(exc)

    for kind in (LexperienceError, RateLimited, ServerBusy, TooManyConversations):
        app.add_exception_handler(kind, on_error)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> Any:
        log.error("internal error on %s %s: %s", request.method, request.url.path,
                  redact(f"{type(exc).__name__}: {exc}"))  # fmt: skip
        return error_response(exc, 500)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(InvalidInputError(f"{where}: {first.get('msg')}"))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Any:
        kind = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed"}.get(
            exc.status_code, "HTTPError"
        )
        return error_response(WireError(type=kind, message=str(exc.detail)), exc.status_code)

    # -- auth ---------------------------------------------------------------------------------
    bearer = HTTPBearer(auto_error=False, description="a token given to the server (--token)")

    async def client(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> str:
        token = credentials.credentials if credentials is not None else None
        address = request.client.host if request.client else None
        key = state.client_key(token, address)
        if key is None:
            raise StarletteHTTPException(401, "missing or wrong bearer token")
        return key

    def entry_of(conversation_id: str) -> Any:
        entry = state.store.get(conversation_id)
        if entry is None:
            raise StarletteHTTPException(404, f"no conversation {conversation_id!r} here")
        return entry

    def info(entry: Any) -> ConversationInfo:
        conv = entry.conversation
        return ConversationInfo(
            id=entry.id, persona=entry.persona, backends=entry.backends,
            turns=sum(1 for m in conv.history if m.role == "user"), busy=conv.busy,
            expires_in=state.store.expires_in(entry), history=conv.history,
        )  # fmt: skip

    # -- probes ---------------------------------------------------------------------------------
    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, Any]:
        """The process is up."""
        return {"status": "ok", "version": __version__, "worker": settings.worker_id}

    @app.get("/readyz", tags=["probes"], responses={503: _ERRORS[503]})
    async def readyz() -> Any:
        """The default models are loaded and the process takes turns."""
        if not state.pool.ready or state.closing:
            why = "shutting down" if state.closing else "loading models"
            return error_response(WireError(type="NotReady", message=why, retry_after=2.0), 503)
        return {"status": "ready", "conversations": len(state.store),
                "running_turns": state.admission.running,
                "waiting_turns": state.admission.waiting}  # fmt: skip

    # -- what clients may choose ----------------------------------------------------------------
    @app.get("/v1/personas", tags=["conversations"], responses={401: _ERRORS[401]})
    async def personas(_: str = Depends(client)) -> dict[str, list[str]]:
        """The personas a conversation may play."""
        return {"personas": state.pool.persona_names()}

    @app.get("/v1/backends", tags=["conversations"], responses={401: _ERRORS[401]})
    async def backends(_: str = Depends(client)) -> dict[str, list[str]]:
        """The backend registry names a conversation may use, per kind."""
        return {kind: settings.backend_choices(kind) for kind in KINDS}

    # -- conversations ----------------------------------------------------------------------------
    @app.post("/v1/conversations", status_code=201, response_model=ConversationInfo,
              tags=["conversations"],
              responses={k: _ERRORS[k] for k in (400, 401, 422, 503)})  # fmt: skip
    async def create(body: CreateConversation, _: str = Depends(client)) -> ConversationInfo:
        """Start a conversation with a persona and backends (registry names)."""
        if state.closing:
            raise _closing()
        return info(await state.create(body))

    @app.get("/v1/conversations/{conversation_id}", response_model=ConversationInfo,
             tags=["conversations"], responses={k: _ERRORS[k] for k in (401, 404)})  # fmt: skip
    async def get(conversation_id: str, _: str = Depends(client)) -> ConversationInfo:
        """A conversation and its history."""
        return info(entry_of(conversation_id))

    @app.delete("/v1/conversations/{conversation_id}", status_code=204, tags=["conversations"],
                response_class=Response, responses={k: _ERRORS[k] for k in (401, 404)})  # fmt: skip
    async def delete(conversation_id: str, _: str = Depends(client)) -> None:
        """End a conversation (a running turn is interrupted) and drop its media."""
        await state.delete(entry_of(conversation_id))

    @app.post("/v1/conversations/{conversation_id}/turns", response_model=WireReply,
              tags=["turns"], openapi_extra=_TURN_BODY,
              responses={k: _ERRORS[k] for k in (401, 404, 409, 413, 422, 429, 502, 503, 504)})  # fmt: skip
    async def turn(conversation_id: str, request: Request, who: str = Depends(client)) -> WireReply:
        """Ask one question and wait for the whole answer. JSON ``{"text": ...}``, a multipart
        form with an ``audio`` file, or a raw ``audio/*`` body (WAV, MP3, M4A, OGG, FLAC,
        WebM)."""
        entry = entry_of(conversation_id)
        if state.closing:
            raise _closing()
        question = await _question(request, settings)
        state.limiter.take(who)
        async with state.admission.slot():
            try:
                reply: Reply = await entry.conversation.areply(question)
            except TurnCancelledError as exc:  # interrupted over the stream or by DELETE
                if not isinstance(exc.reply, Reply):
                    raise
                reply = exc.reply
        entry.touch()
        return reply_body(reply, await state.keep_media(entry, reply))

    @app.get("/v1/conversations/{conversation_id}/turns/{turn_id}/{name}", tags=["turns"],
             responses={200: {"content": {"audio/wav": {}, "video/mp4": {}}},
                        **{k: _ERRORS[k] for k in (401, 404)}})  # fmt: skip
    async def media(conversation_id: str, turn_id: int, name: str,
                    _: str = Depends(client)) -> Response:  # fmt: skip
        """A reply's ``reply.wav`` or ``reply.mp4`` (kept for ``media_ttl`` seconds)."""
        entry_of(conversation_id)
        item = state.media.get(conversation_id, turn_id, name)
        if item is None:
            raise StarletteHTTPException(404, f"no {name} for turn {turn_id} (expired?)")
        return Response(item.data, media_type=item.mime_type)

    @app.websocket("/v1/conversations/{conversation_id}/stream")
    async def stream(websocket: WebSocket, conversation_id: str) -> None:
        await serve_stream(websocket, state, conversation_id)

    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(AccessLog)
    return app


def _closing() -> Exception:
    return ServerBusy(5.0)


async def _question(request: Any, settings: ServerSettings) -> str | bytes:
    """The question of a turn request: text, or the bytes of an audio file."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            return TextTurn.model_validate_json(await request.body()).text
        except ValueError as exc:
            raise InvalidInputError('the JSON body must be {"text": "..."}') from exc
    if kind == "multipart/form-data":
        form = await request.form(
            max_files=1, max_fields=4, max_part_size=settings.max_request_bytes
        )
        upload = form.get("audio")
        if upload is None or isinstance(upload, str):
            raise InvalidInputError("the multipart form needs an 'audio' file field")
        data: bytes = await upload.read()
        return data
    if kind.startswith("audio/") or kind in ("application/octet-stream", "video/webm"):
        return bytes(await request.body())
    raise InvalidInputError(
        f'unsupported content type {kind or "(none)"!r}: send JSON {{"text": ...}}, a multipart '
        "form with an 'audio' file, or an audio/* body"
    )
