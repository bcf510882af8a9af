"""The package logs under one logger per module, at debug level, with stage timings and never a
secret."""

from __future__ import annotations

import logging

import pytest

import lexperience
from lexperience import BackendError, Conversation
from lexperience.testing import FakeAvatar, FakeLLM, FakeTTS


async def test_stage_timings_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lexperience")
    await Conversation(llm=FakeLLM(), tts=FakeTTS(), avatar=FakeAvatar()).areply("q")
    pipeline = [r.getMessage() for r in caplog.records if r.name == "lexperience.pipeline"]
    for mark in ("first_token", "first_sentence", "first_audio", "first_video"):
        assert any(mark in m and " ms" in m for m in pipeline), mark
    assert any(m.startswith("turn 1 done: transcript") for m in pipeline)
    assert all(r.name.startswith("lexperience.") for r in caplog.records)
    assert all(r.levelno <= logging.DEBUG for r in caplog.records)


async def test_no_secret_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lexperience")
    key = "sk-test-abcdefghijklmnop0123"
    llm = FakeLLM(fail_after=1, error=RuntimeError(f"refused key {key}"))
    with pytest.raises(BackendError):
        await Conversation(llm=llm, tts=FakeTTS()).areply("q")
    assert "failed" in caplog.text and key not in caplog.text


def test_the_package_logger_stays_quiet_by_default() -> None:
    handlers = logging.getLogger(lexperience.__name__).handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
