"""What one ``lexperience ui`` process holds: :class:`UIRuntime`.

* the backends, loaded once and shared by every browser session
  (:class:`~lexperience.server.pool.BackendPool`, the service's own pool);
* the browser sessions (:class:`~lexperience.ui.session.SessionRegistry`);
* the reply streams the players fetch, by their secret key;
* the episode files the episode players may fetch.

The Gradio handlers (:mod:`lexperience.ui.chat_tab`, :mod:`lexperience.ui.episode_tab`) and the
media routes (:mod:`lexperience.ui.routes`) only talk to this object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._aio import cancel_and_wait
from ..context import ContextProvider
from ..conversation import Conversation
from ..episode import EpisodeContext
from ..errors import ConfigurationError
from ..persona import Persona
from ..server.pool import KINDS, BackendPool
from ..server.settings import ServerSettings
from .config import UIConfig
from .episode_state import EpisodeSession
from .live_view import LiveView
from .session import SessionRegistry, UISession
from .stream import ReplyStream
from .turns import ConversationView

__all__ = ["UIRuntime"]

log = logging.getLogger(__name__)

_SWEEP_EVERY = 60.0


class UIRuntime:
    """The shared state of the app (see the module docs)."""

    def __init__(self, config: UIConfig) -> None:
        self.config = config
        stack = config.stack
        if not stack.watermark:
            log.warning(
                "the app always stamps the visible AI-generated mark; watermark=false is ignored"
            )
            stack = stack.model_copy(update={"watermark": True})
        self.stack = stack
        self.pool = BackendPool(ServerSettings(stack=stack, personas_dir=config.personas_dir))
        self.sessions = SessionRegistry(ttl=config.session_ttl, on_drop=self._forget)
        self._streams: dict[str, ReplyStream] = {}
        self._latest: dict[str, str] = {}  # view key -> its latest stream key
        self._episode_audio: dict[str, Path] = {}  # session key -> the file its player plays
        self._live: dict[str, LiveView] = {}  # view key -> the Live tab view (played reports)
        self._tasks: list[asyncio.Task[Any]] = []
        self.ready = False
        self.load_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the default backends in the background and sweep idle sessions."""
        self._tasks.append(asyncio.ensure_future(self._warm()))
        self._tasks.append(asyncio.ensure_future(self._sweep()))

    async def _warm(self) -> None:
        try:
            await self.pool.warm()
            self.ready = True
            log.info("models loaded: the app is ready")
        except Exception as exc:
            self.load_error = str(exc)
            log.error("loading the backends failed: %s", exc)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_EVERY)
            await self.sessions.sweep()

    async def stop(self) -> None:
        await self.sessions.close()
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        await self.pool.aclose()

    # -- personas -------------------------------------------------------------------------------
    def persona_choices(self) -> list[tuple[str, str]]:
        """``(label, name)`` of every persona the picker offers."""
        choices = []
        for name in self.pool.persona_names():
            try:
                persona = self.pool.persona(name)
            except ConfigurationError as exc:
                log.warning("skipping the persona file %r: %s", name, exc)
                continue
            if name != "default":
                label = f"{persona.name} ({name})"  # a file of personas_dir
            elif self.stack.persona is None:
                label = f"{persona.name} (built-in)"
            else:
                label = persona.name  # the stack's own persona file
            choices.append((label, name))
        return choices

    def persona(self, name: str) -> Persona:
        return self.pool.persona(name)

    # -- conversations --------------------------------------------------------------------------
    async def conversation(
        self,
        persona_name: str,
        context: Sequence[ContextProvider] = (),
        *,
        encode_video: bool | None = None,
    ) -> Conversation:
        """A new conversation of ``persona_name`` on the shared backends (``encode_video``
        overrides the stack's turn option: the players encode the frames themselves)."""
        persona = self.pool.persona(persona_name)
        backends: dict[str, Any] = {}
        for kind in KINDS:
            cfg = getattr(self.stack, kind)
            backends[kind] = None if cfg is None else await self.pool.get(kind, cfg.name, persona)
        return Conversation(
            stt=backends["stt"],
            llm=backends["llm"],
            tts=backends["tts"],
            avatar=backends["avatar"],
            persona=persona,
            context=context,
            watermark=True,
            history_limit=self.stack.history_limit,
            options=(
                self.stack.turn
                if encode_video is None
                else self.stack.turn.model_copy(update={"encode_video": encode_video})
            ),
            on_busy="interrupt",
        )

    def _view(self, session: UISession, conversation: Conversation) -> ConversationView:
        view = ConversationView(conversation, on_stream=self._register)
        view.warm()
        return view

    async def chat(self, session: UISession) -> ConversationView:
        """The chat tab's conversation of ``session`` (built on first use)."""
        if session.chat is None:
            session.chat = self._view(session, await self.conversation(session.persona))
        return session.chat

    async def live(self, session: UISession) -> LiveView:
        """The live tab's conversation of ``session`` (built on first use)."""
        if session.live is None:
            if self.stack.stt is None:
                raise ConfigurationError("live mode needs an STT backend in the stack")
            conversation = await self.conversation(session.persona, encode_video=False)
            session.live = LiveView(
                conversation, options=self.config.live, on_stream=self._register
            )
            self._live[session.live.key] = session.live
        return session.live

    def live_view(self, key: str) -> LiveView | None:
        """The Live tab view whose player reports with ``key``."""
        return self._live.get(key)

    async def open_episode(
        self, session: UISession, transcript: Path, audio: Path | None = None
    ) -> EpisodeSession:
        """Load an episode into ``session``'s episode tab (replacing the one there)."""
        episode, audio_path = await asyncio.to_thread(EpisodeSession.read, transcript, audio)
        context = EpisodeContext(episode)
        await asyncio.to_thread(context.prepare)
        conversation = await self.conversation(session.persona, context=[context])
        if session.episode is not None:
            await session.episode.close()
            self._forget_view(session.episode.view)
        session.episode = EpisodeSession(
            episode, audio_path, self._view(session, conversation), context
        )
        if audio_path is not None:
            self._episode_audio[session.key] = audio_path
        else:
            self._episode_audio.pop(session.key, None)
        return session.episode

    async def set_persona(self, session: UISession, name: str) -> None:
        """Switch ``session`` to another persona: new conversations, empty chat logs."""
        self.pool.persona(name)  # unknown names fail here, before anything changes
        session.persona = name
        if session.chat is not None:
            await session.chat.close()
            self._forget_view(session.chat)
            session.chat = None
        if session.live is not None:
            await session.live.close()
            self._forget_view(session.live)
            session.live = None
        if session.episode is not None:
            ep = session.episode
            await ep.close()
            self._forget_view(ep.view)
            conversation = await self.conversation(name, context=[ep.context])
            session.episode = EpisodeSession(
                ep.episode, ep.audio, self._view(session, conversation), ep.context
            )

    # -- media ----------------------------------------------------------------------------------
    def _register(self, stream: ReplyStream) -> None:
        view_key = stream.key.rsplit("-", 1)[0]
        old = self._latest.get(view_key)
        if old is not None:
            self._streams.pop(old, None)  # a view keeps only its latest reply
        self._latest[view_key] = stream.key
        self._streams[stream.key] = stream

    def stream(self, key: str) -> ReplyStream | None:
        return self._streams.get(key)

    def episode_audio(self, session_key: str) -> Path | None:
        return self._episode_audio.get(session_key)

    def _forget_view(self, view: ConversationView | LiveView) -> None:
        if isinstance(view, LiveView):
            self._live.pop(view.key, None)
        key = self._latest.pop(view.key, None)
        if key is not None:
            self._streams.pop(key, None)

    async def _forget(self, session: UISession) -> None:
        self._episode_audio.pop(session.key, None)
        views = (session.chat, session.episode.view if session.episode else None, session.live)
        for view in views:
            if view is not None:
                self._forget_view(view)
