"""The blocking client: :class:`Client`, the same calls as :class:`AsyncClient` without ``await``
(they run on a background event loop, so they also work inside a notebook)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel

from .._portal import Portal
from ..media import Audio
from ..messages import Message
from ..server.schema import ConversationInfo, WireReply
from ._async import AsyncClient, AsyncConversation, AsyncStream, Question

__all__ = ["Client", "Conversation", "Stream"]


class Stream:
    """A WebSocket stream (see :class:`~lexperience.client.AsyncStream`)."""

    def __init__(self, portal: Portal, stream: AsyncStream) -> None:
        self._portal = portal
        self._stream = stream

    @property
    def session(self) -> Any:
        return self._stream.session

    def ask(self, question: str) -> None:
        self._portal.call(self._stream.ask(question))

    def say(self, audio: Audio, *, chunk_seconds: float = 0.1) -> None:
        self._portal.call(self._stream.say(audio, chunk_seconds=chunk_seconds))

    def interrupt(self, played_seconds: float | None = None) -> None:
        self._portal.call(self._stream.interrupt(played_seconds))

    def played(self, turn_id: int, seconds: float) -> None:
        self._portal.call(self._stream.played(turn_id, seconds))

    def live(self, audio: Audio, **options: Any) -> Iterator[tuple[BaseModel, bytes | None]]:
        """A whole live session on a recorded clip (see :meth:`AsyncStream.live`)."""
        messages = self._stream.live(audio, **options)

        async def step() -> tuple[BaseModel, bytes | None]:
            return await messages.__anext__()

        try:
            while True:
                try:
                    yield self._portal.call(step())
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(messages.aclose())

    def receive(self) -> tuple[BaseModel, bytes | None]:
        return self._portal.call(self._stream.receive())

    def events(self) -> Iterator[tuple[BaseModel, bytes | None]]:
        """The messages of the current turn, up to and including its closing event."""
        while True:
            message, payload = self.receive()
            yield message, payload
            if getattr(message, "type", None) in ("turn_done", "turn_interrupted", "error"):
                return


class Conversation:
    """A conversation on the service (see :class:`~lexperience.client.AsyncConversation`)."""

    def __init__(self, portal: Portal, conversation: AsyncConversation) -> None:
        self._portal = portal
        self._conv = conversation

    @property
    def id(self) -> str:
        return self._conv.id

    @property
    def info(self) -> ConversationInfo:
        return self._conv.info

    def ask(self, question: Question, *, content_type: str = "audio/wav") -> WireReply:
        return self._portal.call(self._conv.ask(question, content_type=content_type))

    def refresh(self) -> ConversationInfo:
        return self._portal.call(self._conv.refresh())

    def download(self, url: str) -> bytes:
        return self._portal.call(self._conv.download(url))

    def delete(self) -> None:
        self._portal.call(self._conv.delete())

    def stream(self, *, binary: bool = False,
               video: Literal["jpeg", "mp4", "none"] = "jpeg") -> _StreamContext:  # fmt: skip
        return _StreamContext(self._portal, self._conv.stream(binary=binary, video=video))


class _StreamContext:
    def __init__(self, portal: Portal, manager: Any) -> None:
        self._portal = portal
        self._manager = manager

    def __enter__(self) -> Stream:
        return Stream(self._portal, self._portal.call(self._manager.__aenter__()))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._portal.call(self._manager.__aexit__(exc_type, exc, tb))


class Client:
    """Blocking client of ``lexperience serve`` (see :class:`~lexperience.client.AsyncClient`)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 120.0) -> None:
        self._portal = Portal("lexperience-client")
        self._client: AsyncClient = self._portal.call(_make(base_url, token, timeout))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._portal.call(self._client.aclose())
        self._portal.close()

    def health(self) -> dict[str, Any]:
        return self._portal.call(self._client.health())

    def ready(self) -> bool:
        return self._portal.call(self._client.ready())

    def create_conversation(self, *, persona: str = "default", stt: str | None = None,
                            llm: str | None = None, tts: str | None = None,
                            avatar: str | None = None,
                            history: Sequence[Message] = ()) -> Conversation:  # fmt: skip
        conv = self._portal.call(self._client.create_conversation(
            persona=persona, stt=stt, llm=llm, tts=tts, avatar=avatar, history=history))  # fmt: skip
        return Conversation(self._portal, conv)


async def _make(base_url: str, token: str | None, timeout: float) -> AsyncClient:
    return AsyncClient(base_url, token=token, timeout=timeout)  # built on the portal's loop
