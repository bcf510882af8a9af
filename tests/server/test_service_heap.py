"""``freeze_heap``: once the models are loaded the service moves what is alive to the collector's
permanent generation (``lexperience serve`` turns it on; ``create_app`` alone leaves it off)."""

from __future__ import annotations

import gc
import time
import urllib.request
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


def ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("the service never became ready")


@pytest.mark.parametrize("freeze", [True, False])
def test_the_heap_is_frozen_once_the_models_are_loaded(unfrozen: None, freeze: bool) -> None:
    settings = ServerSettings(stack=fake_stack(), freeze_heap=freeze)
    with live_server(settings) as url:
        ready(url)
        deadline = time.monotonic() + 10  # the freeze follows the encoders' warm-up
        while freeze and gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
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
