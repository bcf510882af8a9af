"""The ``lexperience episode`` commands and the ``reply --episode`` options.

Commands:
    lexperience episode transcribe AUDIO -o EP.json    transcribe an episode (resumable)
    lexperience episode search EP --at 12:34 "..."     what the companion would retrieve
    lexperience reply --episode EP --at 12:34 Q.wav    ask the host at a position
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import time
from pathlib import Path
from typing import Any, TextIO

from . import registry
from .assembly import build_backend
from .config import BackendConfig, Settings
from .episode import Episode, EpisodeContext, TranscriptionProgress, format_timestamp
from .episode.timecode import parse_timestamp
from .errors import ConfigurationError, InvalidInputError

__all__ = ["add_episode_parser", "add_reply_options", "episode_context", "run_episode"]


def _at(value: str) -> float:
    try:
        return parse_timestamp(value)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_reply_options(reply: argparse.ArgumentParser) -> None:
    """``--episode``, ``--at`` and ``--semantic`` on ``lexperience reply``."""
    group = reply.add_argument_group("podcast companion")
    group.add_argument(
        "--episode",
        type=Path,
        metavar="FILE",
        help="the episode transcript (.vtt, .srt, .json or [hh:mm:ss] text)",
    )
    group.add_argument(
        "--at",
        type=_at,
        metavar="TIME",
        help="where the listener paused: 12:34, 1:02:03 or seconds",
    )
    group.add_argument(
        "--semantic", action="store_true", help="rank passages by meaning too (the semantic extra)"
    )


def episode_context(args: argparse.Namespace) -> EpisodeContext | None:
    """The episode context the ``reply`` options ask for, or ``None``."""
    if args.episode is None:
        if args.at is not None or args.semantic:
            raise ConfigurationError("--at and --semantic need --episode FILE")
        return None
    if args.at is None:
        raise ConfigurationError(
            "--episode needs --at TIME: where the listener paused (nothing after it is used)"
        )
    episode = Episode.load(args.episode)
    return EpisodeContext(episode, position=args.at, semantic=args.semantic)


def describe_context(ctx: EpisodeContext, out: TextIO) -> None:
    """The moments the last reply drew on, one line each."""
    brief = ctx.last
    if brief is None:
        return
    since = f"from {format_timestamp(brief.recent[0].start)} " if brief.recent else ""
    print(
        f"  episode context: the transcript {since}up to the pause at "
        f"{format_timestamp(brief.position)}, ~{brief.tokens} tokens",
        file=out,
    )
    for passage in sorted(brief.passages, key=lambda p: p.start):
        who = passage.speaker or "Speaker"
        text = passage.text if len(passage.text) <= 70 else passage.text[:69] + "…"
        print(f"  drew on [{passage.timestamp}] {who}: {text}", file=out)


def add_episode_parser(sub: Any) -> None:
    """The ``episode`` command and its subcommands."""
    episode = sub.add_parser(
        "episode",
        help="podcast episodes: transcribe audio, search a transcript",
        description="Work with podcast episodes for the companion (see 'reply --episode').",
    )
    cmds = episode.add_subparsers(dest="episode_command", metavar="SUBCOMMAND")
    cmds.required = True

    tr = cmds.add_parser(
        "transcribe",
        help="transcribe an episode's audio into a timed transcript",
        description="Transcribe long audio in pieces with an STT backend (default: the offline "
        "faster-whisper). The work is checkpointed next to the output (OUT.partial): run the "
        "same command again to resume after a stop.",
    )
    tr.add_argument("audio", type=Path, help="the episode audio (mp3, m4a, ogg, wav, ...)")
    tr.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        help="output file: .json (everything), .vtt or .srt",
    )
    tr.add_argument("--stt", metavar="NAME", help="STT backend name (default: faster-whisper)")
    tr.add_argument("--config", type=Path, help="settings file whose [stt] section to use")
    tr.add_argument("--language", help="ISO 639-1 code of the spoken language (default: en)")
    tr.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        help="length of the pieces sent to the STT (default 30)",
    )
    tr.add_argument("--title")
    tr.add_argument("--show")
    tr.add_argument("--host")
    tr.add_argument("--guest", action="append", default=[], help="a guest's name (repeatable)")
    tr.add_argument("--speaker", help="the one speaker of a monologue, set on every segment")
    tr.add_argument("--restart", action="store_true", help="ignore a checkpoint and start over")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    se = cmds.add_parser(
        "search",
        help="show the passages the companion would retrieve at a position",
        description="Search an episode up to a position, as the companion does each turn.",
    )
    se.add_argument("episode", type=Path, help="the episode transcript")
    se.add_argument("question", help="the question")
    se.add_argument("--at", type=_at, required=True, metavar="TIME", help="the position")
    se.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    se.add_argument("--semantic", action="store_true", help="rank by meaning too")
    se.add_argument("--json", action="store_true", help="machine-readable output")


async def run_episode(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    if args.episode_command == "transcribe":
        await _transcribe(args, out, err)
    elif args.episode_command == "search":
        _search(args, out)


def _stt(args: argparse.Namespace) -> Any:
    settings = Settings.from_file(args.config) if args.config else Settings()
    cfg = settings.stt or BackendConfig(name="faster-whisper")
    if args.stt is not None and args.stt != cfg.name:
        cfg = BackendConfig(name=args.stt)
    options = dict(cfg.options)
    params = inspect.signature(registry.get_spec("stt", cfg.name).load()).parameters
    if "word_timestamps" in params:
        options.setdefault("word_timestamps", True)  # sentence segments with word timings
    return build_backend("stt", cfg.name, settings.load_persona(), options)


async def _transcribe(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    if args.out.suffix.lower() not in (".json", ".vtt", ".webvtt", ".srt"):
        raise ConfigurationError(f"-o must end in .json, .vtt or .srt, got {args.out.name}")
    checkpoint = args.out.with_name(args.out.name + ".partial")
    if args.restart:
        checkpoint.unlink(missing_ok=True)
    stt = _stt(args)
    bar = _ProgressBar(err) if not args.quiet and err.isatty() else _ProgressLines(err, args.quiet)
    metadata = {
        k: v for k, v in (("title", args.title), ("show", args.show), ("host", args.host)) if v
    }
    if args.guest:
        metadata["guests"] = tuple(args.guest)
    opener = getattr(stt, "aopen", None)
    if opener is not None:
        await opener()
    try:
        episode = await Episode.atranscribe(
            args.audio,
            stt=stt,
            chunk_seconds=args.chunk_seconds,
            language=args.language,
            speaker=args.speaker,
            checkpoint=checkpoint,
            progress=bar,
            **metadata,
        )
    finally:
        bar.close()
        closer = getattr(stt, "aclose", None)
        if closer is not None:
            await closer()
    path = episode.save(args.out)
    print(f"wrote {path}: {len(episode)} segments, {format_timestamp(episode.length)}", file=out)


def _search(args: argparse.Namespace, out: TextIO) -> None:
    episode = Episode.load(args.episode)
    if args.semantic:
        episode.use_embeddings()
    passages = episode.search(args.question, before=args.at, k=args.k)
    if args.json:
        print(json.dumps([p.model_dump() for p in passages], indent=1), file=out)
        return
    if not passages:
        print(f"nothing before {format_timestamp(args.at)} matches the question", file=out)
    for p in passages:
        cut = " (cut at the position)" if p.truncated else ""
        print(
            f"[{p.timestamp}] {p.speaker or 'Speaker'} (score {p.score:.3f}){cut}: {p.text}",
            file=out,
        )


class _ProgressLines:
    """Progress as plain lines (not a terminal): one every 10% or minute of audio."""

    def __init__(self, err: TextIO, quiet: bool) -> None:
        self.err, self.quiet, self.last = err, quiet, -1.0

    def __call__(self, p: TranscriptionProgress) -> None:
        mark = (p.fraction or 0.0) * 10 if p.total else p.done / 60
        if not self.quiet and int(mark) != int(self.last):
            print(f"transcribed {_where(p)}", file=self.err)
        self.last = mark

    def close(self) -> None:
        pass


class _ProgressBar(_ProgressLines):
    """A one-line progress bar on a terminal."""

    def __init__(self, err: TextIO) -> None:
        super().__init__(err, False)
        self.started = time.perf_counter()

    def __call__(self, p: TranscriptionProgress) -> None:
        width = 30
        filled = int(width * (p.fraction or 0.0))
        bar = "#" * filled + "." * (width - filled)
        speed = (p.done - p.resumed_from) / max(p.elapsed, 1e-6)
        self.err.write(f"\r[{bar}] {_where(p)}  {speed:.1f}x real time ")
        self.err.flush()

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.err.write("\n")


def _where(p: TranscriptionProgress) -> str:
    total = f" / {format_timestamp(p.total)}" if p.total else ""
    percent = f" ({p.fraction * 100:.0f}%)" if p.fraction is not None else ""
    return f"{format_timestamp(p.done)}{total}{percent}, {p.segments} segments"
