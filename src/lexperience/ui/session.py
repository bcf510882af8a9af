"""Browser sessions: :class:`UISession` (one per page load) and :class:`SessionRegistry`.

Every page load gets Gradio's own ``session_hash``; the registry maps it to a
:class:`UISession` holding that tab's conversations, so two tabs (or two people) never see each
other's turns. The backends behind the conversations are shared by the whole process
(:class:`~lexperience.server.pool.BackendPool`). A session ends when its tab closes (Gradio's
``unload``) or after ``ttl`` idle seconds.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from .episode_state import EpisodeSession
from .live_view import LiveView
from .turns import ConversationView

__all__ = ["SessionRegistry", "UISession"]

log = logging.getLogger(__name__)


class UISession:
    """The state of one browser tab.

    Attributes:
        id: Gradio's session hash.
        persona: the persona picked (a name of the backend pool: ``"default"`` or a file stem).
        chat: the conversation of the chat tab (built on first use).
        episode: the podcast companion of the episode tab (built when an episode is loaded).
        live: the live tab's conversation (built when the microphone first streams).
        key: a secret that prefixes this session's media URLs.
    """

    def __init__(self, session_id: str, persona: str = "default") -> None:
        self.id = session_id
        self.persona = persona
        self.chat: ConversationView | None = None
        self.episode: EpisodeSession | None = None
        self.live: LiveView | None = None
        self.key = secrets.token_urlsafe(18)
        self.last_seen = time.monotonic()

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    @property
    def busy(self) -> bool:
        return bool(
            (self.chat and self.chat.running)
            or (self.episode and self.episode.view.running)
            or (self.live and self.live.running)
        )

    async def close(self) -> None:
        """Stop this tab's turns (the shared backends stay open)."""
        if self.chat is not None:
            await self.chat.close()
        if self.episode is not None:
            await self.episode.close()
        if self.live is not None:
            await self.live.close()


class SessionRegistry:
    """The live :class:`UISession` s of the process.

    Args:
        ttl: idle seconds after which :meth:`sweep` drops a session.
        on_drop: called with each dropped session (the app forgets its media).
    """

    def __init__(
        self, *, ttl: float, on_drop: Callable[[UISession], Awaitable[None]] | None = None
    ) -> None:
        self.ttl = ttl
        self.on_drop = on_drop
        self._sessions: dict[str, UISession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def get(self, session_id: str) -> UISession:
        """The session of ``session_id``, created on first use."""
        session = self._sessions.get(session_id)
        if session is None:
            session = UISession(session_id)
            self._sessions[session_id] = session
            log.debug("new browser session (%d live)", len(self._sessions))
        session.touch()
        return session

    def find(self, session_id: str) -> UISession | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[UISession]:
        return list(self._sessions.values())

    async def drop(self, session_id: str) -> None:
        """End a session (its tab closed)."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        try:
            await session.close()
        finally:
            if self.on_drop is not None:
                await self.on_drop(session)
        log.debug("browser session closed (%d live)", len(self._sessions))

    async def sweep(self) -> int:
        """Drop the sessions idle for longer than ``ttl`` (never one with a turn running)."""
        now = time.monotonic()
        stale = [
            s.id for s in self._sessions.values() if now - s.last_seen > self.ttl and not s.busy
        ]
        for session_id in stale:
            await self.drop(session_id)
        return len(stale)

    async def close(self) -> None:
        for session_id in list(self._sessions):
            await self.drop(session_id)
