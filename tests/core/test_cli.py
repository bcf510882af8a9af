from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lexperience import Audio
from lexperience.cli import main

FAKES = ["--stt", "fake", "--llm", "fake", "--tts", "fake", "--avatar", "fake"]


def test_reply_with_text_and_fakes(tmp_path, capsys) -> None:
    code = main(["reply", "--text", "Why is the sky blue?", "-o", str(tmp_path), *FAKES, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert "You: Why is the sky blue?" in out
    assert "Theo Calloway: You asked: Why is the sky blue." in out
    assert (tmp_path / "reply.mp4").stat().st_size > 0
    assert (tmp_path / "reply.wav").stat().st_size > 0
    info = json.loads((tmp_path / "reply.json").read_text())
    assert info["metrics"]["first_audio_s"] is not None and info["video_frames"] > 0
    assert "timings: transcript" in out


def test_reply_with_audio_file(tmp_path, capsys) -> None:
    wav = Audio(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    path = wav.save(tmp_path / "q.wav")
    assert main(["reply", str(path), "-o", str(tmp_path / "out"), *FAKES, "-q"]) == 0
    assert "You: What is a black hole?" in capsys.readouterr().out


def test_exit_codes(tmp_path, capsys) -> None:
    silent = Audio.silence(1.0).save(tmp_path / "silent.wav")
    assert main(["reply", str(silent), "-o", str(tmp_path), *FAKES]) == 4
    assert "invalid input: the audio is silence only" in capsys.readouterr().err
    assert main(["reply", str(tmp_path / "missing.wav"), "-o", str(tmp_path), *FAKES]) == 4
    assert main(["reply", "--text", "hi", "--llm", "nope", "--tts", "fake", "-o",
                 str(tmp_path)]) == 3  # fmt: skip
    assert "unknown llm backend 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[llm]\nname = 'fake'\ncolour = 1\n")
    assert main(["reply", "--text", "hi", "--config", str(bad), "-o", str(tmp_path)]) == 3
    with pytest.raises(SystemExit) as info:
        main(["reply", "-o", str(tmp_path), *FAKES])  # neither audio nor --text
    assert info.value.code == 2


def test_config_file_selects_backends(tmp_path, capsys) -> None:
    (tmp_path / "host.toml").write_text('name = "Ada"\nprompt = "You are Ada."\n')
    cfg = tmp_path / "lex.toml"
    cfg.write_text(
        'persona = "host.toml"\nwatermark = false\n'
        '[stt]\nname = "fake"\n[llm]\nname = "fake"\n[llm.options]\nreply = "Hello from Ada."\n'
        '[tts]\nname = "fake"\n[avatar]\nname = "none"\n'
    )
    assert main(["reply", "--text", "hi", "--config", str(cfg), "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "Ada: Hello from Ada." in out
    assert not (tmp_path / "o" / "reply.mp4").exists()


def test_backends_command(capsys) -> None:
    assert main(["backends", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {(r["kind"], r["name"]) for r in rows}
    assert ("tts", "fake") in names and ("avatar", "portrait") in names
    assert main(["backends"]) == 0
    assert "KIND" in capsys.readouterr().out


@pytest.mark.parametrize("args", [[], ["reply"], ["backends"]])
def test_help_everywhere(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "lexperience", *args, "--help"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0 and "usage: lexperience" in out.stdout
    if args == ["reply"]:
        assert "--no-watermark" in out.stdout and "--config" in out.stdout
