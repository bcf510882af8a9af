from __future__ import annotations

import json

import pytest

from lexperience import DEFAULT_PERSONA, ConfigurationError, Persona


def test_default_persona_is_fictional_and_bounded() -> None:
    assert DEFAULT_PERSONA.name == "Theo Calloway"
    assert "fictional" in DEFAULT_PERSONA.prompt
    assert DEFAULT_PERSONA.portrait is None  # the built-in host is drawn by code
    assert "at most 2 sentences" in DEFAULT_PERSONA.system_message()


def test_from_toml_resolves_relative_portrait(tmp_path) -> None:
    (tmp_path / "face.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "p.toml").write_text(
        'name = "Ada"\nprompt = "You are Ada."\nportrait = "face.png"\n'
        'max_sentences = 4\n[voices]\npiper = "/v.onnx"\n'
    )
    p = Persona.from_file(tmp_path / "p.toml")
    assert p.portrait == tmp_path / "face.png"
    assert p.voice_for("piper") == "/v.onnx" and p.voice_for("openai") is None
    assert p.max_sentences == 4
    (tmp_path / "v.onnx").write_bytes(b"x")
    (tmp_path / "q.toml").write_text(
        'name = "A"\nprompt = "p"\n[voices]\npiper = "v.onnx"\nopenai = "alloy"\n'
    )
    q = Persona.from_file(tmp_path / "q.toml")
    assert q.voices == {"piper": str(tmp_path / "v.onnx"), "openai": "alloy"}


def test_from_yaml_and_json_and_persona_table(tmp_path) -> None:
    (tmp_path / "p.yaml").write_text("persona:\n  name: Bo\n  prompt: You are Bo.\n")
    assert Persona.from_file(tmp_path / "p.yaml").name == "Bo"
    (tmp_path / "p.json").write_text(json.dumps({"name": "Cy", "prompt": "x", "language": "de"}))
    assert Persona.from_file(tmp_path / "p.json").language == "de"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('name = "A"\nprompt = "x"\ncolour = "red"\n', "colour"),
        ('name = "A"\n', "prompt"),
        ('name = "A"\nprompt = "x"\nmax_sentences = 0\n', "max_sentences"),
        ('name = "A"\nprompt = "x"\nportrait = "missing.png"\n', "portrait"),
        ('name = "A"\nprompt = "x"\nlanguage = "English"\n', "language"),
        ("name = ", "cannot parse"),
    ],
)
def test_wrong_fields_name_the_problem(tmp_path, content: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(content)
    with pytest.raises(ConfigurationError, match=match):
        Persona.from_file(f)


def test_missing_and_unsupported_files(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        Persona.from_file(tmp_path / "none.toml")
    (tmp_path / "p.ini").write_text("x")
    with pytest.raises(ConfigurationError, match="unsupported"):
        Persona.from_file(tmp_path / "p.ini")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="table"):
        Persona.from_file(tmp_path / "list.json")
