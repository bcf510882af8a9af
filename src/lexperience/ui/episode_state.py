"""The podcast companion of one browser session: :class:`EpisodeSession`.

An episode (its timed transcript and, for the player, its audio), the
:class:`~lexperience.EpisodeContext` that gives the host the episode up to the listener's
position, and the :class:`~lexperience.ui.turns.ConversationView` the host answers in. When the
listener pauses, :meth:`EpisodeSession.pause` moves the context to the position and primes the
LLM with the position-dependent context while they ask (``ctx.prime``); the question then only
costs the evaluation of what depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from ..episode import Episode, EpisodeContext, format_timestamp
from ..errors import InvalidInputError
from .turns import ConversationView, Question

__all__ = ["AUDIO_SUFFIXES", "EpisodeSession", "find_audio"]

log = logging.getLogger(__name__)

#: Audio files the player looks for next to a transcript (browsers play all of these).
AUDIO_SUFFIXES = (".ogg", ".opus", ".mp3", ".m4a", ".wav", ".flac", ".webm")


def find_audio(transcript: Path, episode: Episode, audio: Path | None = None) -> Path | None:
    """The episode's audio: ``audio`` if given, else the transcript's ``audio`` field (relative
    to the transcript), else a file with the transcript's name and an audio suffix."""
    if audio is not None:
        if not audio.is_file():
            raise InvalidInputError(f"episode audio not found: {audio}")
        return audio
    if episode.audio and "://" not in episode.audio:
        named = transcript.parent / episode.audio
        if named.is_file() and named.resolve().parent == transcript.parent.resolve():
            return named
    for suffix in AUDIO_SUFFIXES:
        sibling = transcript.with_suffix(suffix)
        if sibling.is_file():
            return sibling
    return None


class EpisodeSession:
    """An episode being listened to, and the host who answers about it.

    Args:
        episode: the transcript and metadata.
        audio: the audio file the browser plays (``None``: the listener types the position).
        view: the host's conversation, whose context includes ``context``.
        context: the episode context provider of that conversation.
    """

    def __init__(
        self,
        episode: Episode,
        audio: Path | None,
        view: ConversationView,
        context: EpisodeContext,
    ) -> None:
        self.episode = episode
        self.audio = audio
        self.view = view
        self.context = context
        self.primed_at: float | None = None  # the position the LLM was last primed for
        self._prime_task: asyncio.Task[None] | None = None

    @staticmethod
    def read(transcript: Path, audio: Path | None = None) -> tuple[Episode, Path | None]:
        """Load a transcript (any format :meth:`Episode.load` reads) and find its audio."""
        episode = Episode.load(transcript)
        return episode, find_audio(transcript, episode, audio)

    # -- the listener's position --------------------------------------------------------------------
    @property
    def position(self) -> float:
        return self.context.position

    def pause(self, position: float) -> None:
        """The listener paused at ``position`` seconds: move there and, in the background,
        evaluate the context for it (a new pause while that runs re-primes afterwards)."""
        self.context.position = position
        if self._prime_task is None or self._prime_task.done():
            self._prime_task = asyncio.ensure_future(self._prime())

    async def _prime(self) -> None:
        conv = self.view.conversation
        while self.primed_at != self.context.position:
            if self.view.running:
                return  # a turn is answering: it evaluates its own context
            target = self.context.position
            try:
                await conv.aopen()
                await self.context.prime(conv)
            except Exception as exc:  # priming only saves time: a failure costs nothing else
                log.warning("priming the episode context failed: %s", exc)
                return
            self.primed_at = target

    async def ask(
        self, question: Question, *, position: float | None, played: float | None
    ) -> AsyncGenerator[None, None]:
        """Ask the host at ``position`` (default: where the listener paused last)."""
        if position is not None:
            self.context.position = position
        async with contextlib.aclosing(self.view.ask(question, played=played)) as updates:
            async for _ in updates:
                yield

    async def close(self) -> None:
        if self._prime_task is not None and not self._prime_task.done():
            self._prime_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prime_task
        await self.view.close()

    # -- what the tab shows -------------------------------------------------------------------------
    def describe(self) -> str:
        """A Markdown line about the episode."""
        ep = self.episode
        title = f"**{ep.title}**" if ep.title else "An episode"
        parts = [title + (f" — *{ep.show}*" if ep.show else "")]
        people = []
        if ep.host:
            people.append(f"host {ep.host}")
        if ep.guests:
            people.append("with " + ", ".join(ep.guests))
        if people:
            parts.append(", ".join(people))
        parts.append(f"{format_timestamp(ep.length)} long, {len(ep.segments)} transcript segments")
        if self.audio is None:
            parts.append("no audio: type the position you are at")
        return " · ".join(parts)

    def status(self) -> str:
        return f"Paused at **{format_timestamp(self.position)}**" + (
            " — ready for your question" if self.primed_at == self.position else ""
        )

    def passages(self) -> list[list[Any]]:
        """The moments the last answer drew on: [time, speaker, text, score] rows."""
        brief = self.context.last
        if brief is None:
            return []
        rows: list[list[Any]] = [
            [
                p.timestamp,
                p.speaker or "",
                p.text + (" …" if p.truncated else ""),
                round(p.score, 2),
            ]
            for p in brief.passages
        ]
        if brief.recent:
            first, last = brief.recent[0], brief.recent[-1]
            rows.append(
                [
                    f"{format_timestamp(first.start)}–{format_timestamp(brief.position)}",
                    "(the minutes before the pause)",
                    f"{len(brief.recent)} segments, up to “{_tail(last.text)}”",
                    None,
                ]
            )
        return rows


def _tail(text: str, words: int = 8) -> str:
    parts = text.split()
    return ("… " if len(parts) > words else "") + " ".join(parts[-words:])
