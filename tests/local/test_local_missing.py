"""A missing optional package raises MissingDependencyError carrying the pip command."""

from __future__ import annotations

import importlib
import sys

import pytest

from lexperience import MissingDependencyError

pytestmark = pytest.mark.local


@pytest.mark.parametrize(
    ("package", "module", "cls"),
    [
        ("faster_whisper", "faster_whisper_stt", "FasterWhisperSTT"),
        ("llama_cpp", "llama_cpp_llm", "LlamaCppLLM"),
        ("piper", "piper_tts", "PiperTTS"),
    ],
)
def test_missing_package_names_the_extra(
    package: str, module: str, cls: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(package)
    backend = getattr(importlib.import_module(f"lexperience.backends.{module}"), cls)()
    monkeypatch.setitem(sys.modules, package, None)  # "import package" now fails as if uninstalled
    with pytest.raises(MissingDependencyError) as info:
        backend.load()
    assert info.value.install_command == 'pip install "lexperience[local]"'
    assert package in str(info.value)
