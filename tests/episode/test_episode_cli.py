"""The command line: reply --episode --at, episode transcribe, episode search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lexperience import Audio, Episode
from lexperience.cli import main

ROOT = Path(__file__).resolve().parents[2]
VTT = ROOT / "examples" / "episode" / "slow-signals-12.vtt"
FAKES = ["--stt", "fake", "--llm", "fake", "--tts", "fake", "--avatar", "none"]


def test_reply_at_a_position_in_an_episode(tmp_path, capsys) -> None:
    code = main(
        [
            "reply",
            "--text",
            "What does the storm drain hum at?",
            "--episode",
            str(VTT),
            "--at",
            "1:40",
            "-o",
            str(tmp_path),
            *FAKES,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Theo Calloway: You asked: What does the storm drain hum at." in captured.out
    assert "drew on [" in captured.err and "Harrow Street" not in captured.err.split("drew on")[0]
    assert (tmp_path / "reply.wav").is_file()


def test_reply_episode_errors(tmp_path, capsys) -> None:
    base = ["reply", "--text", "hi", "-o", str(tmp_path), *FAKES]
    assert main([*base, "--episode", str(VTT)]) == 3  # no --at
    assert "--episode needs --at" in capsys.readouterr().err
    assert main([*base, "--at", "1:00"]) == 3  # no --episode
    bad = tmp_path / "bad.vtt"
    bad.write_text("WEBVTT\n\n00:00:01.000 --> nope\nhi\n")
    assert main([*base, "--episode", str(bad), "--at", "0:30"]) == 4
    assert "line 3" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*base, "--episode", str(VTT), "--at", "12:99"])
    assert info.value.code == 2


def test_episode_search(capsys) -> None:
    assert (
        main(
            [
                "episode",
                "search",
                str(VTT),
                "What does the storm drain hum at?",
                "--at",
                "2:00",
                "-k",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(line.startswith("[1:") for line in out)
    assert any("Harrow Street" in line and "fifty eight hertz" in line for line in out)
    assert (
        main(
            [
                "episode",
                "search",
                str(VTT),
                "What does the storm drain hum at?",
                "--at",
                "1:00",
                "--json",
            ]
        )
        == 0
    )
    early = json.loads(capsys.readouterr().out)
    assert all("Harrow" not in p["text"] for p in early)  # said at 1:10, after 1:00
    assert all(p["end"] <= 60.0 for p in early)


def test_episode_transcribe_with_a_backend_from_the_registry(tmp_path, capsys) -> None:
    rng = np.random.default_rng(1)
    speech = [rng.normal(0, 0.2, 16000 * 4).astype(np.float32), np.zeros(16000, np.float32)]
    wav = Audio(np.concatenate(speech * 5), 16000).save(tmp_path / "ep.wav")
    out = tmp_path / "ep.json"
    code = main(
        [
            "episode",
            "transcribe",
            str(wav),
            "-o",
            str(out),
            "--stt",
            "fake",
            "--chunk-seconds",
            "8",
            "--title",
            "Noise",
            "--host",
            "Theo Calloway",
            "--guest",
            "Tamsin Okoro",
            "--speaker",
            "Theo Calloway",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "transcribed" in captured.err and f"wrote {out}" in captured.out
    ep = Episode.load(out)
    assert ep.title == "Noise" and ep.guests == ("Tamsin Okoro",) and ep.audio == str(wav)
    assert len(ep) >= 3 and all(s.speaker == "Theo Calloway" for s in ep.segments)
    assert not (tmp_path / "ep.json.partial").exists()
    assert (
        main(["episode", "transcribe", str(wav), "-o", str(tmp_path / "x.txt"), "--stt", "fake"])
        == 3
    )
    assert (
        main(["episode", "transcribe", str(tmp_path / "nope.mp3"), "-o", str(out), "--stt", "fake"])
        == 4
    )
