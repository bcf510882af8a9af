"""``lexperience ui``: the Gradio app (chat with the host; the podcast episode player)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from . import registry
from ._optional import is_installed, require
from .cli_live import add_live_flags, live_options
from .config import Settings
from .errors import ConfigurationError, MissingDependencyError

__all__ = ["add_ui_parser", "run_ui"]

ENV_AUTH = "LEXPERIENCE_UI_AUTH"


def add_ui_parser(sub: Any) -> None:
    ui = sub.add_parser(
        "ui",
        help="open the Gradio app in the browser",
        description="Talk to the host in the browser (record, upload or type a question; the "
        "reply plays while it is made), or play a podcast episode and ask the host about it. "
        "Backends as for `lexperience reply`: the offline stack by default, --config or the "
        "--stt/--llm/--tts/--avatar flags for others.",
    )
    ui.add_argument("--config", type=Path, help="settings file (TOML, YAML or JSON)")
    ui.add_argument("--persona", type=Path, help="persona file (TOML, YAML or JSON)")
    ui.add_argument("--personas", type=Path, metavar="DIR",
                    help="folder of persona files offered in the persona picker")  # fmt: skip
    for kind in ("stt", "llm", "tts"):
        ui.add_argument(f"--{kind}", metavar="NAME", help=f"{kind} backend name")
    ui.add_argument("--avatar", metavar="NAME", help="avatar backend name, or 'none'")
    ui.add_argument("--episode", type=Path, metavar="TRANSCRIPT",
                    help="episode the player opens with (default: the sample episode)")  # fmt: skip
    ui.add_argument("--episode-audio", type=Path, metavar="AUDIO",
                    help="its audio (default: found next to the transcript)")  # fmt: skip
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    ui.add_argument("--auth", metavar="USER:PASSWORD",
                    help=f"log-in the page asks for (default {ENV_AUTH}); needed for any "
                         "host but loopback")  # fmt: skip
    ui.add_argument("--max-turns", type=int, metavar="N",
                    help="turns computing at once over all sessions (default: CPU cores)")  # fmt: skip
    add_live_flags(ui)  # the Live tab's turn-taking, as for `lexperience live`
    # the same settings rules as `lexperience reply` (cli._settings reads these too)
    ui.set_defaults(text=None, no_watermark=False)


def _auth(args: argparse.Namespace) -> tuple[str, str] | None:
    raw = args.auth or os.environ.get(ENV_AUTH)
    if not raw:
        return None
    user, sep, password = raw.partition(":")
    if not sep or not user or len(password) < 8:
        raise ConfigurationError("--auth must be USER:PASSWORD with a password of 8+ characters")
    return user, password


def run_ui(args: argparse.Namespace) -> None:
    """Serve the app until Ctrl-C."""
    require("gradio", "ui", feature="lexperience ui")
    from .cli import _settings
    from .server.settings import is_loopback
    from .ui import UIConfig, serve

    auth = _auth(args)
    if not is_loopback(args.host) and auth is None:
        raise ConfigurationError(
            f"refusing to serve the app on {args.host} without a log-in: anyone on the network "
            f"could use the models. Pass --auth USER:PASSWORD (or set {ENV_AUTH}), or bind "
            "127.0.0.1"
        )
    settings = _settings(args)
    settings.load_persona()  # a bad persona file fails now, with exit code 3
    _check_backends(settings)
    update: dict[str, Any] = {"stack": settings}
    if args.personas is not None:
        if not args.personas.is_dir():
            raise ConfigurationError(f"--personas: not a folder: {args.personas}")
        update["personas_dir"] = args.personas
    if args.episode is not None:
        if not args.episode.is_file():
            raise ConfigurationError(f"--episode: transcript not found: {args.episode}")
        update["episode"] = args.episode
        update["episode_audio"] = args.episode_audio
    if args.max_turns is not None:
        update["max_concurrent_turns"] = args.max_turns
    update["live"] = live_options(args)
    config = UIConfig(**update)
    _logging()
    where = f"http://{args.host}:{args.port}/"
    print(f"lexperience ui: loading the backends; open {where}", file=sys.stderr)
    serve(config, host=args.host, port=args.port, auth=auth)


def _check_backends(settings: Settings) -> None:
    """Unknown backend names and missing extras fail before the page is served (exit code 3);
    the models themselves load in the background once it is."""
    for kind in ("stt", "llm", "tts", "avatar"):
        cfg = getattr(settings, kind)
        if cfg is None:
            continue
        spec = registry.get_spec(kind, cfg.name)
        if not spec.installed and spec.extra:
            missing = next((m for m in spec.requires if not is_installed(m)), spec.requires[0])
            raise MissingDependencyError(
                module=missing, extra=spec.extra, feature=f"the {kind} backend {cfg.name!r}"
            )


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("lexperience")
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.INFO)
