"""Settings files: which backends a conversation uses and their options (TOML, YAML or JSON).

```toml
persona = "host.toml"          # optional; relative to this file
watermark = true               # the visible "AI-generated" mark (set false explicitly to remove)

[stt]
name = "faster-whisper"
[stt.options]
beam_size = 1

[llm]
name = "llama-cpp"

[tts]
name = "piper"

[avatar]
name = "portrait"              # or "none" for audio only
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._paths import resolve_inside
from .assembly import build_backend
from .conversation import Conversation
from .errors import ConfigurationError
from .options import TurnOptions
from .persona import DEFAULT_PERSONA, Persona, _describe, _read_mapping

__all__ = ["BackendConfig", "Settings"]


class BackendConfig(BaseModel):
    """One backend: its registry name and constructor options."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class Settings(BaseModel):
    """What ``lexperience reply --config FILE`` reads. Defaults are the offline local stack."""

    model_config = ConfigDict(extra="forbid")

    stt: BackendConfig | None = BackendConfig(name="faster-whisper")
    llm: BackendConfig = BackendConfig(name="llama-cpp")
    tts: BackendConfig = BackendConfig(name="piper")
    avatar: BackendConfig | None = BackendConfig(name="portrait")
    persona: Path | None = None
    watermark: bool = True
    history_limit: int = Field(default=20, ge=0)
    turn: TurnOptions = Field(default_factory=TurnOptions)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Settings:
        """Load settings; a relative ``persona`` path resolves against the file's folder (and may
        not climb out of it with ``..``)."""
        file = Path(path)
        if not file.is_file():
            raise ConfigurationError(f"config file not found: {file}")
        try:
            return cls.from_mapping(_read_mapping(file), base=file.parent)
        except ConfigurationError as exc:
            raise ConfigurationError(f"invalid config file {file}: {exc}") from exc

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, base: Path) -> Settings:
        """Settings from a parsed table (a file's, or a ``[stack]`` table of a server config);
        paths resolve against ``base``."""
        persona = data.get("persona")
        if isinstance(persona, str) and persona:
            data = {**data, "persona": str(resolve_inside(persona, base, what="persona"))}
        for kind in ("stt", "avatar"):
            entry = data.get(kind)
            if entry in ("none", False) or (
                isinstance(entry, dict) and entry.get("name") == "none"
            ):
                data = {**data, kind: None}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc)) from exc

    def load_persona(self) -> Persona:
        return Persona.from_file(self.persona) if self.persona else DEFAULT_PERSONA

    def build(self, **overrides: Any) -> Conversation:
        """Create the backends and the :class:`Conversation` these settings describe."""
        persona = overrides.pop("persona", None) or self.load_persona()

        def make(kind: str, cfg: BackendConfig | None) -> Any:
            return None if cfg is None else build_backend(kind, cfg.name, persona, cfg.options)

        return Conversation(
            stt=make("stt", self.stt),
            llm=make("llm", self.llm),
            tts=make("tts", self.tts),
            avatar=make("avatar", self.avatar),
            persona=persona,
            watermark=self.watermark,
            history_limit=self.history_limit,
            options=self.turn,
            **overrides,
        )
