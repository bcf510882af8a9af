"""The options every cloud backend shares: one ``ConnectOptions`` (timeouts, retries, back-off),
which key goes to which server, and the request ids kept on errors."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from lexperience import AuthenticationError, BackendError, ConfigurationError, Message
from lexperience.backends._cloud import ConnectOptions
from lexperience.backends.elevenlabs_tts import ElevenLabsTTS
from lexperience.backends.openai_llm import OpenAILLM
from lexperience.backends.openai_stt import OpenAISTT
from lexperience.backends.openai_tts import OpenAITTS
from lexperience.backends.replicate_avatar import ReplicateAvatar
from lexperience.testing.wire import (
    ELEVENLABS_KEY,
    OPENAI_KEY,
    REPLICATE_KEY,
    Behaviour,
    WireServer,
)

pytestmark = pytest.mark.cloud

needs_openai = pytest.mark.skipif(
    importlib.util.find_spec("openai") is None, reason="the openai SDK is not installed"
)
needs_elevenlabs = pytest.mark.skipif(
    importlib.util.find_spec("elevenlabs") is None, reason="the elevenlabs SDK is not installed"
)

MESSAGES = [Message.user("What is a black hole?")]
NO_WAIT = ConnectOptions(max_retries=3, retry_interval=0.0)


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


# -- ConnectOptions -----------------------------------------------------------------------------
def test_connect_options_is_a_frozen_validated_model() -> None:
    options = ConnectOptions()
    assert (options.timeout, options.max_retries) == (30.0, 2)
    with pytest.raises(pydantic.ValidationError):
        options.max_retries = 5  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        ConnectOptions(timeout=-1)
    with pytest.raises(pydantic.ValidationError):
        ConnectOptions(retry_backoff=0.5)


def test_retry_delays_back_off_exponentially_up_to_the_cap() -> None:
    options = ConnectOptions(retry_interval=1.0, retry_backoff=3.0, max_retry_interval=5.0)
    delays = [options.retry_delay(n) for n in range(4)]
    assert 0.75 <= delays[0] <= 1.0 and 2.25 <= delays[1] <= 3.0  # 25 % jitter at most
    assert 3.75 <= delays[2] <= 5.0 and 3.75 <= delays[3] <= 5.0


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: OpenAISTT(api_key=OPENAI_KEY, **kw),
        lambda **kw: OpenAILLM(api_key=OPENAI_KEY, **kw),
        lambda **kw: OpenAITTS(api_key=OPENAI_KEY, **kw),
        lambda **kw: ElevenLabsTTS(api_key=ELEVENLABS_KEY, **kw),
    ],
    ids=["openai-stt", "openai-llm", "openai-tts", "elevenlabs"],
)
def test_every_backend_takes_conn_options_or_the_simple_keywords(make: Any) -> None:
    options = ConnectOptions(timeout=5.0, max_retries=4, retry_interval=0.1)
    assert make(conn_options=options).conn_options == options
    simple = make(timeout=7.0, max_retries=1).conn_options
    assert (simple.timeout, simple.max_retries) == (7.0, 1)
    with pytest.raises(ConfigurationError, match="not both"):
        make(conn_options=options, max_retries=5)
    with pytest.raises(ConfigurationError, match="max_retries"):
        make(max_retries=-1)


def test_the_replicate_avatar_takes_conn_options(portrait: Path) -> None:
    pytest.importorskip("replicate")
    options = ConnectOptions(timeout=5.0, max_retries=0)
    backend = ReplicateAvatar(api_token=REPLICATE_KEY, portrait=portrait, conn_options=options)
    assert backend.conn_options == options and backend.timeout == 5.0


@needs_openai
async def test_openai_retries_follow_conn_options_and_the_sdk_retries_are_off(
    wire: WireServer,
) -> None:
    wire.script("chat", *[Behaviour(status=500)] * 3)
    llm = OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url, conn_options=NO_WAIT)
    assert "".join(await collect(llm.stream(MESSAGES))) == wire.reply_text
    assert len(wire.calls("chat")) == 4  # three failures, then the answer: one retry loop only
    await llm.aclose()


@needs_openai
async def test_x_should_retry_false_is_obeyed(wire: WireServer) -> None:
    wire.script("chat", Behaviour(status=503, headers={"x-should-retry": "false"}))
    llm = OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url, conn_options=NO_WAIT)
    with pytest.raises(BackendError) as info:
        await collect(llm.stream(MESSAGES))
    assert info.value.status == 503 and len(wire.calls("chat")) == 1


@needs_elevenlabs
async def test_elevenlabs_retries_follow_conn_options(wire: WireServer) -> None:
    wire.script("el_timestamps", *[Behaviour(status=502)] * 3)
    tts = ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=wire.url, conn_options=NO_WAIT)
    chunks = await collect(tts.stream("Black holes bend light."))
    assert chunks and len(wire.calls("el_timestamps")) == 4
    await tts.aclose()


# -- which key goes where -------------------------------------------------------------------
@needs_openai
async def test_the_environment_key_is_not_sent_to_another_server(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    llm = OpenAILLM(base_url=wire.openai_url, max_retries=0)  # 127.0.0.1 is not OpenAI
    with pytest.raises(AuthenticationError):  # the server wanted the key; it did not get it
        await collect(llm.stream(MESSAGES))
    (call,) = wire.calls("chat")
    assert call.headers["authorization"] == "Bearer not-needed"
    assert OPENAI_KEY not in str(call.headers)


@needs_openai
async def test_the_environment_key_goes_to_another_server_when_asked(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    llm = OpenAILLM(base_url=wire.openai_url, send_env_key=True)
    assert "".join(await collect(llm.stream(MESSAGES))) == wire.reply_text
    assert wire.calls("chat")[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


@needs_openai
async def test_an_explicit_key_goes_to_any_server(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-000000000")
    llm = OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url)
    assert "".join(await collect(llm.stream(MESSAGES))) == wire.reply_text
    assert wire.calls("chat")[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


# -- request ids ----------------------------------------------------------------------------
@needs_openai
async def test_openai_errors_keep_the_request_id(wire: WireServer) -> None:
    wire.script("chat", Behaviour(status=500, body={"error": {"message": "boom"}}))
    llm = OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url, max_retries=0)
    with pytest.raises(BackendError) as info:
        await collect(llm.stream(MESSAGES))
    (call,) = wire.calls("chat")
    assert call.request_id.startswith("req_") and info.value.request_id == call.request_id
    assert f"request id {call.request_id}" in str(info.value)


@needs_elevenlabs
async def test_elevenlabs_errors_keep_the_request_id(wire: WireServer) -> None:
    wire.script("el_timestamps", Behaviour(status=422, body={"detail": {"message": "bad voice"}}))
    tts = ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=wire.url)
    with pytest.raises(BackendError) as info:
        await collect(tts.stream("Hello there."))
    (call,) = wire.calls("el_timestamps")
    assert info.value.request_id == call.request_id and not info.value.retryable
    assert "bad voice" in str(info.value)


# -- clients across loops ---------------------------------------------------------------------
@needs_openai
def test_a_backend_used_from_two_event_loops_leaks_no_connection(wire: WireServer) -> None:
    llm = OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url)

    async def turn() -> str:
        return "".join([d async for d in llm.stream(MESSAGES)])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert asyncio.run(turn()) == wire.reply_text  # a loop that ends
        assert asyncio.run(turn()) == wire.reply_text  # and a new one
        asyncio.run(llm.aclose())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], caught
