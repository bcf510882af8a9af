"""A persona's language and speaking rate reach every TTS backend that takes them (issue 19)."""

from __future__ import annotations

import pytest

from lexperience import ConfigurationError, Persona
from lexperience.conversation import build_backend
from lexperience.persona import DEFAULT_PERSONA, tts_persona_options

FAST_GERMAN = Persona(name="Lena", prompt="Du bist Lena.", language="de", speaking_rate=1.25)


def test_options_follow_the_backend_signature() -> None:
    assert tts_persona_options(FAST_GERMAN, {"language": 0, "speed": 0}) == {
        "language": "de",
        "speed": 1.25,
    }
    assert tts_persona_options(FAST_GERMAN, {"language_code": 0}) == {"language_code": "de"}
    assert tts_persona_options(FAST_GERMAN, {"voice": 0}) == {}
    # the default persona leaves every backend on its own defaults
    assert tts_persona_options(DEFAULT_PERSONA, {"language": 0, "speed": 0}) == {}


def test_piper_gets_the_rate_and_checks_the_language() -> None:
    pytest.importorskip("piper")
    tts = build_backend("tts", "piper", DEFAULT_PERSONA.model_copy(update={"speaking_rate": 1.25}))
    assert tts.length_scale == pytest.approx(0.8)
    english = Persona(name="T", prompt="p", language="en", voices=DEFAULT_PERSONA.voices)
    assert build_backend("tts", "piper", english).language == "en"
    with pytest.raises(ConfigurationError, match="speaks"):
        build_backend("tts", "piper", FAST_GERMAN)  # the bundled voice is English


def test_espeak_gets_language_and_rate() -> None:
    pytest.importorskip("lexperience.backends.espeak_tts")
    tts = build_backend("tts", "espeak", FAST_GERMAN)
    assert tts.voice == "de" and tts.rate == round(165 * 1.25)


def test_explicit_options_win_over_the_persona() -> None:
    pytest.importorskip("lexperience.backends.espeak_tts")
    tts = build_backend("tts", "espeak", FAST_GERMAN, {"speed": 1.0})
    assert tts.rate == 165


def test_openai_gets_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    assert build_backend("tts", "openai", FAST_GERMAN).speed == 1.25


def test_elevenlabs_gets_language_code_and_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("elevenlabs")
    monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-test-not-a-key")
    slow = FAST_GERMAN.model_copy(update={"speaking_rate": 0.9})
    tts = build_backend("tts", "elevenlabs", slow)
    assert tts.language_code == "de" and tts.voice_settings == {"speed": 0.9}
    with pytest.raises(ConfigurationError, match=r"0\.7-1\.2"):
        build_backend("tts", "elevenlabs", FAST_GERMAN)  # 1.25 is beyond ElevenLabs' range
    given = build_backend("tts", "elevenlabs", slow, {"voice_settings": {"speed": 1.1}})
    assert given.voice_settings == {"speed": 1.1}
    from lexperience.backends.elevenlabs_tts import ElevenLabsTTS

    with pytest.raises(ConfigurationError, match="not both"):
        ElevenLabsTTS(speed=0.9, voice_settings={"speed": 1.1})
