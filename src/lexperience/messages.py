"""Chat messages exchanged with the LLM and kept in the conversation history."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Message", "Role"]

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    """One chat message.

    ``interrupted`` marks an assistant message cut short by :meth:`Conversation.interrupt`: its
    ``content`` is only what the listener heard.
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    interrupted: bool = False

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str, *, interrupted: bool = False) -> Message:
        return cls(role="assistant", content=content, interrupted=interrupted)

    def to_openai(self) -> dict[str, str]:
        """The ``{"role": ..., "content": ...}`` dict that chat-completion APIs expect."""
        return {"role": self.role, "content": self.content}
