"""Live mode over the service's WebSocket: ``live_start``, a continuous PCM stream (mono, or with
the loudspeaker as a second channel), ``live_end``; the same events as in process, then
``live_ended``; protocol errors are events."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from service_support import TOKEN, fake_stack, live_server

from lexperience.client import AsyncClient
from lexperience.live.room import Track
from lexperience.server import ServerSettings


@pytest.fixture(scope="module")
def service():
    settings = ServerSettings(stack=fake_stack(), tokens=[TOKEN], turns_per_minute=600, burst=100)
    with live_server(settings) as url:
        yield url


def session_audio(voice) -> Track:
    track = Track()
    track.silence(0.5)
    track.add(voice["question"])
    track.silence(1.5)
    return track


@pytest.mark.parametrize("channels", [1, 2])
async def test_a_live_session_over_the_websocket(service, voice, channels) -> None:
    audio = session_audio(voice).audio().resample(24_000)
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        async with conv.stream(video="none") as stream:
            kinds = [m.type async for m, _ in stream.live(audio, sample_rate=24_000,
                                                           channels=channels)]  # fmt: skip
        info = await conv.refresh()
    assert kinds[-1] == "live_ended"
    order = [k for k in kinds if k in ("speech_started", "speech_ended", "turn_started",
                                       "transcript", "turn_done")]  # fmt: skip
    assert order == ["speech_started", "speech_ended", "turn_started", "transcript", "turn_done"]
    assert "audio" in kinds and "error" not in kinds
    assert [m.role for m in info.history] == ["user", "assistant"]


async def test_live_protocol_errors_are_events(service, voice) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        async with conv.stream(video="none") as stream:
            await stream.live_end()
            message, _ = await stream.receive()
            assert (
                message.type == "error" and "live_end without live_start" in message.error.message
            )
            await stream.live_start(channels=2)
            await stream._send(b"\x00\x00")  # half a stereo frame
            message, _ = await stream.receive()
            assert message.type == "error" and "whole frames" in message.error.message
            await stream.ask("typed while live")
            message, _ = await stream.receive()
            assert message.type == "error" and message.error.type == "ConversationBusyError"
            await stream.live_start()  # a second one is refused, and ended at once
            first, _ = await stream.receive()
            second, _ = await stream.receive()
            assert (first.type, second.type) == ("error", "live_ended") and second.turns == 0
            await stream.live_end()
            while (message := (await stream.receive())[0]).type != "live_ended":
                pass
            assert message.turns == 0


def test_the_blocking_client_runs_a_live_session(service, voice) -> None:
    from lexperience.client import Client

    with Client(service, token=TOKEN) as client:
        conv = client.create_conversation()
        with conv.stream(video="none") as stream:
            kinds = [m.type for m, _ in stream.live(session_audio(voice).audio())]
            stream.played(1, 0.5)  # accepted outside live mode too (nothing to report to)
    assert kinds[-1] == "live_ended" and "turn_done" in kinds
