"""``lexperience ui``: its flags become the app's config; bad ones fail before serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES

import lexperience.ui
from lexperience.cli import EXIT_CONFIG, main
from lexperience.live import LiveOptions
from lexperience.ui import UIConfig


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake_serve(config: UIConfig, **kwargs: Any) -> None:
        calls.append({"config": config, **kwargs})

    monkeypatch.setattr(lexperience.ui, "serve", fake_serve)
    return calls


def test_flags_become_the_config(served: list[dict[str, Any]], tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    personas.mkdir()
    code = main([
        "ui", "--stt", "fake", "--llm", "fake", "--tts", "fake", "--avatar", "none",
        "--personas", str(personas), "--episode", str(EXAMPLES / "episode" / "slow-signals-12.vtt"),
        "--port", "7999", "--max-turns", "3",
    ])  # fmt: skip
    assert code == 0
    (call,) = served
    config: UIConfig = call["config"]
    assert config.stack.llm.name == "fake" and config.stack.avatar is None
    assert config.personas_dir == personas and config.max_concurrent_turns == 3
    assert config.episode is not None and config.episode.name == "slow-signals-12.vtt"
    assert call["port"] == 7999 and call["host"] == "127.0.0.1" and call["auth"] is None


def test_live_flags_reach_the_live_tab(served: list[dict[str, Any]]) -> None:
    base = ["ui", "--stt", "fake", "--llm", "fake", "--tts", "fake", "--avatar", "none"]
    assert main([*base, "--end-of-turn", "0.8", "--no-preemptive", "--no-barge-in"]) == 0
    live = served[-1]["config"].live
    assert live.end_of_turn_silence == 0.8 and live.preemptive is False and not live.barge_in
    assert main(base) == 0  # no flags: the defaults of lexperience live
    assert served[-1]["config"].live == LiveOptions()


def test_a_bad_live_flag_fails_before_serving(
    served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["ui", "--stt", "fake", "--llm", "fake", "--tts", "fake", "--avatar", "none"]
    assert main([*base, "--end-of-turn", "-1"]) == EXIT_CONFIG
    assert "configuration error: --end-of-turn -1.0:" in capsys.readouterr().err
    assert served == []


def test_the_default_is_the_offline_stack(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lexperience.cli_ui._check_backends", lambda settings: None)
    assert main(["ui"]) == 0
    stack = served[0]["config"].stack
    assert (stack.stt.name, stack.llm.name, stack.tts.name, stack.avatar.name) == (
        "faster-whisper", "llama-cpp", "piper", "portrait",
    )  # fmt: skip


def test_bad_flags_fail_with_the_configuration_exit_code(
    served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["ui", "--llm", "nope"]) == EXIT_CONFIG
    assert "unknown llm backend 'nope'" in capsys.readouterr().err
    assert main(["ui", "--llm", "fake", "--tts", "fake", "--host", "0.0.0.0"]) == EXIT_CONFIG
    assert "--auth" in capsys.readouterr().err
    assert main(["ui", "--host", "0.0.0.0", "--auth", "me:short"]) == EXIT_CONFIG
    assert main(["ui", "--personas", str(tmp_path / "missing")]) == EXIT_CONFIG
    assert main(["ui", "--persona", str(tmp_path / "missing.toml")]) == EXIT_CONFIG
    assert served == []


def test_a_public_address_with_a_log_in(served: list[dict[str, Any]]) -> None:
    code = main(["ui", "--stt", "fake", "--llm", "fake", "--tts", "fake", "--avatar", "fake",
                 "--host", "0.0.0.0", "--auth", "listener:long-enough-secret"])  # fmt: skip
    assert code == 0 and served[0]["auth"] == ("listener", "long-enough-secret")
