"""What the OpenAI backends do to keep 50 conversations on one event loop fast (issue 19):
streams read as raw server-sent events (no SDK model per token), the HTTP stack chosen by
``LEXPERIENCE_OPENAI_HTTP`` (the SDK's aiohttp transport when installed), and the wire server's
own per-request work kept off its event loop's critical path."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import numpy as np
import pytest

from lexperience import Audio, BackendError, BackendTimeoutError, ConfigurationError, Message
from lexperience.backends import _openai_common
from lexperience.backends._openai_sse import SSEEvent, SSEParser, _checked
from lexperience.backends.openai_llm import OpenAILLM
from lexperience.backends.openai_stt import OpenAISTT
from lexperience.testing.fakes import speech_like
from lexperience.testing.wire import OPENAI_KEY, Behaviour, WireServer, tone
from lexperience.testing.wire._core import parse_multipart

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.cloud

T = TypeVar("T")
MESSAGES = [Message.system("You are a host."), Message.user("What is a black hole?")]


async def collect(stream: AsyncIterator[T]) -> list[T]:
    return [item async for item in stream]


def llm(wire: WireServer, **kw: Any) -> OpenAILLM:
    return OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url, **kw)


# -- the event-stream decoder ------------------------------------------------------------------
def test_sse_parser_joins_events_split_anywhere_across_reads() -> None:
    body = (
        b": a comment\r\n"
        b'event: response.created\r\ndata: {"a": 1}\r\n\r\n'
        b"data: line one\ndata: line two\nid: 7\nretry: 10\n\n"
        b"data: [DONE]\r\r"
    )
    parser = SSEParser()
    whole = parser.feed(body) + parser.finish()  # a last "\r" may yet be followed by "\n"
    assert whole == [
        SSEEvent("response.created", '{"a": 1}'),
        SSEEvent(None, "line one\nline two"),
        SSEEvent(None, "[DONE]"),
    ]
    for size in (1, 2, 3, 7):  # every split, "\r\n" halves included
        parser = SSEParser()
        events = [e for i in range(0, len(body), size) for e in parser.feed(body[i : i + size])]
        assert events + parser.finish() == whole, size


def test_sse_parser_hands_over_an_event_the_body_did_not_close() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"x": 1}') == []
    assert parser.finish() == [SSEEvent(None, '{"x": 1}')]
    assert parser.finish() == []


# -- no SDK model per token --------------------------------------------------------------------
async def test_a_chat_stream_builds_no_sdk_model_per_token(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own stream built a pydantic model for every chunk: ~250 µs of loop time per
    token, the largest cost at 50 conversations. The chunks are plain JSON now."""
    built: list[object] = []
    process = openai._base_client.BaseClient._process_response_data

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(kwargs.get("cast_to"))
        return process(self, *args, **kwargs)

    monkeypatch.setattr(openai._base_client.BaseClient, "_process_response_data", spy)
    deltas = await collect(llm(wire).stream(MESSAGES))
    assert "".join(deltas) == wire.reply_text and len(deltas) > 5
    assert built == []


async def test_a_transcription_stream_builds_no_sdk_model_per_event(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    process = openai._base_client.BaseClient._process_response_data
    monkeypatch.setattr(
        openai._base_client.BaseClient,
        "_process_response_data",
        lambda self, *a, **k: built.append(1) or process(self, *a, **k),
    )
    samples, _ = speech_like("what is a black hole", 16_000)
    backend = OpenAISTT(api_key=OPENAI_KEY, base_url=wire.openai_url)
    items = await collect(backend.transcribe_stream(Audio(samples, 16_000)))
    assert items[-1].text == wire.dialogue.transcript
    assert [i for i in items if isinstance(i, str)] and built == []


def test_an_error_event_inside_a_stream_is_a_retryable_error(wire: WireServer) -> None:
    """As in the SDK's stream: data holding an "error" is raised as ``openai.APIError``."""

    class Http:
        request = pytest.importorskip("httpx2").Request("GET", "http://x/")

    [event] = SSEParser().feed(b'data: {"error": {"message": "overloaded"}}\n\n')
    with pytest.raises(openai.APIError, match="overloaded"):
        _checked(event, Http())
    errors = llm(wire)._conn.errors
    with pytest.raises(BackendError, match="overloaded") as info, errors.mapped():
        _checked(event, Http())
    assert info.value.retryable


async def test_the_connection_is_reused_after_a_stream_ends(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``[DONE]`` the rest of the body is read, so the pooled connection is kept."""
    monkeypatch.setenv(_openai_common.ENV_HTTP, "httpx")
    backend = llm(wire)
    for _ in range(3):
        assert "".join(await collect(backend.stream(MESSAGES))) == wire.reply_text
    pool = backend._conn.client._client._transport._pool
    assert len(pool.connections) == 1  # one pooled connection served all three
    await backend.aclose()


# -- the HTTP stack ----------------------------------------------------------------------------
def test_the_http_stack_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_openai_common.ENV_HTTP, "httpx")
    assert _openai_common.http_stack() == "httpx"
    monkeypatch.setenv(_openai_common.ENV_HTTP, "curl")
    with pytest.raises(ConfigurationError, match="auto, aiohttp or httpx"):
        _openai_common.http_stack()
    monkeypatch.setenv(_openai_common.ENV_HTTP, "auto")
    found = _openai_common.importlib.util.find_spec("aiohttp") is not None
    assert _openai_common.http_stack() == ("aiohttp" if found else "httpx")
    monkeypatch.setenv(_openai_common.ENV_HTTP, "aiohttp")
    if not found:
        with pytest.raises(ConfigurationError, match="needs aiohttp"):
            _openai_common.http_stack()


@pytest.mark.parametrize("stack", ["httpx", "aiohttp"])
async def test_the_chosen_http_stack_reaches_the_sdk_client_and_streams(
    stack: str, wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    if stack == "aiohttp":
        pytest.importorskip("aiohttp")
    monkeypatch.setenv(_openai_common.ENV_HTTP, stack)
    backend = llm(wire)
    transport = type(backend._conn.client._client._transport).__name__
    assert transport == ("AiohttpTransport" if stack == "aiohttp" else "AsyncHTTPTransport")
    assert "".join(await collect(backend.stream(MESSAGES))) == wire.reply_text
    await backend.aclose()


async def test_aiohttp_keeps_the_error_behaviour(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiohttp")
    monkeypatch.setenv(_openai_common.ENV_HTTP, "aiohttp")
    wire.script("chat", Behaviour(stall=2.0))
    stream = llm(wire, timeout=0.3, max_retries=0).stream(MESSAGES)
    assert await stream.__anext__() == "Black"
    with pytest.raises(BackendTimeoutError):
        await collect(stream)
    wire.script("chat", Behaviour(status=429, headers={"retry-after-ms": "10"}))
    assert "".join(await collect(llm(wire, max_retries=1).stream(MESSAGES))) == wire.reply_text
    wire.script("chat", Behaviour(malformed=True))
    with pytest.raises(BackendError) as info:
        await collect(llm(wire, max_retries=0).stream(MESSAGES))
    assert info.value.retryable and not isinstance(info.value, BackendTimeoutError)


# -- the wire server's own work ------------------------------------------------------------------
def test_the_fast_multipart_parser_reads_what_the_stdlib_reads() -> None:
    httpx = pytest.importorskip("httpx2")
    wav = bytes(range(256)) * 300 + b"\r\n--not-a-boundary\r\n"
    request = httpx.Request(
        "POST", "http://x/", data={"model": "m", "stream": "true", "language": "en"},
        files={"file": ("audio.wav", wav, "audio/wav")},
    )  # fmt: skip
    body, ctype = request.read(), request.headers["content-type"]
    head = f"Content-Type: {ctype}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    expected = {
        str(p.get_param("name", header="content-disposition")): (
            p.get_filename(),
            p.get_payload(decode=True),
        )
        for p in message.iter_parts()
    }
    assert parse_multipart(body, ctype) == expected
    assert parse_multipart(body, "multipart/form-data") == {}


def test_the_simulated_voice_is_made_once_and_sliced() -> None:
    rate, freq = 24_000, 220.0
    for seconds in (0.01, 1.0, 7.3, 31.0, 70.0):
        n = int(seconds * rate)
        t = np.arange(n) / rate
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 3 * freq * t)
        assert np.array_equal(tone(seconds, rate, freq), (wave * 32767).astype("<i2"))
    assert not tone(1.0, rate, freq).flags.writeable
    assert np.shares_memory(tone(1.0, rate, freq), tone(2.0, rate, freq))


async def test_many_concurrent_chat_streams_all_complete(wire: WireServer) -> None:
    backends = [llm(wire) for _ in range(20)]
    texts = await asyncio.gather(*(collect(b.stream(MESSAGES)) for b in backends))
    assert all("".join(t) == wire.reply_text for t in texts)
    for b in backends:
        await b.aclose()


async def test_aiohttp_reports_a_refused_connection_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's aiohttp transport raises a refused connection as ``ConnectTimeout``."""
    pytest.importorskip("aiohttp")
    import socket

    monkeypatch.setenv(_openai_common.ENV_HTTP, "aiohttp")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAILLM(api_key=OPENAI_KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(BackendError, match="could not reach") as info:
        await collect(backend.stream(MESSAGES))
    assert info.value.retryable and not isinstance(info.value, BackendTimeoutError)
