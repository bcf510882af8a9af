"""What the service refuses, and how it ends: rate limits, admission control, caps, TTLs,
CORS, secrets in logs, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from service_support import TOKEN, fake_stack, live_server

from lexperience import RateLimitError
from lexperience.client import AsyncClient, ServiceError
from lexperience.server import ServerSettings
from lexperience.server.limits import Admission, RateLimiter, ServerBusy
from lexperience.server.store import ConversationStore, Entry, MediaStore


async def test_turns_past_the_rate_get_429_with_retry_after() -> None:
    settings = ServerSettings(stack=fake_stack(), turns_per_minute=6, burst=2)
    with live_server(settings) as url:
        async with AsyncClient(url) as client:
            conv = await client.create_conversation()
            await conv.ask("one")
            await conv.ask("two")
            with pytest.raises(RateLimitError) as info:
                await conv.ask("three")
            assert info.value.retry_after >= 1  # type: ignore[attr-defined]
            raw = await client._http.post(f"/v1/conversations/{conv.id}/turns",
                                          json={"text": "four"})  # fmt: skip
            assert raw.status_code == 429 and int(raw.headers["Retry-After"]) >= 1


async def test_a_full_process_answers_503_instead_of_queueing_forever() -> None:
    settings = ServerSettings(stack=fake_stack(token_interval=0.05), max_concurrent_turns=1,
                              max_queued_turns=1, turns_per_minute=600, burst=100)  # fmt: skip
    with live_server(settings) as url:
        async with AsyncClient(url) as client:
            convs = await asyncio.gather(*(client.create_conversation() for _ in range(4)))
            results = await asyncio.gather(*(c.ask(f"question {i}") for i, c in enumerate(convs)),
                                           return_exceptions=True)  # fmt: skip
            refused = [r for r in results if isinstance(r, ServiceError)]
            answered = [r for r in results if not isinstance(r, BaseException)]
            assert len(answered) == 2 and len(refused) == 2  # one running, one queued
            assert all(r.status == 503 and r.retryable and r.retry_after for r in refused)


def test_admission_counts_running_waiting_and_refused() -> None:
    async def scenario() -> None:
        admission = Admission(slots=1, queue=0)
        async with admission.slot():
            assert admission.running == 1
            with pytest.raises(ServerBusy) as info:
                async with admission.slot():
                    pass  # pragma: no cover
            assert info.value.retry_after >= 1
        assert admission.running == 0 and admission.refused == 1

    asyncio.run(scenario())


def test_rate_limiter_refills_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    limiter = RateLimiter(per_minute=60, burst=2)
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(Exception) as info:
        limiter.take("a")
    assert info.value.retry_after == pytest.approx(1.0)  # type: ignore[attr-defined]
    limiter.take("b")  # another client has its own bucket
    now[0] += 1.0
    limiter.take("a")


async def test_conversation_cap_and_ttl() -> None:
    settings = ServerSettings(stack=fake_stack(), max_conversations=2)
    with live_server(settings) as url:
        async with AsyncClient(url) as client:
            await client.create_conversation()
            await client.create_conversation()
            with pytest.raises(ServiceError) as info:
                await client.create_conversation()
            assert info.value.status == 503 and info.value.retry_after


def test_idle_conversations_expire_but_busy_ones_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    from lexperience import Conversation
    from lexperience.testing import FakeLLM, FakeTTS

    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    store = ConversationStore(worker_id="w0", max_conversations=10, ttl=60)
    idle = Entry("w0-a", Conversation(llm=FakeLLM(), tts=FakeTTS()), "default", {})
    streaming = Entry("w0-b", Conversation(llm=FakeLLM(), tts=FakeTTS()), "default", {})
    streaming.streams = 1
    store.add(idle)
    store.add(streaming)
    now[0] = 61.0
    assert [e.id for e in store.expire()] == ["w0-a"]
    assert store.get("w0-a") is None and store.get("w0-b") is streaming
    media = MediaStore(ttl=10, max_bytes=1024 * 1024)
    media.put("w0-b", 1, "reply.wav", b"x" * 1000, "audio/wav")
    now[0] = 65.0
    assert media.get("w0-b", 1, "reply.wav") is not None
    now[0] = 80.0
    assert media.get("w0-b", 1, "reply.wav") is None and media.size == 0


async def test_cors_is_off_unless_configured() -> None:
    origin = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with live_server(ServerSettings(stack=fake_stack())) as url:
        async with httpx.AsyncClient(base_url=url) as raw:
            response = await raw.options("/v1/conversations", headers=origin)
            assert "access-control-allow-origin" not in response.headers
    allowed = ServerSettings(stack=fake_stack(), cors_origins=["https://app.example"])
    with live_server(allowed) as url:
        async with httpx.AsyncClient(base_url=url) as raw:
            response = await raw.options("/v1/conversations", headers={
                **origin, "Origin": "https://app.example"})  # fmt: skip
            assert response.headers["access-control-allow-origin"] == "https://app.example"


async def test_openapi_document_and_probes() -> None:
    with live_server(ServerSettings(stack=fake_stack())) as url:
        async with httpx.AsyncClient(base_url=url) as raw:
            spec = (await raw.get("/openapi.json")).json()
            paths = spec["paths"]
            assert (
                "/v1/conversations" in paths
                and "/v1/conversations/{conversation_id}/turns" in paths
            )
            turn = paths["/v1/conversations/{conversation_id}/turns"]["post"]
            assert {"application/json", "multipart/form-data"} <= set(
                turn["requestBody"]["content"]
            )
            for _ in range(100):  # readiness follows the models' loading
                if (await raw.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            ready = (await raw.get("/readyz")).json()
            assert ready["status"] == "ready" and ready["running_turns"] == 0


async def test_no_token_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lexperience")
    settings = ServerSettings(stack=fake_stack(), tokens=[TOKEN])
    with live_server(settings) as url:
        async with httpx.AsyncClient(base_url=url) as raw:
            await raw.post(
                "/v1/conversations", json={}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            await raw.get(f"/healthz?access_token={TOKEN}")
            await raw.post(
                "/v1/conversations",
                json={},
                headers={"Authorization": "Bearer wrong-token-zzzzzzzz"},
            )
    access = [r for r in caplog.records if r.name == "lexperience.server.access"]
    assert any(r.getMessage().startswith("POST /v1/conversations 201") for r in access)
    assert any("access_token=***" in r.getMessage() for r in access)
    assert TOKEN not in caplog.text


async def test_shutdown_lets_a_running_turn_finish() -> None:
    settings = ServerSettings(stack=fake_stack(token_interval=0.03), shutdown_grace=10)
    with live_server(settings) as url:
        client = AsyncClient(url)
        conv = await client.create_conversation()
        running = asyncio.ensure_future(conv.ask("finish me please, even while shutting down"))
        await asyncio.sleep(0.1)
        # leaving the block stops the server (uvicorn's graceful shutdown, then our lifespan)
    reply = await running
    assert reply.text and not reply.interrupted
    await client.aclose()
