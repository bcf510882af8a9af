"""``lexperience live``: talk to the host through the microphone and loudspeaker.

The host listens continuously, answers when you stop speaking, and stops when you talk over it.
Transcripts and replies are printed as they happen; Ctrl-C ends the session. The loudspeaker's
signal goes to the session as the echo reference, so the host does not interrupt itself.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from .config import BackendConfig, Settings
from .errors import ConfigurationError
from .events import (
    ErrorEvent,
    FalseInterruption,
    InterimTranscript,
    SentenceEvent,
    SpeechStarted,
    TranscriptEvent,
    TurnDone,
    TurnInterrupted,
)
from .live.options import LiveOptions
from .persona import _describe

__all__ = ["add_live_flags", "add_live_parser", "live_options", "run_live"]


def add_live_flags(parser: Any) -> None:
    """The turn-taking flags of ``lexperience live`` (and of the app's Live tab, ``ui``)."""
    parser.add_argument("--end-of-turn", type=float, metavar="SECONDS",
                        help="silence that ends your turn (default 0.5)")  # fmt: skip
    parser.add_argument("--preemptive", action=argparse.BooleanOptionalAction, default=None,
                        help="start replies during the end-of-turn silence (default: on for a "
                             "local LLM, off for a cloud one)")  # fmt: skip
    parser.add_argument("--no-barge-in", action="store_true", help="do not let speech interrupt")


def live_options(args: argparse.Namespace) -> LiveOptions:
    """The :class:`LiveOptions` of :func:`add_live_flags`' flags; a bad value is a
    :class:`ConfigurationError` (exit code 3)."""
    options: dict[str, Any] = {"preemptive": args.preemptive, "barge_in": not args.no_barge_in}
    eot = args.end_of_turn if args.end_of_turn is not None else LiveOptions().end_of_turn_silence
    try:
        return LiveOptions.with_end_of_turn(eot, **options)
    except ValidationError as exc:
        raise ConfigurationError(f"--end-of-turn {eot}: {_describe(exc)}") from None


def add_live_parser(sub: Any) -> None:
    live = sub.add_parser(
        "live",
        help="talk with the host through the microphone and loudspeaker",
        description="A continuous conversation: the host answers when you stop speaking and "
        "stops when you talk over it. Defaults to the offline stack without an avatar; needs "
        'pip install "lexperience[live]" and an audio device.',
    )
    live.add_argument("--config", type=Path, help="settings file (TOML, YAML or JSON)")
    live.add_argument("--persona", type=Path, help="persona file (TOML, YAML or JSON)")
    for kind in ("stt", "llm", "tts"):
        live.add_argument(f"--{kind}", metavar="NAME", help=f"{kind} backend name")
    add_live_flags(live)
    live.add_argument("--input-device", metavar="DEVICE", help="microphone (number or name)")
    live.add_argument("--output-device", metavar="DEVICE", help="loudspeaker (number or name)")
    live.add_argument("--list-devices", action="store_true", help="list audio devices and exit")


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _conversation(args: argparse.Namespace) -> Any:
    settings = Settings.from_file(args.config) if args.config else Settings()
    update: dict[str, Any] = {"avatar": None}  # the terminal shows no video
    for kind in ("stt", "llm", "tts"):
        name = getattr(args, kind)
        if name is not None:
            current = getattr(settings, kind)
            same = current is not None and current.name == name
            update[kind] = current if same else BackendConfig(name=name)
    if args.persona:
        update["persona"] = args.persona
    return settings.model_copy(update=update).build()


async def run_live(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from .live import LiveSession
    from .live.device import SoundDevice

    if args.list_devices:
        print(SoundDevice.list_devices(), file=out)
        return
    options = live_options(args)  # bad flags fail first
    # then the device: no point loading models without a microphone
    device = SoundDevice(
        input_device=_device(args.input_device), output_device=_device(args.output_device)
    )
    conv = _conversation(args)
    print("loading models…", file=err)
    async with conv:
        session = LiveSession(conv, options, played=device.played)
        name = conv.persona.name
        print(f"{name} is listening (Ctrl-C to stop)", file=err)
        events = session.run(device.microphone())
        async with contextlib.aclosing(events):
            async for event in events:
                device.hear(event)
                _show(event, name, out, err)


def _show(event: Any, name: str, out: TextIO, err: TextIO) -> None:
    if isinstance(event, SpeechStarted) and event.while_replying:
        print("  (you are talking over the reply)", file=err)
    elif isinstance(event, InterimTranscript):
        print(f"  … {event.text}", file=err)
    elif isinstance(event, TranscriptEvent):
        print(f"You: {event.transcript.text}", file=out)
    elif isinstance(event, SentenceEvent):
        print(f"{name}: {event.text}", file=out)
    elif isinstance(event, TurnInterrupted):
        print(f"  (interrupted after {event.played_seconds:.1f} s)", file=err)
    elif isinstance(event, FalseInterruption):
        print("  (not an interruption: going on)" if event.resumed else "  (stopped)", file=err)
    elif isinstance(event, TurnDone):
        print(f"  [{event.reply.metrics.summary()}]", file=err)
    elif isinstance(event, ErrorEvent):
        print(f"  error: {event.error}", file=err)
