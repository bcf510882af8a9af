"""The ``lexperience`` command line.

Commands:
    lexperience reply QUESTION.wav -o OUT/     answer a recorded question (or --text "...")
    lexperience reply --episode EP.vtt --at 12:34 QUESTION.wav   ask the host about an episode
    lexperience episode transcribe AUDIO -o EP.json              transcribe an episode
    lexperience episode search EP.json --at 12:34 "..."          what the companion retrieves
    lexperience backends                       list backends, whether installed, keys set
    lexperience serve [--workers N]            the HTTP + WebSocket service
    lexperience ui                             the Gradio app in the browser
    lexperience live                           talk through the microphone and loudspeaker

Exit codes:
    0 success; 1 unexpected internal error; 2 bad command-line usage; 3 configuration problem
    (unknown backend, missing extra, missing API key, bad config or persona file); 4 unusable input
    (empty, silent, corrupt or oversized audio, empty or oversized text); 5 a backend failed
    (network, service error, timeout); 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import registry
from ._version import __version__
from .cli_episode import (
    add_episode_parser,
    add_reply_options,
    describe_context,
    episode_context,
    run_episode,
)
from .cli_live import add_live_parser, run_live
from .cli_serve import add_serve_parser, run_serve
from .cli_ui import add_ui_parser, run_ui
from .config import BackendConfig, Settings
from .conversation import Conversation
from .errors import (
    BackendError,
    ConfigurationError,
    InvalidInputError,
    LexperienceError,
    TurnCancelledError,
)
from .events import SentenceEvent, TranscriptEvent, TurnDone, TurnInterrupted
from .media import Audio
from .persona import Persona
from .reply import Reply

__all__ = ["main"]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_CONFIG, EXIT_INPUT, EXIT_BACKEND, EXIT_SIGINT = (
    0, 1, 2, 3, 4, 5, 130,
)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lexperience",
        description="Conversational talking avatars: ask a question, get a spoken, lip-synced "
        "answer.",
        epilog="Exit codes: 0 ok, 2 usage, 3 configuration, 4 bad input, 5 backend failure, "
        "130 Ctrl-C.",
    )
    parser.add_argument("--version", action="version", version=f"lexperience {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    reply = sub.add_parser(
        "reply",
        help="answer one question (audio file or --text) and save the reply",
        description="Answer one question and write reply.wav, reply.mp4 (with an avatar) and "
        "reply.json into the output folder. Defaults to the offline local stack; choose other "
        "backends with --config or the --stt/--llm/--tts/--avatar flags.",
    )
    reply.add_argument("audio", nargs="?", type=Path, help="the question as an audio file")
    reply.add_argument("--text", help="ask in text instead of audio")
    reply.add_argument("-o", "--out", type=Path, default=Path("out"), help="output folder")
    reply.add_argument("--config", type=Path, help="settings file (TOML, YAML or JSON)")
    reply.add_argument("--persona", type=Path, help="persona file (TOML, YAML or JSON)")
    for kind in ("stt", "llm", "tts"):
        reply.add_argument(f"--{kind}", metavar="NAME", help=f"{kind} backend name")
    reply.add_argument("--avatar", metavar="NAME", help="avatar backend name, or 'none'")
    reply.add_argument(
        "--no-watermark",
        action="store_true",
        help="turn the visible AI-generated mark off (the metadata tag stays)",
    )
    reply.add_argument("--json", action="store_true", help="print reply.json to stdout at the end")
    reply.add_argument("-q", "--quiet", action="store_true", help="print only the result lines")
    add_reply_options(reply)
    add_episode_parser(sub)

    backends = sub.add_parser(
        "backends",
        help="list backends and whether they can run here",
        description="List every registered backend: its extra, whether its packages are "
        "installed, and which API-key variables are missing.",
    )
    backends.add_argument("--json", action="store_true", help="machine-readable output")
    add_serve_parser(sub)
    add_ui_parser(sub)
    add_live_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_file(args.config) if args.config else Settings()
    update: dict[str, Any] = {}
    for kind in ("stt", "llm", "tts", "avatar"):
        name = getattr(args, kind)
        if name is None:
            continue
        if kind in ("stt", "avatar") and name == "none":
            update[kind] = None
        else:
            current = getattr(settings, kind)
            same = current is not None and current.name == name
            update[kind] = current if same else BackendConfig(name=name)
    if args.text is not None and args.stt is None and args.config is None:
        update["stt"] = None  # typed question: no speech-to-text model to load
    if args.persona:
        update["persona"] = args.persona
    if args.no_watermark:
        update["watermark"] = False
    return settings.model_copy(update=update)


async def _run_reply(args: argparse.Namespace, out: TextIO, err: TextIO) -> Reply:
    if (args.audio is None) == (args.text is None):
        raise _UsageError("give either an audio file or --text, not both or neither")
    settings = _settings(args)
    persona: Persona = settings.load_persona()
    if not args.quiet:
        print(f"lexperience {__version__}: loading backends…", file=err)
    ctx = episode_context(args)
    conv: Conversation = settings.build(persona=persona, context=[ctx] if ctx else [])
    question: Audio | str = (
        args.text
        if args.text is not None
        else Audio.load(args.audio, max_seconds=settings.turn.max_input_seconds)
    )
    async with conv:
        if ctx is not None:
            # the listener paused here: evaluate the episode context while they ask
            await ctx.prime(conv)
        reply: Reply | None = None
        async with contextlib.aclosing(conv.stream(question, encode_video=True)) as events:
            async for event in events:
                if isinstance(event, TranscriptEvent):
                    print(f"You: {event.transcript.text}", file=out)
                elif isinstance(event, SentenceEvent) and not args.quiet:
                    print(f"  [{event.t * 1000:6.0f} ms] sentence {event.index}: {event.text}",
                          file=err)  # fmt: skip
                elif isinstance(event, TurnDone):
                    reply = event.reply
                elif isinstance(event, TurnInterrupted):
                    raise TurnCancelledError(event.heard_text)
    assert reply is not None
    if args.text is not None:
        print(f"You: {reply.user_text}", file=out)
    print(f"{persona.name}: {reply.text}", file=out)
    if ctx is not None and not args.quiet:
        describe_context(ctx, err)
    saved = reply.save(args.out, watermark_tag=True)
    for path in (saved.mp4, saved.wav, saved.json_path):
        if path is not None:
            print(f"wrote {path}", file=out)
    print(f"timings: {reply.metrics.summary()}", file=out)
    if args.json:
        print(saved.json_path.read_text("utf-8"), file=out)
    return reply


class _UsageError(Exception):
    pass


def _backends(args: argparse.Namespace, out: TextIO) -> None:
    rows = []
    for spec in registry.list_backends():
        rows.append(
            {
                "kind": spec.kind,
                "name": spec.name,
                "extra": spec.extra or "-",
                "installed": spec.installed,
                "missing_env": ",".join(spec.missing_env),
                "description": spec.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
        return
    print(f"{'KIND':<7} {'NAME':<15} {'EXTRA':<11} {'READY':<24} DESCRIPTION", file=out)
    for r in rows:
        if not r["installed"]:
            ready = f'pip install "lexperience[{r["extra"]}]"' if r["extra"] != "-" else "no"
            ready = "no: " + ready if len(ready) < 20 else "needs extra"
        elif r["missing_env"]:
            ready = f"set {r['missing_env']}"
        else:
            ready = "yes"
        print(
            f"{r['kind']:<7} {r['name']:<15} {r['extra']:<11} {ready:<24} {r['description']}",
            file=out,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lexperience`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        if args.command == "backends":
            _backends(args, out)
        elif args.command == "reply":
            asyncio.run(_run_reply(args, out, err))
        elif args.command == "serve":
            run_serve(args)
        elif args.command == "ui":
            run_ui(args)
        elif args.command == "episode":
            asyncio.run(run_episode(args, out, err))
        elif args.command == "live":
            asyncio.run(run_live(args, out, err))
        return EXIT_OK
    except _UsageError as exc:
        parser.error(str(exc))  # exits with 2
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_SIGINT
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=err)
        return EXIT_CONFIG
    except InvalidInputError as exc:
        print(f"invalid input: {exc}", file=err)
        return EXIT_INPUT
    except BackendError as exc:
        retry = " (retryable: try again)" if exc.retryable else ""
        print(f"backend error: {exc}{retry}", file=err)
        return EXIT_BACKEND
    except LexperienceError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_INTERNAL
    return EXIT_INTERNAL  # pragma: no cover - parser.error exits


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
