"""Context providers: objects that add messages to the LLM's context each turn.

The podcast companion (the episode transcript around the listener's position), retrieval, tool
results and the persona's own ``knowledge`` all plug in here. Providers run concurrently before
the LLM is called; their messages are placed after the system prompt, in provider order, and cut to
a shared token budget so they never crowd out the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

from .messages import Message
from .persona import Persona

__all__ = ["ContextProvider", "StaticContext", "TurnContext", "estimate_tokens", "fit_budget"]


@dataclass(frozen=True)
class TurnContext:
    """What a provider may look at: the turn number, the user's words, history and persona."""

    turn_id: int
    user_text: str
    history: tuple[Message, ...]
    persona: Persona


ProvidedContext = Union[str, Message, Sequence[Message], None]


@runtime_checkable
class ContextProvider(Protocol):
    """Adds context for a turn: return text (sent as a system message), messages, or ``None``."""

    async def provide(self, turn: TurnContext) -> ProvidedContext: ...


class StaticContext:
    """The same text every turn, under an optional heading (used for ``Persona.knowledge``)."""

    def __init__(self, text: str, *, heading: str | None = None) -> None:
        self.text = text
        self.heading = heading

    async def provide(self, turn: TurnContext) -> ProvidedContext:
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about 4 characters per token for English)."""
    return (len(text) + 3) // 4


def as_messages(provided: ProvidedContext) -> list[Message]:
    if provided is None:
        return []
    if isinstance(provided, str):
        return [Message.system(provided)] if provided.strip() else []
    if isinstance(provided, Message):
        return [provided]
    return list(provided)


def fit_budget(messages: Sequence[Message], budget_tokens: int) -> list[Message]:
    """Keep messages in order until ``budget_tokens`` is spent; the one that overflows is cut."""
    out: list[Message] = []
    left = budget_tokens
    for msg in messages:
        cost = estimate_tokens(msg.content)
        if cost <= left:
            out.append(msg)
            left -= cost
            continue
        if left > 16:
            cut = msg.content[: left * 4].rsplit(" ", 1)[0]
            out.append(msg.model_copy(update={"content": cut + " …"}))
        break
    return out
