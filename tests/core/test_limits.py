"""Limits and secrets: byte caps before reading, names that cannot become paths, files that
cannot climb out of their folder, and no key in any error message."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from lexperience import (
    Audio,
    BackendError,
    ConfigurationError,
    Conversation,
    InvalidInputError,
    LexperienceError,
    Persona,
    Reply,
    TurnOptions,
)
from lexperience._redact import redact, register_secret
from lexperience.config import Settings
from lexperience.testing import FakeLLM, FakeTTS


def wav(seconds: float = 1.0) -> bytes:
    return Audio(np.full(int(16_000 * seconds), 0.1, np.float32), 16_000).to_wav_bytes()


def test_audio_load_refuses_a_big_file_before_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.wav"
    path.write_bytes(wav(2.0))

    def never(self: Path) -> bytes:
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", never)
    with pytest.raises(InvalidInputError, match="the limit is 1000 bytes"):
        Audio.load(path, max_bytes=1000)


def test_audio_load_caps_bytes_and_file_objects() -> None:
    data = wav(1.0)
    with pytest.raises(InvalidInputError, match="limit"):
        Audio.load(data, max_bytes=len(data) - 1)
    assert len(Audio.load(data, max_bytes=len(data))) == 16_000

    class Recording(io.BytesIO):
        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.asked: list[int] = []

        def read(self, size: int | None = -1) -> bytes:
            self.asked.append(-1 if size is None else size)
            return super().read(size)

    source = Recording(data * 100)
    with pytest.raises(InvalidInputError, match="more than 5000 bytes"):
        Audio.load(source, max_bytes=5000)
    assert source.asked == [5001]  # it never read the whole stream


async def test_a_conversation_applies_its_byte_cap() -> None:
    conv = Conversation(
        stt="fake", llm=FakeLLM(), tts=FakeTTS(), options=TurnOptions(max_input_bytes=1000)
    )
    with pytest.raises(InvalidInputError, match="max_input_bytes"):
        await conv.areply(wav(1.0))
    assert conv.history == []


@pytest.mark.parametrize("stem", ["../escape", "a/b", "/abs", ".hidden", "", "a\\b", "x..y"])
def test_reply_save_refuses_stems_that_are_paths(tmp_path: Path, stem: str) -> None:
    reply = Reply(turn_id=1, user_text="q", text="a")
    with pytest.raises(InvalidInputError, match="plain file name"):
        reply.save(tmp_path, stem=stem)
    assert list(tmp_path.iterdir()) == []


def test_reply_save_accepts_plain_stems(tmp_path: Path) -> None:
    saved = Reply(turn_id=1, user_text="q", text="a").save(tmp_path, stem="turn-01_final.v2")
    assert saved.json_path == tmp_path / "turn-01_final.v2.json"


def test_persona_files_cannot_point_outside_their_folder(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG")
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "face.png").write_bytes(b"\x89PNG")
    bad = folder / "bad.toml"
    bad.write_text('name = "X"\nprompt = "p"\nportrait = "../secret.png"\n', "utf-8")
    with pytest.raises(ConfigurationError, match="climbs out"):
        Persona.from_file(bad)
    voice = folder / "voice.toml"
    voice.write_text('name = "X"\nprompt = "p"\n[voices]\npiper = "../../etc/passwd"\n', "utf-8")
    with pytest.raises(ConfigurationError, match="climbs out"):
        Persona.from_file(voice)
    good = folder / "good.toml"
    good.write_text('name = "X"\nprompt = "p"\nportrait = "face.png"\n', "utf-8")
    assert Persona.from_file(good).portrait == (folder / "face.png").resolve()
    absolute = folder / "absolute.toml"
    absolute.write_text(f'name = "X"\nprompt = "p"\nportrait = "{secret}"\n', "utf-8")
    assert Persona.from_file(absolute).portrait == secret.resolve()  # explicit: allowed locally
    with pytest.raises(ConfigurationError, match="outside"):
        Persona.from_file(absolute, confine=True)  # a service confines files to the folder


def test_settings_cannot_name_a_persona_outside_their_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    cfg = folder / "settings.toml"
    cfg.write_text('persona = "../../elsewhere/persona.toml"\n', "utf-8")
    with pytest.raises(ConfigurationError, match="climbs out"):
        Settings.from_file(cfg)


def test_redact_hides_registered_keys_and_key_shapes() -> None:
    register_secret("my-very-private-key-123")
    text = redact(
        "failed with my-very-private-key-123; header Authorization: Bearer abcdefghijklmnop1234 "
        "and sk-proj-ABCDEFGHIJKLMNOPQRSTUV and r8_ABCDEFGHIJKLMNOPQRSTUVWX"
    )
    assert "private-key" not in text and "abcdefghijklmnop1234" not in text
    assert "sk-proj" not in text and "r8_ABC" not in text
    assert text.count("***") == 4
    assert redact("connection reset by peer") == "connection reset by peer"


async def test_wrapped_foreign_errors_are_redacted() -> None:
    key = "sk-live-0123456789abcdefghij"
    llm = FakeLLM(fail_after=0, error=RuntimeError(f"401 for key {key}"))
    conv = Conversation(llm=llm, tts=FakeTTS())
    with pytest.raises(BackendError) as info:
        await conv.areply("q")
    assert key not in str(info.value) and "***" in str(info.value)

    class Exploding:
        name = "exploding"
        sample_rate = 16_000

        async def stream(self, text: str):  # type: ignore[no-untyped-def]
            raise KeyError(f"token {key}")
            yield  # pragma: no cover

    conv = Conversation(llm=FakeLLM(), tts=Exploding())
    with pytest.raises(LexperienceError) as info2:
        await conv.areply("q")
    assert key not in str(info2.value)
