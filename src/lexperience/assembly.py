"""Building a conversation's backends: from registry names (with the persona's voice, language,
speaking rate and portrait) or from ready objects, checked against the protocols."""

from __future__ import annotations

import inspect
from typing import Any

from . import registry
from .errors import ConfigurationError
from .persona import Persona, tts_persona_options
from .pipeline import Backends, backend_name
from .protocols import LLM, STT, TTS, Avatar

__all__ = ["build_backend", "resolve_backends"]


def build_backend(
    kind: str, name: str, persona: Persona, options: dict[str, Any] | None = None
) -> Any:
    """Create backend ``name`` of ``kind`` through the registry, passing the persona's voice for
    that backend (``voice=``), its language and speaking rate (see
    :func:`~lexperience.persona.tts_persona_options`) and its portrait (``portrait=``) when the
    backend takes them and ``options`` does not set them already."""
    opts = dict(options or {})
    params = inspect.signature(registry.get_spec(kind, name).load()).parameters
    voice = persona.voice_for(name)
    if kind == "tts" and voice is not None and "voice" in params:
        opts.setdefault("voice", voice)
    if kind == "tts":
        carried = tts_persona_options(persona, params)
        if "speed" in (opts.get("voice_settings") or {}):
            carried.pop("speed", None)  # ElevenLabs' speed given in its voice settings wins
        opts.update({k: v for k, v in carried.items() if k not in opts})
    if kind == "avatar" and persona.portrait is not None and "portrait" in params:
        opts.setdefault("portrait", persona.portrait)
    return registry.create(kind, name, **opts)


def resolve_backends(persona: Persona, **stages: Any) -> Backends:
    """The :class:`Backends` of ``stt=``, ``llm=``, ``tts=`` and ``avatar=``: each one an object
    (kept as it is), a registry name (built by :func:`build_backend` for ``persona``) or
    ``None``. Raises :class:`ConfigurationError` when an object does not implement its stage's
    protocol."""
    names: dict[str, str] = {}
    built: dict[str, Any] = {}
    for kind in ("stt", "llm", "tts", "avatar"):
        value = stages.get(kind)
        if isinstance(value, str):
            names[kind] = value
            value = build_backend(kind, value, persona)
        elif value is not None:
            names[kind] = backend_name(value)
        built[kind] = value
    for stage, proto in (("stt", STT), ("llm", LLM), ("tts", TTS), ("avatar", Avatar)):
        obj = built[stage]
        if obj is not None and not isinstance(obj, proto):
            raise ConfigurationError(
                f"{stage}={type(obj).__name__} does not implement the {proto.__name__} "
                "protocol (see lexperience.protocols)"
            )
    return Backends(names=names, **built)
