"""Backends built once per process and shared by every conversation: :class:`BackendPool`.

The heavy models (Whisper, the LLM, the TTS voice, the portrait analysis) load once; each
conversation holds only its persona, history and turn state. A backend is keyed by what makes it
differ: its kind, its registry name, its options and what the persona gives it (a voice, a
portrait), so two personas with different voices get two TTS instances and everything else is
shared.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from .._paths import safe_name
from ..assembly import build_backend
from ..config import BackendConfig
from ..errors import ConfigurationError
from ..persona import Persona
from .schema import CreateConversation
from .settings import ServerSettings

__all__ = ["BackendPool"]

log = logging.getLogger(__name__)

KINDS = ("stt", "llm", "tts", "avatar")
_PERSONA_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


class BackendPool:
    """Creates, shares and finally closes the backends of one service process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._backends: dict[tuple[str, str, str], Any] = {}
        self._personas: dict[str, Persona] = {}
        self._lock = asyncio.Lock()
        self.ready = False

    # -- personas -----------------------------------------------------------------------------
    def persona(self, name: str) -> Persona:
        """``"default"``: the stack's persona (or the built-in host); else the file
        ``personas_dir/<name>.toml|yaml|json`` (confined to that folder)."""
        if name in self._personas:
            return self._personas[name]
        if name == "default":
            persona = self.settings.stack.load_persona()
        else:
            safe_name(name, what="persona")
            folder = self.settings.personas_dir
            if folder is None:
                raise ConfigurationError(
                    f"unknown persona {name!r}: this server offers only 'default'"
                )
            files = [folder / f"{name}{suffix}" for suffix in _PERSONA_SUFFIXES]
            found = next((f for f in files if f.is_file()), None)
            if found is None:
                raise ConfigurationError(f"unknown persona {name!r}; see GET /v1/personas")
            persona = Persona.from_file(found, confine=True)
        self._personas[name] = persona
        return persona

    def persona_names(self) -> list[str]:
        names = ["default"]
        folder = self.settings.personas_dir
        if folder is not None and folder.is_dir():
            names += sorted(
                {p.stem for p in Path(folder).iterdir() if p.suffix in _PERSONA_SUFFIXES}
            )
        return names

    # -- backends -----------------------------------------------------------------------------
    def choose(self, request: CreateConversation) -> dict[str, str | None]:
        """The registry name of each backend a new conversation uses (checked against what this
        server allows)."""
        chosen: dict[str, str | None] = {}
        for kind in KINDS:
            default = getattr(self.settings.stack, kind)
            wanted = getattr(request, kind)
            if wanted is None:
                chosen[kind] = default.name if default is not None else None
                continue
            if wanted == "none" and kind in ("stt", "avatar"):
                chosen[kind] = None
                continue
            allowed = self.settings.backend_choices(kind)
            if wanted not in allowed:
                raise ConfigurationError(
                    f"{kind} backend {wanted!r} is not offered by this server; choose one of: "
                    f"{', '.join(allowed) or '(none)'}"
                )
            chosen[kind] = wanted
        return chosen

    def _options(self, kind: str, name: str) -> dict[str, Any]:
        default: BackendConfig | None = getattr(self.settings.stack, kind)
        return dict(default.options) if default is not None and default.name == name else {}

    async def get(self, kind: str, name: str, persona: Persona) -> Any:
        """The shared backend ``name`` of ``kind`` for ``persona`` (built and opened once)."""
        options = self._options(kind, name)
        flavour = {
            "options": options,
            "voice": persona.voice_for(name) if kind == "tts" else None,
            "portrait": str(persona.portrait) if kind == "avatar" else None,
        }
        key = (kind, name, json.dumps(flavour, sort_keys=True, default=str))
        backend = self._backends.get(key)
        if backend is not None:
            return backend
        async with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                # constructing a local backend may load a model: keep it off the event loop
                backend = await asyncio.to_thread(build_backend, kind, name, persona, options)
                opener = getattr(backend, "aopen", None)
                if opener is not None:
                    await opener()
                self._backends[key] = backend
                log.info("loaded the %s backend %r", kind, name)
        return backend

    async def warm(self) -> None:
        """Build and open the default stack (``/readyz`` answers 200 afterwards)."""
        persona = self.persona("default")
        for kind in KINDS:
            cfg = getattr(self.settings.stack, kind)
            if cfg is not None:
                await self.get(kind, cfg.name, persona)
        self.ready = True

    async def aclose(self) -> None:
        """Release every backend (at shutdown)."""
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            closer = getattr(backend, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception as exc:  # shutting down: log and go on
                    log.warning("closing %s failed: %s", type(backend).__name__, exc)
