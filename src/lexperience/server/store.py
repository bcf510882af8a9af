"""The service's live state: conversations (with an idle TTL and a cap) and the media of their
replies (downloadable for a while, within a memory budget)."""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from ..conversation import Conversation

__all__ = ["ConversationStore", "Entry", "MediaStore", "TooManyConversations"]

log = logging.getLogger(__name__)


class TooManyConversations(Exception):
    """The process holds ``max_conversations`` live conversations already."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("this server holds as many conversations as it can; try again later")
        self.retry_after = retry_after


@dataclass
class Entry:
    """One conversation the service keeps."""

    id: str
    conversation: Conversation
    persona: str
    backends: dict[str, str | None]
    created: float = field(default_factory=lambda: time.monotonic())
    last_used: float = field(default_factory=lambda: time.monotonic())
    streams: int = 0  # open WebSockets

    def touch(self) -> None:
        self.last_used = time.monotonic()


class ConversationStore:
    """Conversations by id; idle ones expire after ``ttl`` seconds."""

    def __init__(self, *, worker_id: str, max_conversations: int, ttl: float) -> None:
        self.worker_id = worker_id
        self.max_conversations = max_conversations
        self.ttl = ttl
        self._entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def new_id(self) -> str:
        """An unguessable id that names this worker first (``w0-...``): the entry point routes
        every later request of the conversation to the worker that holds it."""
        return f"{self.worker_id}-{secrets.token_urlsafe(12)}"

    def add(self, entry: Entry) -> None:
        if len(self._entries) >= self.max_conversations:
            self.expire()
        if len(self._entries) >= self.max_conversations:
            oldest = min(e.last_used for e in self._entries.values())
            raise TooManyConversations(max(1.0, round(self.ttl - (time.monotonic() - oldest))))
        self._entries[entry.id] = entry

    def get(self, conversation_id: str) -> Entry | None:
        entry = self._entries.get(conversation_id)
        if entry is not None:
            entry.touch()
        return entry

    def remove(self, conversation_id: str) -> Entry | None:
        return self._entries.pop(conversation_id, None)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def expires_in(self, entry: Entry) -> float:
        return max(0.0, self.ttl - (time.monotonic() - entry.last_used))

    def expire(self) -> list[Entry]:
        """Drop the conversations idle for longer than the TTL (never one that is busy or has a
        WebSocket open); returns them so their turns can be stopped."""
        now = time.monotonic()
        gone = [
            e
            for e in self._entries.values()
            if now - e.last_used > self.ttl and not e.conversation.busy and e.streams == 0
        ]
        for entry in gone:
            del self._entries[entry.id]
            log.info("conversation %s expired after %.0f s idle", entry.id, now - entry.last_used)
        return gone


@dataclass
class _Media:
    data: bytes
    mime_type: str
    stored: float


class MediaStore:
    """Reply media (``reply.wav``, ``reply.mp4``) by (conversation, turn, name), kept for
    ``ttl`` seconds and within ``max_bytes`` (the oldest go first)."""

    def __init__(self, *, ttl: float, max_bytes: int) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[tuple[str, int, str], _Media] = OrderedDict()

    def put(self, conversation_id: str, turn_id: int, name: str, data: bytes, mime: str) -> None:
        key = (conversation_id, turn_id, name)
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old.data)
        self._items[key] = _Media(data, mime, time.monotonic())
        self.size += len(data)
        self._evict()

    def get(self, conversation_id: str, turn_id: int, name: str) -> _Media | None:
        self._evict()
        return self._items.get((conversation_id, turn_id, name))

    def forget(self, conversation_id: str) -> None:
        for key in [k for k in self._items if k[0] == conversation_id]:
            self.size -= len(self._items.pop(key).data)

    def _evict(self) -> None:
        now = time.monotonic()
        while self._items:
            key, item = next(iter(self._items.items()))
            if self.size <= self.max_bytes and now - item.stored <= self.ttl:
                break
            del self._items[key]
            self.size -= len(item.data)
