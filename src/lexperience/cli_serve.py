"""``lexperience serve``: the HTTP + WebSocket service (one process, or N workers behind nginx)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ._optional import require
from .config import BackendConfig
from .errors import ConfigurationError

__all__ = ["add_serve_parser", "run_serve"]


def add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the HTTP + WebSocket service",
        description="Serve conversations over HTTP and WebSocket (see the Service docs). "
        "Defaults to the offline stack on 127.0.0.1:8000; any other host needs --token.",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000; 0: any free)")
    serve.add_argument("--token", action="append", metavar="TOKEN",
                       help="bearer token clients must send (repeatable; default "
                            "LEXPERIENCE_TOKEN)")  # fmt: skip
    serve.add_argument("--config", type=Path, help="server settings file (TOML, YAML or JSON)")
    for kind in ("stt", "llm", "tts", "avatar"):
        serve.add_argument(f"--{kind}", metavar="NAME", help=f"default {kind} backend name")
    serve.add_argument("--personas", type=Path, metavar="DIR",
                       help="folder of persona files clients may pick by name")  # fmt: skip
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes behind nginx, pinned by conversation id")  # fmt: skip
    serve.add_argument("--worker-id", help=argparse.SUPPRESS)
    serve.add_argument("--freeze-heap", action=argparse.BooleanOptionalAction, default=None,
                       help="gc.freeze() once the models are loaded, for shorter garbage "
                            "collector pauses (default: the config's freeze_heap, else on)")  # fmt: skip
    serve.add_argument("--log-format", choices=("text", "json"), help="log lines as text or JSON")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))


def _settings(args: argparse.Namespace) -> Any:
    from .server.settings import ServerSettings

    overrides: dict[str, Any] = {
        "host": args.host, "port": args.port, "worker_id": args.worker_id,
        "log_format": args.log_format, "freeze_heap": args.freeze_heap,
        "personas_dir": str(args.personas) if args.personas else None,
    }  # fmt: skip
    if args.token:
        overrides["tokens"] = [SecretStr(t) for t in args.token]
    if args.config:
        settings = ServerSettings.from_file(args.config, **overrides)
    else:
        settings = ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    stack = settings.stack
    update: dict[str, Any] = {}
    for kind in ("stt", "llm", "tts", "avatar"):
        name = getattr(args, kind)
        if name is not None:
            update[kind] = (
                None if name == "none" and kind in ("stt", "avatar") else BackendConfig(name=name)
            )
    if update:
        settings = settings.model_copy(update={"stack": stack.model_copy(update=update)})
    if args.freeze_heap is None and "freeze_heap" not in settings.model_fields_set:
        # a service process: on unless asked otherwise (create_app alone leaves it off)
        settings = settings.model_copy(update={"freeze_heap": True})
    return settings


def _logging(settings: Any, level: str) -> None:
    from .server.http import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("lexperience")
    root.handlers = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def run_serve(args: argparse.Namespace) -> None:
    """Run the service until Ctrl-C or SIGTERM (running turns get ``shutdown_grace`` seconds)."""
    require("uvicorn", "server", feature="lexperience serve")
    settings = _settings(args)
    settings.check_exposure()
    _logging(settings, args.log_level)
    if args.workers > 1:
        from .server.workers import run_workers

        code = run_workers(settings, args.workers)
        if code:
            raise ConfigurationError("the service stopped: nginx exited")
        return
    import uvicorn

    from .server.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ws_max_size=max(settings.max_request_bytes, 1024 * 1024),
        ws_per_message_deflate=False,  # media (base64 PCM, JPEG) does not compress: save the CPU
        timeout_graceful_shutdown=int(settings.shutdown_grace) or None,
        lifespan="on",
    )
    uvicorn.Server(config).run()
