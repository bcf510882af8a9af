"""The service over a real socket, with the real HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import numpy as np
import pytest
from service_support import TOKEN, fake_stack, live_server

from lexperience import (
    Audio,
    AuthenticationError,
    ConfigurationError,
    ConversationBusyError,
    InvalidInputError,
    Message,
)
from lexperience.client import AsyncClient, Client, ServiceError
from lexperience.server import ServerSettings
from lexperience.server.schema import (
    WIRE_EVENTS,
    SessionStarted,
    VideoSegment,
    parse_server_message,
)


def tone(seconds: float = 1.0, rate: int = 16_000) -> Audio:
    t = np.arange(int(rate * seconds)) / rate
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


async def test_a_full_text_turn_with_media(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        assert await client.ready()
        conv = await client.create_conversation()
        assert conv.id.startswith("w0-") and conv.info.backends["llm"] == "fake"
        reply = await conv.ask("Why is the sky blue?")
        assert reply.user_text == "Why is the sky blue?" and "sky blue" in reply.text
        assert reply.metrics.first_audio_s is not None and reply.video_frames > 0
        wav = await conv.download(reply.media["wav"])
        assert Audio.load(wav).duration == pytest.approx(reply.audio_seconds, abs=0.01)
        mp4 = await conv.download(reply.media["mp4"])
        assert mp4[4:8] == b"ftyp"
        info = await conv.refresh()
        assert [m.role for m in info.history] == ["user", "assistant"] and info.turns == 1
        await conv.delete()
        with pytest.raises(ServiceError) as gone:
            await conv.refresh()
        assert gone.value.status == 404


async def test_an_uploaded_audio_question(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        reply = await conv.ask(tone())
        assert reply.transcript is not None and reply.transcript.text == "What is a black hole?"
        raw = await client._http.post(
            f"/v1/conversations/{conv.id}/turns", content=tone().to_wav_bytes(),
            headers={"Content-Type": "audio/wav"},
        )  # fmt: skip
        assert raw.status_code == 200 and raw.json()["turn_id"] == 2


async def test_wrong_or_missing_token_is_401(service: str) -> None:
    async with AsyncClient(service, token="not-the-token-at-all-xx") as client:
        with pytest.raises(AuthenticationError):
            await client.create_conversation()
    async with httpx.AsyncClient(base_url=service) as raw:
        response = await raw.post("/v1/conversations", json={})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "Unauthorized"
        assert (await raw.get("/healthz")).status_code == 200  # probes need no token


async def test_oversize_upload_is_413_and_non_audio_is_422(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        big = tone(70.0).to_wav_bytes()  # 2.2 MB > the 2 MiB cap
        raw = await client._http.post(f"/v1/conversations/{conv.id}/turns",
                                      files={"audio": ("big.wav", big, "audio/wav")})  # fmt: skip
        assert raw.status_code == 413 and "larger than" in raw.json()["error"]["message"]
        with pytest.raises(InvalidInputError, match="not audio: expected WAV, MP3"):
            await conv.ask(b"%PDF-1.4 this is a document, not a recording")
        with pytest.raises(InvalidInputError, match="empty"):
            await conv.ask("   ")
        assert (await conv.refresh()).history == []  # nothing was lost or added


async def test_unknown_conversation_is_404(service: str) -> None:
    async with httpx.AsyncClient(
        base_url=service, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as raw:
        for method, path in (("GET", "/v1/conversations/w0-nope"),
                             ("DELETE", "/v1/conversations/w0-nope"),
                             ("POST", "/v1/conversations/w0-nope/turns"),
                             ("GET", "/v1/conversations/w0-nope/turns/1/reply.wav")):  # fmt: skip
            response = await raw.request(method, path, json={"text": "hi"})
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["type"] == "NotFound"


async def test_bad_backend_choice_is_400(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        with pytest.raises(ConfigurationError, match="not offered by this server"):
            await client.create_conversation(llm="openai")
        with pytest.raises(ConfigurationError, match="unknown persona"):
            await client.create_conversation(persona="someone")


async def test_a_second_turn_on_a_busy_conversation_is_409(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        first = asyncio.ensure_future(conv.ask("a first question that takes a while to answer"))
        await asyncio.sleep(0.05)
        with pytest.raises(ConversationBusyError):
            await conv.ask("a second question")
        assert (await first).text


async def test_websocket_turn_streams_every_event_in_the_schema(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        async with conv.stream() as stream:
            assert isinstance(stream.session, SessionStarted)
            await stream.ask("What is a comet?")
            kinds = []
            audio_bytes = 0
            async for message, _ in stream.events():
                kinds.append(message.type)  # type: ignore[attr-defined]
                if message.type == "audio":  # type: ignore[attr-defined]
                    audio_bytes += len(base64.b64decode(message.chunk.data))  # type: ignore[attr-defined]
                if message.type == "video":  # type: ignore[attr-defined]
                    assert base64.b64decode(message.frame.data)[:2] == b"\xff\xd8"  # type: ignore[attr-defined]
        assert kinds[0] == "turn_started" and kinds[-1] == "turn_done"
        assert {"text_delta", "sentence", "audio", "video"} <= set(kinds)
        last = message
        assert last.reply.audio_seconds * 16_000 * 2 == pytest.approx(audio_bytes, abs=4)  # type: ignore[attr-defined]


async def test_websocket_spoken_turn_in_binary_mode_with_mp4_segments(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        async with conv.stream(binary=True, video="mp4") as stream:
            await stream.say(tone(1.0))
            segments, pcm = [], 0
            async for message, payload in stream.events():
                if isinstance(message, VideoSegment):
                    assert payload is not None and payload[4:8] == b"ftyp"
                    segments.append(message)
                elif message.type == "audio":  # type: ignore[attr-defined]
                    assert payload is not None and message.chunk.data is None  # type: ignore[attr-defined]
                    pcm += len(payload)
                elif message.type == "transcript":  # type: ignore[attr-defined]
                    assert message.transcript.text == "What is a black hole?"  # type: ignore[attr-defined]
        assert message.type == "turn_done" and len(segments) >= 1  # type: ignore[attr-defined]
        assert sum(s.frames for s in segments) == message.reply.video_frames  # type: ignore[attr-defined]
        assert pcm > 0


async def test_interrupt_mid_reply_over_the_stream_trims_the_history(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        async with conv.stream(video="none") as stream:
            await stream.ask("Tell me a long story about the sea and the sky and the stars")
            async for message, _ in stream.events():
                if message.type == "audio":  # type: ignore[attr-defined]
                    await stream.interrupt(played_seconds=0.0)
            assert message.type == "turn_interrupted"  # type: ignore[attr-defined]
            assert message.heard_text == ""  # type: ignore[attr-defined]
        info = await conv.refresh()
        assert info.history == [Message.user(
            "Tell me a long story about the sea and the sky and the stars")]  # fmt: skip


async def test_stream_protocol_errors_are_events_not_crashes(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conv = await client.create_conversation()
        async with conv.stream() as stream:
            await stream._ws.send(json.dumps({"type": "dance"}))
            message, _ = await stream.receive()
            assert message.type == "error" and message.error.type == "InvalidInputError"  # type: ignore[attr-defined]
            await stream._ws.send(b"\x00\x01\x02")  # audio bytes with no audio_start
            message, _ = await stream.receive()
            assert "without audio_start" in message.error.message  # type: ignore[attr-defined]
            await stream.ask("still works?")
            closing = [m async for m, _ in stream.events()][-1]
            assert closing.type == "turn_done"  # type: ignore[attr-defined]


async def test_twenty_concurrent_conversations_never_cross_talk(service: str) -> None:
    async with AsyncClient(service, token=TOKEN) as client:
        conversations = await asyncio.gather(*(client.create_conversation() for _ in range(20)))
        questions = [f"Question number {i} about topic {i * 7}" for i in range(20)]

        async def run(conv: object, question: str) -> tuple[str, str]:
            reply = await conv.ask(question)  # type: ignore[attr-defined]
            return reply.user_text, reply.text

        results = await asyncio.gather(
            *(run(c, q) for c, q in zip(conversations, questions, strict=True))
        )
    for question, (asked, answer) in zip(questions, results, strict=True):
        assert asked == question
        assert question.rstrip("?") in answer  # the fake LLM echoes its own question only
        others = [q for q in questions if q != question]
        assert not any(f"{q}." in answer for q in others)


def test_the_sync_client() -> None:
    with live_server(ServerSettings(stack=fake_stack())) as url, Client(url) as client:
        assert client.health()["status"] == "ok"
        conv = client.create_conversation(history=[Message.user("hi"), Message.assistant("hello")])
        assert len(conv.info.history) == 2  # a moved conversation keeps its history
        reply = conv.ask("And now?")
        assert reply.turn_id == 1 and "And now" in reply.text
        with conv.stream(video="none") as stream:
            stream.ask("over the socket")
            kinds = [m.type for m, _ in stream.events()]  # type: ignore[attr-defined]
        assert kinds[-1] == "turn_done"


def test_every_event_type_has_its_wire_model() -> None:
    for event_type, wire in WIRE_EVENTS.items():
        assert set(wire.model_fields) == set(event_type.model_fields)
        assert wire.model_fields["type"].default == event_type.model_fields["type"].default
    parsed = parse_server_message({"type": "sentence", "turn_id": 1, "t": 0.5, "index": 0,
                                   "text": "Hello."})  # fmt: skip
    assert type(parsed).__name__ == "WireSentenceEvent"


def test_refuses_a_public_address_without_a_token() -> None:
    with pytest.raises(ConfigurationError, match="without a token"):
        from lexperience.server import create_app

        create_app(ServerSettings(host="0.0.0.0", stack=fake_stack()))
    with pytest.raises(ConfigurationError, match="at least 16"):
        ServerSettings(tokens=["short"])
