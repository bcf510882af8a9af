"""Everything one service process holds, in one place: :class:`ServiceState`."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import time
from typing import Any

from .._aio import cancel_and_wait
from ..conversation import Conversation
from ..errors import ConfigurationError
from ..options import TurnOptions
from ..reply import Reply
from .limits import Admission, RateLimiter
from .pool import KINDS, BackendPool
from .schema import CreateConversation
from .settings import ServerSettings
from .store import ConversationStore, Entry, MediaStore

__all__ = ["ServiceState"]

log = logging.getLogger(__name__)

_SWEEP_EVERY = 10.0


def _warm_encoders() -> None:
    """Load the media encoders once at start, so the first turn's first frame does not pay it."""
    import numpy as np

    from .._optional import is_installed

    if is_installed("av"):
        from .codec import _Jpeg

        _Jpeg(16, 16, 80).encode(np.zeros((16, 16, 3), np.uint8))


class ServiceState:
    """The pool, the stores, the limits and the lifecycle of one process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.pool = BackendPool(settings)
        self.store = ConversationStore(
            worker_id=settings.worker_id,
            max_conversations=settings.max_conversations,
            ttl=settings.conversation_ttl,
        )
        self.media = MediaStore(ttl=settings.media_ttl, max_bytes=settings.max_media_bytes)
        self.admission = Admission(settings.max_concurrent_turns, settings.max_queued_turns)
        self.limiter = RateLimiter(settings.turns_per_minute, settings.burst)
        self.closing = False
        self.started = time.monotonic()
        self._tasks: list[asyncio.Task[Any]] = []
        self._tokens = [t.get_secret_value() for t in settings.tokens if t.get_secret_value()]

    # -- auth -----------------------------------------------------------------------------------
    @property
    def auth_required(self) -> bool:
        return bool(self._tokens)

    def client_key(self, token: str | None, address: str | None) -> str | None:
        """The rate-limit key of a caller, or ``None`` when its token is wrong."""
        if not self._tokens:
            return f"addr:{address or '?'}"
        if token is None:
            return None
        for known in self._tokens:
            if hmac.compare_digest(token.encode(), known.encode()):
                return "tok:" + hashlib.sha256(known.encode()).hexdigest()[:12]
        return None

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.closing = False  # an application can be started again after a stop (tests do)
        self._tasks.append(asyncio.ensure_future(self._warm()))
        self._tasks.append(asyncio.ensure_future(self._sweep()))

    async def _warm(self) -> None:
        try:
            await self.pool.warm()
            await asyncio.to_thread(_warm_encoders)
            if self.settings.freeze_heap:
                gc.collect()
                gc.freeze()
                log.info("froze %d objects out of the collector's way", gc.get_freeze_count())
            log.info("models loaded: ready")
        except Exception:
            log.exception("loading the default backends failed; /readyz stays 503")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_EVERY)
            for entry in self.store.expire():
                self.media.forget(entry.id)

    async def stop(self) -> None:
        """Finish running turns (within the grace period), interrupt the rest, free models."""
        self.closing = True
        deadline = time.monotonic() + self.settings.shutdown_grace
        while self.admission.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for entry in self.store.entries():
            if entry.conversation.busy:
                log.info("shutting down: interrupting the turn of %s", entry.id)
                await entry.conversation.interrupt()
        await cancel_and_wait(*self._tasks)
        await self.pool.aclose()

    # -- conversations --------------------------------------------------------------------------
    async def create(self, request: CreateConversation) -> Entry:
        persona = self.pool.persona(request.persona)
        names = self.pool.choose(request)
        backends = {
            kind: (await self.pool.get(kind, name, persona) if name is not None else None)
            for kind, name in names.items()
        }
        options = self.settings.stack.turn.model_copy(
            update={
                "max_input_seconds": self.settings.max_audio_seconds,
                "max_input_chars": self.settings.max_text_chars,
                "max_input_bytes": self.settings.max_request_bytes,
            }
        )
        llm, tts = backends["llm"], backends["tts"]
        if llm is None or tts is None:
            raise ConfigurationError("a conversation needs an LLM and a TTS backend")
        conversation = Conversation(
            stt=backends["stt"],
            llm=llm,
            tts=tts,
            avatar=backends["avatar"],
            persona=persona,
            watermark=self.settings.stack.watermark,
            history_limit=self.settings.stack.history_limit,
            options=TurnOptions.model_validate(options.model_dump()),
            on_busy="error",
        )
        if request.history:
            conversation.load_history(request.history)
        entry = Entry(
            id=self.store.new_id(),
            conversation=conversation,
            persona=request.persona,
            backends={k: names[k] for k in KINDS},
        )
        self.store.add(entry)
        return entry

    async def delete(self, entry: Entry) -> None:
        self.store.remove(entry.id)
        self.media.forget(entry.id)
        await entry.conversation.interrupt()  # shared backends stay open for the others

    def media_urls(self, entry: Entry, reply: Reply) -> dict[str, str]:
        base = f"/v1/conversations/{entry.id}/turns/{reply.turn_id}"
        urls = {}
        if reply.audio is not None:
            urls["wav"] = f"{base}/reply.wav"
        if reply.video is not None:
            urls["mp4"] = f"{base}/reply.mp4"
        return urls

    async def keep_media(self, entry: Entry, reply: Reply) -> dict[str, str]:
        """Store a reply's wav/mp4 for download; their URLs."""
        if reply.audio is not None:
            wav = await asyncio.to_thread(reply.audio.to_wav_bytes)
            self.media.put(entry.id, reply.turn_id, "reply.wav", wav, "audio/wav")
        if reply.video is not None:
            self.media.put(entry.id, reply.turn_id, "reply.mp4", reply.video.data, "video/mp4")
        return self.media_urls(entry, reply)
