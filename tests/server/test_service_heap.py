"""``freeze_heap``: once the models are loaded the service moves what is alive to the collector's
permanent generation (``lexperience serve`` turns it on; ``create_app`` alone leaves it off)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator

import pytest
from service_support import fake_stack, live_server

from lexperience.cli import _parser
from lexperience.cli_serve import _settings
from lexperience.server import ServerSettings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with a normal collector


def wait_for_log(caplog: pytest.LogCaptureFixture, message: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(r.getMessage() == message for r in caplog.records):
        assert time.monotonic() < deadline, f"never logged: {message}"
        time.sleep(0.02)


@pytest.mark.parametrize("freeze", [True, False])
def test_the_heap_is_frozen_once_the_models_are_loaded(
    unfrozen: None, freeze: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lexperience.server.state")
    settings = ServerSettings(stack=fake_stack(), freeze_heap=freeze)
    with live_server(settings):
        wait_for_log(caplog, "models loaded: ready")  # logged once the freeze (if any) is done
        assert (gc.get_freeze_count() > 0) is freeze


def test_lexperience_serve_freezes_unless_told_or_configured_not_to(tmp_path) -> None:
    def settings(*argv: str) -> ServerSettings:
        return _settings(_parser().parse_args(["serve", *argv]))

    assert settings().freeze_heap is True
    assert settings("--no-freeze-heap").freeze_heap is False
    config = tmp_path / "server.json"
    config.write_text('{"freeze_heap": false}', "utf-8")  # what --workers hands its workers
    assert settings("--config", str(config)).freeze_heap is False
    assert settings("--config", str(config), "--freeze-heap").freeze_heap is True
    assert ServerSettings().freeze_heap is False
