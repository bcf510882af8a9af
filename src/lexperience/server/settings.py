"""What a ``lexperience serve`` process is allowed to do: :class:`ServerSettings`.

Every limit the service enforces is here, with defaults that suit one machine serving the offline
stack. They load from a TOML/YAML/JSON file (``lexperience serve --config server.toml``), whose
``[stack]`` table is an ordinary :class:`~lexperience.config.Settings` (the backends), and from
the command line.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .._redact import register_secret
from ..config import Settings
from ..errors import ConfigurationError
from ..persona import _describe, _read_mapping

__all__ = ["ServerSettings", "is_loopback"]

ENV_TOKEN = "LEXPERIENCE_TOKEN"


def _cores() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerSettings(BaseModel):
    """Limits and set-up of the HTTP + WebSocket service.

    Attributes:
        host: the address to bind; anything but loopback needs a ``token``.
        port: the TCP port (0: any free one).
        tokens: the bearer tokens clients may send (``Authorization: Bearer ...``, or
            ``?access_token=`` on WebSockets), each with its own rate limit; default
            ``LEXPERIENCE_TOKEN`` (comma-separated for several). None: no auth (loopback only).
        stack: the backends conversations use by default (the offline stack).
        allowed_backends: registry names clients may choose per kind, besides the stack's own.
        personas_dir: a folder of persona files clients may pick by file name (without suffix).
        max_request_bytes: the largest request body (an upload); larger ones get 413.
        max_audio_seconds: the longest uploaded question.
        max_text_chars: the longest typed question.
        turns_per_minute: per-token (or per-client-address) rate of turns; more get 429.
        burst: how many turns a client may start at once before the rate applies.
        conversation_ttl: seconds a conversation may stay idle before it is dropped.
        max_conversations: live conversations per process; more get 503.
        max_concurrent_turns: turns computing at once (default: the CPU cores).
        max_queued_turns: turns waiting for a slot; more get 503 + ``Retry-After``.
        media_ttl: seconds a reply's wav/mp4 stays downloadable.
        max_media_bytes: memory for stored replies; the oldest are dropped beyond it.
        cors_origins: origins allowed by CORS (empty: CORS off).
        shutdown_grace: seconds running turns get to finish at shutdown before they are
            interrupted.
        worker_id: this process's name in conversation ids (``w0-...``), for affinity routing.
        video: how the WebSocket sends frames by default: ``jpeg`` per frame, ``mp4`` segments
            per sentence, or ``none``.
        jpeg_quality: 1-100.
        log_format: ``text`` or ``json`` (one JSON object per line).
        freeze_heap: once the models are loaded, collect garbage and move everything alive to
            the garbage collector's permanent generation (``gc.freeze()``), so its full
            collections no longer walk the models and modules (fewer, shorter pauses of every
            conversation). Process-wide: ``lexperience serve`` turns it on; an application that
            embeds :func:`create_app` decides for its own process.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    tokens: list[SecretStr] = Field(default_factory=list)
    stack: Settings = Field(default_factory=Settings)
    allowed_backends: dict[str, list[str]] = Field(default_factory=dict)
    personas_dir: Path | None = None
    max_request_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_audio_seconds: float = Field(default=120.0, gt=0)
    max_text_chars: int = Field(default=2000, ge=1)
    turns_per_minute: float = Field(default=30.0, gt=0)
    burst: int = Field(default=10, ge=1)
    conversation_ttl: float = Field(default=900.0, gt=0)
    max_conversations: int = Field(default=200, ge=1)
    max_concurrent_turns: int = Field(default_factory=_cores, ge=1)
    max_queued_turns: int = Field(default_factory=lambda: 4 * _cores(), ge=0)
    media_ttl: float = Field(default=900.0, gt=0)
    max_media_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    cors_origins: list[str] = Field(default_factory=list)
    shutdown_grace: float = Field(default=10.0, ge=0)
    worker_id: str = Field(default="w0", pattern=r"^w[0-9]{1,4}$")
    video: Literal["jpeg", "mp4", "none"] = "jpeg"
    jpeg_quality: int = Field(default=80, ge=1, le=100)
    log_format: Literal["text", "json"] = "text"
    freeze_heap: bool = False

    def model_post_init(self, __context: Any) -> None:
        if not self.tokens:
            env = [t.strip() for t in os.environ.get(ENV_TOKEN, "").split(",") if t.strip()]
            object.__setattr__(self, "tokens", [SecretStr(t) for t in env])
        for token in self.tokens:
            if len(token.get_secret_value()) < 16:
                raise ConfigurationError(
                    "a token must be at least 16 characters (e.g. python -c "
                    "'import secrets; print(secrets.token_urlsafe(24))')"
                )
            register_secret(token.get_secret_value())

    def check_exposure(self) -> None:
        """Refuse to listen beyond this machine without a token."""
        if not is_loopback(self.host) and not self.tokens:
            raise ConfigurationError(
                f"refusing to serve on {self.host} without a token: anyone on the network could "
                f"use the models. Pass --token or set {ENV_TOKEN}, or bind 127.0.0.1"
            )

    def backend_choices(self, kind: str) -> list[str]:
        """The registry names a client may ask for, for ``kind``."""
        own = getattr(self.stack, kind)
        names = [own.name] if own is not None else []
        return names + [n for n in self.allowed_backends.get(kind, []) if n not in names]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> ServerSettings:
        file = Path(path)
        if not file.is_file():
            raise ConfigurationError(f"server config file not found: {file}")
        data = {**_read_mapping(file), **{k: v for k, v in overrides.items() if v is not None}}
        stack = data.get("stack")
        try:
            if isinstance(stack, dict):
                data["stack"] = Settings.from_mapping(stack, base=file.parent)
            return cls.model_validate(data)
        except ConfigurationError as exc:
            raise ConfigurationError(f"invalid server config {file}: {exc}") from exc
        except ValidationError as exc:
            raise ConfigurationError(f"invalid server config {file}: {_describe(exc)}") from exc
