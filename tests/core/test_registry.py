from __future__ import annotations

import pytest

from lexperience import ConfigurationError, MissingDependencyError, registry
from lexperience._optional import is_installed, require
from lexperience.registry import BackendSpec
from lexperience.testing import FakeTTS


def test_create_fake_backends_by_name() -> None:
    tts = registry.create("tts", "fake", sample_rate=8000)
    assert isinstance(tts, FakeTTS) and tts.sample_rate == 8000


def test_unknown_kind_and_name_list_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="expected one of"):
        registry.create("video", "fake")
    with pytest.raises(ConfigurationError, match=r"available: .*fake"):
        registry.create("tts", "nonexistent")


def test_bad_option_lists_accepted_options() -> None:
    with pytest.raises(ConfigurationError, match=r"it accepts: .*sample_rate"):
        registry.create("tts", "fake", colour="blue")


def test_missing_extra_gives_the_exact_pip_command() -> None:
    spec = BackendSpec(kind="tts", name="ghost", target="ghost_pkg:Ghost", extra="ghost",
                       requires=("ghost_pkg_that_does_not_exist",))  # fmt: skip
    registry.register(spec)
    try:
        assert not spec.installed
        with pytest.raises(MissingDependencyError) as info:
            registry.create("tts", "ghost")
        assert info.value.install_command == 'pip install "lexperience[ghost]"'
        assert str(info.value).endswith('pip install "lexperience[ghost]"')
        with pytest.raises(ConfigurationError, match="already registered"):
            registry.register(spec)
    finally:
        registry._REGISTRY.pop(("tts", "ghost"))


def test_every_builtin_backend_is_listed_with_an_extra() -> None:
    names = {(s.kind, s.name) for s in registry.list_backends()}
    for expected in [("stt", "faster-whisper"), ("llm", "llama-cpp"), ("tts", "piper"),
                     ("avatar", "portrait"), ("llm", "openai"), ("tts", "elevenlabs"),
                     ("avatar", "replicate")]:  # fmt: skip
        assert expected in names
    for spec in registry.list_backends():
        assert spec.name == "fake" or spec.extra is not None
        module, _, attr = spec.target.partition(":")
        assert module.startswith("lexperience.") and attr


def test_missing_env_reports_unset_keys(monkeypatch) -> None:
    spec = registry.get_spec("llm", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert spec.missing_env == ("OPENAI_API_KEY",)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert spec.missing_env == ()


def test_require_rewrites_only_the_missing_module() -> None:
    assert is_installed("numpy") and not is_installed("no_such_module_xyz")
    assert not is_installed("no_such_pkg_xyz.sub")
    with pytest.raises(MissingDependencyError, match=r"lexperience\[media\]"):
        require("no_such_module_xyz", "media")
    assert require("json", "x").dumps([]) == "[]"
