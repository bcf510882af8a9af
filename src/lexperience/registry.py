"""The backend registry: names -> dotted import paths + the extra that installs them.

Nothing here imports a backend until :func:`create` is called, so ``import lexperience`` stays
light and a missing optional package only matters for the backend that needs it.

>>> from lexperience import registry
>>> tts = registry.create("tts", "fake")        # doctest: +SKIP
>>> [s.name for s in registry.list_backends("llm")]  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ._optional import is_installed
from .errors import ConfigurationError, MissingDependencyError

__all__ = ["BackendSpec", "Kind", "create", "get_spec", "list_backends", "register"]

Kind = Literal["stt", "llm", "tts", "avatar"]
KINDS: tuple[Kind, ...] = ("stt", "llm", "tts", "avatar")


class BackendSpec(BaseModel):
    """How to find and build one backend.

    Attributes:
        kind: ``stt``, ``llm``, ``tts`` or ``avatar``.
        name: the registry name users type (``"piper"``, ``"openai"``...).
        target: ``"package.module:ClassName"``.
        extra: the pip extra that installs what it needs (``None``: nothing extra).
        requires: importable module names it needs (checked without importing them).
        env_vars: environment variables it reads for credentials.
        description: one line for ``lexperience backends``.
    """

    model_config = ConfigDict(frozen=True)

    kind: Kind
    name: str
    target: str
    extra: str | None = None
    requires: tuple[str, ...] = ()
    env_vars: tuple[str, ...] = ()
    description: str = ""

    @property
    def installed(self) -> bool:
        """Whether every required module is importable."""
        return all(is_installed(m) for m in self.requires)

    @property
    def missing_env(self) -> tuple[str, ...]:
        """Credential variables that are not set."""
        return tuple(v for v in self.env_vars if not os.environ.get(v))

    def load(self) -> type[Any]:
        """Import and return the backend class (raises MissingDependencyError if not installed)."""
        for module in self.requires:
            if not is_installed(module):
                raise MissingDependencyError(
                    module=module,
                    extra=self.extra or "all",
                    feature=f"the {self.kind} backend {self.name!r}",
                )
        module_name, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


_REGISTRY: dict[tuple[str, str], BackendSpec] = {}


def register(spec: BackendSpec, *, replace: bool = False) -> None:
    """Add a backend (your own, too) so that configs and the CLI can name it."""
    key = (spec.kind, spec.name)
    if key in _REGISTRY and not replace:
        raise ConfigurationError(f"a {spec.kind} backend named {spec.name!r} is already registered")
    _REGISTRY[key] = spec


def get_spec(kind: str, name: str) -> BackendSpec:
    """The spec of backend ``name`` of ``kind``; a clear error lists the valid names."""
    if kind not in KINDS:
        raise ConfigurationError(f"unknown backend kind {kind!r}; expected one of {list(KINDS)}")
    try:
        return _REGISTRY[(kind, name)]
    except KeyError:
        names = sorted(n for k, n in _REGISTRY if k == kind)
        raise ConfigurationError(
            f"unknown {kind} backend {name!r}; available: {', '.join(names)}"
        ) from None


def list_backends(kind: str | None = None) -> list[BackendSpec]:
    """Every registered backend (of one ``kind``), sorted by kind then name."""
    specs = [s for (k, _), s in _REGISTRY.items() if kind is None or k == kind]
    return sorted(specs, key=lambda s: (KINDS.index(s.kind), s.name))


def create(kind: str, name: str, **options: Any) -> Any:
    """Build backend ``name`` of ``kind`` with ``options`` passed to its constructor.

    Raises:
        ConfigurationError: unknown name, or an option the backend does not take.
        MissingDependencyError: its extra is not installed (the message is the pip command).
    """
    spec = get_spec(kind, name)
    cls = spec.load()
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        params = [
            p.name
            for p in inspect.signature(cls).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        raise ConfigurationError(
            f"bad options for {kind} backend {name!r}: {exc}; it accepts: {', '.join(params)}"
        ) from exc
    return cls(**options)


def _builtin(kind: Kind, name: str, target: str, extra: str | None, requires: tuple[str, ...],
             env: tuple[str, ...] = (), description: str = "") -> None:  # fmt: skip
    register(BackendSpec(kind=kind, name=name, target=target, extra=extra, requires=requires,
                         env_vars=env, description=description))  # fmt: skip


_B = "lexperience.backends."
_F = "lexperience.testing.fakes:"
_builtin("stt", "fake", _F + "FakeSTT", None, (), description="scripted transcript (tests)")
_builtin("llm", "fake", _F + "FakeLLM", None, (), description="scripted reply (tests)")
_builtin("tts", "fake", _F + "FakeTTS", None, (), description="synthetic voice-like tones (tests)")
_builtin("avatar", "fake", _F + "FakeAvatar", None, (), description="level-meter frames (tests)")
_builtin("stt", "faster-whisper", _B + "faster_whisper_stt:FasterWhisperSTT", "local",
         ("faster_whisper",), description="Whisper on CPU via CTranslate2 (offline)")  # fmt: skip
_builtin("stt", "openai", _B + "openai_stt:OpenAISTT", "openai", ("openai",),
         ("OPENAI_API_KEY",), "OpenAI transcription (gpt-4o-mini-transcribe, whisper-1)")  # fmt: skip
_builtin("llm", "llama-cpp", _B + "llama_cpp_llm:LlamaCppLLM", "local", ("llama_cpp",),
         description="any GGUF model in-process via llama.cpp (offline)")  # fmt: skip
_builtin("llm", "openai", _B + "openai_llm:OpenAILLM", "openai", ("openai",),
         ("OPENAI_API_KEY",), "Chat Completions / Responses; any OpenAI-compatible server")  # fmt: skip
_builtin("tts", "piper", _B + "piper_tts:PiperTTS", "local", ("piper",),
         description="Piper neural voices on CPU (offline)")  # fmt: skip
_builtin("tts", "espeak", _B + "espeak_tts:EspeakTTS", "local", ("espeakng_loader",),
         description="espeak-ng formant voice, tiny and robotic (offline)")  # fmt: skip
_builtin("tts", "openai", _B + "openai_tts:OpenAITTS", "openai", ("openai",),
         ("OPENAI_API_KEY",), "OpenAI speech, streamed 24 kHz PCM")  # fmt: skip
_builtin("tts", "elevenlabs", _B + "elevenlabs_tts:ElevenLabsTTS", "elevenlabs",
         ("elevenlabs",), ("ELEVENLABS_API_KEY",),
         "ElevenLabs streaming speech with character alignment")  # fmt: skip
_builtin("avatar", "portrait", _B + "portrait_avatar:PortraitAvatar", "portrait", ("cv2",),
         description="a still portrait animated on CPU in real time (offline)")  # fmt: skip
_builtin("avatar", "replicate", _B + "replicate_avatar:ReplicateAvatar", "replicate",
         ("replicate", "av"), ("REPLICATE_API_TOKEN",),
         "DreamTalk and other lip-sync models on Replicate, per sentence")  # fmt: skip
_builtin("avatar", "dreamtalk", _B + "dreamtalk_avatar:DreamTalkAvatar", "dreamtalk",
         ("torch", "transformers", "scipy", "yaml", "cv2"),
         description="DreamTalk in-process on your GPU, from your checkout and checkpoints")  # fmt: skip
