"""``aopen`` builds each cloud backend's SDK client for the running loop, so the first turn does
not pay for it; nothing goes over the network before the first turn asks."""

from __future__ import annotations

from typing import Any

import pytest

from lexperience import Audio, Conversation, Persona
from lexperience.backends.elevenlabs_tts import ElevenLabsTTS
from lexperience.backends.openai_llm import OpenAILLM
from lexperience.backends.openai_stt import OpenAISTT
from lexperience.backends.openai_tts import OpenAITTS
from lexperience.testing.fakes import speech_like
from lexperience.testing.wire import ELEVENLABS_KEY, OPENAI_KEY, WireServer

pytest.importorskip("openai")
pytest.importorskip("elevenlabs")

pytestmark = pytest.mark.cloud


def count_builds(monkeypatch: pytest.MonkeyPatch, owner: type, builds: list[str]) -> None:
    original = owner._build  # type: ignore[attr-defined]

    def build(self: Any) -> Any:
        builds.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(owner, "_build", build)


@pytest.mark.parametrize("tts_kind", ["openai", "elevenlabs"])
async def test_aopen_builds_the_clients_and_the_turn_reuses_them(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch, tts_kind: str
) -> None:
    from lexperience.backends._openai_common import OpenAIConnection

    builds: list[str] = []
    count_builds(monkeypatch, OpenAIConnection, builds)
    count_builds(monkeypatch, ElevenLabsTTS, builds)
    tts = (
        OpenAITTS(api_key=OPENAI_KEY, base_url=wire.openai_url)
        if tts_kind == "openai"
        else ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=wire.url)
    )
    conv = Conversation(
        stt=OpenAISTT(api_key=OPENAI_KEY, base_url=wire.openai_url),
        llm=OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url),
        tts=tts,
        persona=Persona(name="Wren", prompt="You are Wren, a podcast host."),
    )
    async with conv:
        # one client per backend, built at aopen, and not one request sent yet
        assert sorted(builds) == sorted(
            ["OpenAIConnection", "OpenAIConnection",
             "OpenAIConnection" if tts_kind == "openai" else "ElevenLabsTTS"]
        )  # fmt: skip
        assert len(wire.requests) == 0
        samples, _ = speech_like("what is a black hole", 16_000)
        reply = await conv.areply(Audio(samples, 16_000))
        assert reply.audio is not None and reply.audio.duration > 0
        assert len(builds) == 3  # the turn used the clients aopen built
