"""The podcast companion's context provider: :class:`EpisodeContext`.

Each turn it gives the LLM two system messages, within a token budget:

1. what the episode is, where the listener paused, how to answer (cite moments, never reveal
   what comes later, say plainly when the episode has not covered the question yet), and the
   last few minutes before the pause, each line with its timestamp ("[12:31] Tamsin Okoro: ...");
2. the passages from earlier in the episode that best match the question, with timestamps,
   unless the recent minutes match it better (a question about what was just said adds
   nothing, and costs the turn no extra prompt evaluation).

The first message depends only on the position, so it can be evaluated ahead of the question
(:meth:`EpisodeContext.prime`, when the listener pauses); the second depends on the question.
Nothing said after the position reaches the LLM: both parts go through the episode's cut rule.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..context import StaticContext, TurnContext, as_messages, estimate_tokens
from ..errors import ConfigurationError, InvalidInputError
from ..messages import Message
from ..persona import Persona
from .episode import Episode
from .segments import Passage, Segment
from .timecode import format_timestamp

__all__ = ["DEFAULT_BUDGET_TOKENS", "DEFAULT_PASSAGE_TOKENS", "EpisodeBrief", "EpisodeContext"]

log = logging.getLogger(__name__)

#: The default token budget of the episode context. llama.cpp evaluates SmolLM2-135M's prompt
#: at ~300 tokens/s on a 2-core CPU, so every 100 tokens cost ~0.35 s before the first word:
#: kept small (see the Podcast companion guide for the measurements).
DEFAULT_BUDGET_TOKENS = 360
#: The default share of it for the passages retrieved per question (see ``passage_tokens``).
DEFAULT_PASSAGE_TOKENS = 100
_MIN_PIECE_TOKENS = 12  # a line or passage cut shorter than this is left out


@dataclass(frozen=True)
class EpisodeBrief:
    """What one turn was told about the episode (kept in :attr:`EpisodeContext.last`).

    Attributes:
        position: where the listener was, in seconds.
        recent: the segments of the "just before the pause" part (cut at the position).
        passages: the earlier passages that matched the question, best first.
        messages: the system messages handed to the LLM.
    """

    position: float
    recent: tuple[Segment, ...]
    passages: tuple[Passage, ...]
    messages: tuple[Message, ...] = field(default=())

    @property
    def tokens(self) -> int:
        """The estimated tokens of :attr:`messages`."""
        return sum(estimate_tokens(m.content) for m in self.messages)


class EpisodeContext:
    """Gives the persona the episode up to the listener's position, each turn.

    Args:
        episode: the episode being listened to.
        position: where the listener is, in seconds (set :attr:`position` as they play/seek).
        recent_seconds: how far back the "just before the pause" part reaches.
        passages: the most earlier passages retrieved for the question.
        budget_tokens: the most tokens (estimated, ~4 characters each) of both messages.
        passage_tokens: the part of the budget kept for the passages retrieved for the
            question (the second message, the only part a turn has to evaluate after a
            :meth:`prime`); the instructions and the recent minutes get the rest.
        semantic: rank passages by meaning too (the ``semantic`` extra; see
            :meth:`Episode.use_embeddings`).

    ``conv = Conversation(..., context=[ctx])``, then ``ctx.position = 754.0`` before each
    question. A position past the end is the end; a negative one raises
    :class:`~lexperience.errors.InvalidInputError` (the position is left unchanged).
    """

    def __init__(
        self,
        episode: Episode,
        *,
        position: float = 0.0,
        recent_seconds: float = 120.0,
        passages: int = 2,
        budget_tokens: int = DEFAULT_BUDGET_TOKENS,
        passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
        semantic: bool = False,
    ) -> None:
        if not isinstance(episode, Episode):
            raise ConfigurationError(f"episode must be an Episode, got {type(episode).__name__}")
        if not (isinstance(recent_seconds, (int, float)) and 0 <= recent_seconds < math.inf):
            raise ConfigurationError(f"recent_seconds must be >= 0, got {recent_seconds!r}")
        if isinstance(passages, bool) or not isinstance(passages, int) or passages < 0:
            raise ConfigurationError(f"passages must be an integer >= 0, got {passages!r}")
        if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int):
            raise ConfigurationError(f"budget_tokens must be an integer, got {budget_tokens!r}")
        if budget_tokens < 64:
            raise ConfigurationError(f"budget_tokens must be at least 64, got {budget_tokens}")
        if isinstance(passage_tokens, bool) or not isinstance(passage_tokens, int):
            raise ConfigurationError(f"passage_tokens must be an integer, got {passage_tokens!r}")
        if not 0 <= passage_tokens < budget_tokens:
            raise ConfigurationError(
                f"passage_tokens must be >= 0 and below budget_tokens, got {passage_tokens}"
            )
        self.episode = episode
        self.recent_seconds = float(recent_seconds)
        self.passages = passages
        self.budget_tokens = budget_tokens
        self.passage_tokens = passage_tokens
        self.semantic = semantic
        self._position = 0.0
        self.position = position
        # the fixed instructions (longest form) plus room for at least one line of transcript
        needed = (
            estimate_tokens(self._header(episode.length, None) + "You are the host. ")
            + 24
            + (passage_tokens if passages else 0)
        )
        if budget_tokens < needed:
            raise ConfigurationError(
                f"budget_tokens={budget_tokens} is too small for this episode: its "
                f"instructions and the passages take ~{needed - 24} tokens; use at least {needed}"
            )
        #: What the last turn was given (``None`` before the first turn): for UIs that show
        #: the moments the answer drew on.
        self.last: EpisodeBrief | None = None
        self._prepared = False

    # -- the listener's position --------------------------------------------------------------
    @property
    def position(self) -> float:
        """Where the listener is, in seconds (clamped to the episode's length)."""
        return self._position

    @position.setter
    def position(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise InvalidInputError(f"the position must be a number of seconds, got {seconds!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise InvalidInputError(f"the position must be >= 0 seconds, got {seconds}")
        length = self.episode.length
        if seconds > length:
            log.debug("position %.1f s is past the end (%.1f s): using the end", seconds, length)
        self._position = min(float(seconds), length)

    # -- preparing the index ------------------------------------------------------------------
    def prepare(self) -> None:
        """Build the search index (and embeddings, with ``semantic``) now, blocking; otherwise
        the first turn does it in a worker thread."""
        if self._prepared:
            return
        if self.semantic and self.episode.embedder is None:
            self.episode.use_embeddings()
        self.episode.index()
        self._prepared = True

    # -- the provider -------------------------------------------------------------------------
    async def provide(self, turn: TurnContext) -> list[Message]:
        """The episode messages for this turn (see the module docs)."""
        if not self._prepared:
            await asyncio.to_thread(self.prepare)
        brief = self.brief(turn.user_text, persona=turn.persona)
        self.last = brief
        return list(brief.messages)

    def brief(self, question: str, *, persona: Persona | None = None) -> EpisodeBrief:
        """Build what a turn asking ``question`` at the current position is told."""
        position = self._position
        header = self._header(position, persona)
        left = self.budget_tokens - estimate_tokens(header)
        if left < _MIN_PIECE_TOKENS:  # (the constructor makes sure this does not happen)
            return EpisodeBrief(position, (), (), (Message.system(header),))
        recent_budget = left - (self.passage_tokens if self.passages else 0)
        recent, recent_text = self._recent(position, recent_budget)
        stable = header + ("\n\nJust before the pause:\n" + recent_text if recent_text else "")
        left = self.budget_tokens - estimate_tokens(stable)
        window_start = recent[0].start if recent else position
        passages: list[Passage] = []
        messages = [Message.system(stable)]
        if self.passages and question.strip() and position > 0:
            found = self._earlier(question, position, window_start)
            head = "Earlier moments that match the question:"
            room = min(left, self.passage_tokens) - estimate_tokens(head) - 1
            body, passages = self._passages(found, room)
            if body:
                messages.append(Message.system(head + "\n" + body))
        return EpisodeBrief(position, tuple(recent), tuple(passages), tuple(messages))

    def _earlier(self, question: str, position: float, window_start: float) -> list[Passage]:
        """The best passages from before the recent minutes, ranked over everything heard,
        down to the first match that lies in the recent minutes: when what was just said
        matches the question best, it is already in the context and nothing is added."""
        found: list[Passage] = []
        for passage in self.episode.search(question, before=position, k=self.passages + 8):
            if passage.end > window_start:
                break
            found.append(passage)
            if len(found) == self.passages:
                break
        return found

    async def prime(self, conversation: Any) -> bool:
        """Evaluate the position-dependent part of the context into the LLM's prompt cache now
        (call it when the listener pauses, while they ask), so the turn evaluates only the
        question-dependent part. Works with LLM backends that have ``aprime`` (llama-cpp);
        returns whether it primed. ``conversation`` is the :class:`~lexperience.Conversation`
        this provider belongs to."""
        llm = getattr(getattr(conversation, "backends", None), "llm", None)
        primer = getattr(llm, "aprime", None)
        persona = getattr(conversation, "persona", None)
        if primer is None or not isinstance(persona, Persona):
            return False
        if not self._prepared:
            await asyncio.to_thread(self.prepare)
        prefix = persona.prompt_messages()
        turn = TurnContext(0, "", (), persona)
        for provider in getattr(conversation, "context", ()):
            if provider is self:
                break
            if not isinstance(provider, StaticContext):
                return False  # an earlier provider may change per turn: its text is unknown
            prefix.extend(as_messages(await provider.provide(turn)))
        # the turn's prompt: the static prefix, the history, then this per-turn context
        prefix.extend(getattr(conversation, "history", ()))
        prefix.append(self.brief("", persona=persona).messages[0])
        await primer(prefix)
        return True

    # -- rendering ----------------------------------------------------------------------------
    def _label(self, speaker: str | None) -> str:
        return speaker or "Speaker"

    def _header(self, position: float, persona: Persona | None) -> str:
        ep = self.episode
        at = format_timestamp(position)
        about = [f"host {ep.host}"] if ep.host else []
        if ep.guests:
            about.append(("guests " if len(ep.guests) > 1 else "guest ") + ", ".join(ep.guests))
        if ep.show:
            about.insert(0, ep.show)
        name = f'"{ep.title}"' if ep.title else "the episode"
        what = f"{name} ({'; '.join(about)})" if about else name
        you = ""
        if persona is not None and ep.host and persona.name.casefold() == ep.host.casefold():
            you = "You are the host. "
        first = (
            f"{you}The listener is playing {what} and paused at {at} of "
            f"{format_timestamp(ep.length)} to ask you something."
        )
        if not any(seg.cut(position) for seg in _started(ep.segments, position)):
            return (
                f"{first} Nothing has been said yet: if the question is about the episode, say "
                "plainly that it has not covered that yet."
            )
        return (
            f"{first} The excerpts below are all you know of the episode and stop at {at}: "
            'never guess or hint at what comes later. Say when things were said ("around '
            f'{at} {self._speaker_example()} said..."). If the excerpts do not answer the '
            "question, say plainly that the episode has not covered that yet."
        )

    def _speaker_example(self) -> str:
        ep = self.episode
        if ep.guests:
            return "our guest"
        return "I"

    def _recent(self, position: float, budget: int) -> tuple[list[Segment], str]:
        """The segments just before ``position`` that fit ``budget`` tokens, and their lines."""
        since = max(0.0, position - self.recent_seconds)
        heard: list[tuple[Segment, bool]] = []  # (segment as heard, cut at the position)
        for seg in self.episode.segments:
            if seg.start >= position:
                break
            if seg.end > since and (part := seg.cut(position)) is not None:
                heard.append((part, part is not seg))
        chosen: list[tuple[Segment, bool]] = []
        used = estimate_tokens("\n\nJust before the pause:\n")
        for seg, cut in reversed(heard):
            cost = estimate_tokens(self._line(seg.start, seg.speaker, seg.text + " …")) + 1
            if used + cost > budget:
                break
            chosen.append((seg, cut))
            used += cost
        chosen.reverse()
        lines: list[str] = []
        run: list[tuple[Segment, bool]] = []
        for item in chosen:
            if run and item[0].speaker != run[0][0].speaker:
                lines.append(self._run_line(run))
                run = []
            run.append(item)
        if run:
            lines.append(self._run_line(run))
        return [seg for seg, _ in chosen], "\n".join(lines)

    def _run_line(self, run: Sequence[tuple[Segment, bool]]) -> str:
        """One line for consecutive segments of one speaker; "…" where the pause cut them."""
        text = " ".join(seg.text.strip() + (" …" if cut else "") for seg, cut in run)
        return self._line(run[0][0].start, run[0][0].speaker, text)

    def _passages(self, found: Sequence[Passage], budget: int) -> tuple[str, list[Passage]]:
        kept: list[Passage] = []
        lines: list[tuple[float, str]] = []
        used = 0
        for passage in found:
            text = passage.text + (" …" if passage.truncated else "")
            line = self._line(passage.start, passage.speaker, text)
            cost = estimate_tokens(line) + 1
            if used + cost > budget:
                room = (budget - used - 1) * 4 - (len(line) - len(text))
                if room < _MIN_PIECE_TOKENS * 4:
                    break
                line = self._line(
                    passage.start, passage.speaker, text[:room].rsplit(" ", 1)[0] + " …"
                )
                cost = estimate_tokens(line) + 1
            kept.append(passage)
            lines.append((passage.start, line))
            used += cost
        lines.sort()  # in the order they were said
        return "\n".join(line for _, line in lines), kept

    def _line(self, start: float, speaker: str | None, text: str) -> str:
        return f"[{format_timestamp(start)}] {self._label(speaker)}: {text}"


def _started(segments: Sequence[Segment], position: float) -> Iterator[Segment]:
    """The segments that start before ``position`` (they are sorted by start)."""
    for seg in segments:
        if seg.start >= position:
            return
        yield seg
