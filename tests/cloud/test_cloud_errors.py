"""SDK failures not covered elsewhere, each mapped to its typed error with the key scrubbed:
through the wire server where it can produce them, and through the error mapper with the real
SDK exception classes where it cannot (or to put a key in their text)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from lexperience import BackendError, BackendTimeoutError, Message
from lexperience.backends._cloud import ErrorMapper, Secret
from lexperience.backends.elevenlabs_tts import ElevenLabsTTS
from lexperience.backends.openai_llm import OpenAILLM
from lexperience.testing.wire import ELEVENLABS_KEY, OPENAI_KEY, Behaviour, WireServer

pytestmark = pytest.mark.cloud

KEY = "sk-secret-0123456789abcdefghij"
MESSAGES = [Message.user("What is a black hole?")]


def mapper(stage: str = "llm") -> ErrorMapper:
    return ErrorMapper(service="TestService", backend="test", stage=stage, secrets=(Secret(KEY),))


def translated(exc: BaseException) -> BackendError:
    err = mapper().translate(exc)
    assert err is not None, f"{type(exc).__name__} was not mapped"
    assert KEY not in str(err) and KEY not in repr(err), str(err)
    return err


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once it is closed


# -- OpenAI ---------------------------------------------------------------------------------
async def test_a_content_filter_finish_reason_is_a_final_error(wire: WireServer) -> None:
    pytest.importorskip("openai")
    wire.script("chat", Behaviour(options={"finish_reason": "content_filter"}))
    llm = OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url)
    deltas: list[str] = []
    with pytest.raises(BackendError, match="content filter") as info:
        async for delta in llm.stream(MESSAGES):
            deltas.append(delta)
    assert deltas  # what came before the filter stopped it was yielded
    assert not info.value.retryable and info.value.stage == "llm"
    assert len(wire.calls("chat")) == 1  # not retried


async def test_an_unreachable_server_is_a_retryable_connection_error() -> None:
    pytest.importorskip("openai")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    llm = OpenAILLM(api_key=KEY, base_url=url, max_retries=0)
    with pytest.raises(BackendError, match="could not reach") as info:
        await collect(llm.stream(MESSAGES))
    assert info.value.retryable and info.value.status is None
    assert KEY not in str(info.value)


def test_openai_connection_and_status_errors_are_mapped_without_the_key() -> None:
    openai = pytest.importorskip("openai")
    httpx2 = pytest.importorskip("httpx2")
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    err = translated(openai.APIConnectionError(message=f"boom {KEY}", request=request))
    assert err.retryable and err.status is None
    response = httpx2.Response(
        418, request=request, headers={"x-request-id": "req_42"}, json={"error": {"message": KEY}}
    )
    err = translated(
        openai.APIStatusError(f"teapot {KEY}", response=response, body={"error": {"message": KEY}})
    )
    assert err.status == 418 and not err.retryable and err.request_id == "req_42"
    err = translated(openai.APITimeoutError(request=request))
    assert isinstance(err, BackendTimeoutError)


# -- ElevenLabs -----------------------------------------------------------------------------
async def test_a_websocket_dropped_without_a_close_frame_is_retryable(wire: WireServer) -> None:
    pytest.importorskip("elevenlabs")
    pytest.importorskip("websockets")
    wire.script("el_ws", Behaviour(options={"drop": True}))
    tts = ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=wire.url, mode="websocket")
    with pytest.raises(BackendError, match="1006") as info:
        await collect(tts.stream("Black holes bend light."))
    assert info.value.retryable and info.value.stage is not None


def test_an_elevenlabs_error_without_a_status_code() -> None:
    pytest.importorskip("elevenlabs")
    from elevenlabs.core.api_error import ApiError

    err = translated(
        ApiError(
            status_code=None,
            headers={"request-id": "el-7"},
            body={"detail": {"message": f"odd {KEY}"}},
        )
    )
    assert err.status is None and err.retryable and err.request_id == "el-7"
    assert "odd ***" in str(err)


def test_websocket_close_codes() -> None:
    websockets = pytest.importorskip("websockets")
    from websockets.frames import Close

    dropped = websockets.exceptions.ConnectionClosedError(None, None)
    err = translated(dropped)
    assert err.retryable and "1006" in str(err)
    refused = websockets.exceptions.ConnectionClosedError(Close(1008, f"bad key {KEY}"), None)
    err = translated(refused)
    assert not err.retryable and "bad key ***" in str(err)


# -- Replicate ------------------------------------------------------------------------------
def test_a_replicate_model_error_is_final_and_redacted() -> None:
    pytest.importorskip("replicate")
    from replicate.exceptions import ModelError

    err = translated(ModelError(SimpleNamespace(error=f"CUDA out of memory near {KEY}")))  # type: ignore[arg-type]
    assert not err.retryable and err.stage == "llm"
    assert "the TestService model failed: CUDA out of memory near ***" in str(err)


def test_a_replicate_error_without_a_status_code() -> None:
    pytest.importorskip("replicate")
    from replicate.exceptions import ReplicateError

    err = translated(ReplicateError(detail=f"something odd with {KEY}"))
    assert err.status is None and not err.retryable
    assert "something odd with ***" in str(err)


def test_replicate_status_errors_carry_the_request_id_of_their_answer() -> None:
    pytest.importorskip("replicate")
    from replicate.exceptions import ReplicateError

    exc = ReplicateError(status=503, detail="busy")
    exc.request_id = "rep-9"  # type: ignore[attr-defined]  # what tag_request_id() attaches
    err = translated(exc)
    assert err.status == 503 and err.retryable and err.request_id == "rep-9"


# -- httpx ----------------------------------------------------------------------------------
@pytest.mark.parametrize("module_name", ["httpx", "httpx2"])
def test_httpx_invalid_urls_and_transport_errors(module_name: str) -> None:
    httpx = pytest.importorskip(module_name)
    err = translated(httpx.InvalidURL(f"bad host in https://x.invalid/?key={KEY}"))
    assert not err.retryable and "bad TestService URL" in str(err)
    err = translated(httpx.ConnectError(f"refused {KEY}"))
    assert err.retryable and err.status is None
    err = translated(httpx.ReadTimeout(f"slow {KEY}"))
    assert isinstance(err, BackendTimeoutError)
    err = translated(httpx.RemoteProtocolError(f"cut {KEY}"))
    assert err.retryable and "malformed or truncated" in str(err)
