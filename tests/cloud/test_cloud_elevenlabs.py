"""ElevenLabs TTS (HTTP with-timestamps, plain stream, stream-input websocket) against the local
wire server, through the official SDK and the websockets client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest

from lexperience import (
    AudioChunk,
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    RateLimitError,
)
from lexperience.backends.elevenlabs_tts import ElevenLabsTTS
from lexperience.testing.wire import (
    ELEVENLABS_KEY,
    ELEVENLABS_VOICE_HZ,
    SECONDS_PER_CHAR,
    Behaviour,
    WireServer,
    tone,
)
from lexperience.visemes import cues_from_characters

pytest.importorskip("elevenlabs")
pytest.importorskip("websockets")

pytestmark = pytest.mark.cloud

TEXT = "Black holes bend light. They shape galaxies."


def tts(wire: WireServer, **kw: object) -> ElevenLabsTTS:
    return ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=wire.url, **kw)  # type: ignore[arg-type]


async def collect(stream: AsyncIterator[AudioChunk]) -> list[AudioChunk]:
    return [chunk async for chunk in stream]


def expected_samples(text: str, rate: int) -> np.ndarray:
    return (
        tone(len(text) * SECONDS_PER_CHAR, rate, ELEVENLABS_VOICE_HZ).astype(np.float32) / 32768.0
    )


def absolute_cues(chunks: list[AudioChunk]) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    offset = 0.0
    for chunk in chunks:
        for cue in chunk.visemes:
            assert 0.0 <= cue.start < cue.end <= chunk.duration + 1e-9  # relative to its chunk
            out.append((offset + cue.start, offset + cue.end, cue.viseme))
        offset += chunk.duration
    return out


def merged(cues: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    for start, end, vis in cues:
        if out and out[-1][2] == vis and abs(out[-1][1] - start) < 2e-3:
            out[-1] = (out[-1][0], end, vis)
        else:
            out.append((start, end, vis))
    return out


def reference_cues(text: str) -> list[tuple[float, float, str]]:
    n = len(text)
    cues = cues_from_characters(
        list(text), [i * SECONDS_PER_CHAR for i in range(n)],
        [(i + 1) * SECONDS_PER_CHAR for i in range(n)],
    )  # fmt: skip
    return [(c.start, c.end, c.viseme) for c in cues]


def assert_cues_match(
    got: list[tuple[float, float, str]], want: list[tuple[float, float, str]]
) -> None:
    got, want = merged(got), merged(want)
    assert [g[2] for g in got] == [w[2] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g[0] == pytest.approx(w[0], abs=2e-3) and g[1] == pytest.approx(w[1], abs=2e-3)


# -- HTTP with timestamps ---------------------------------------------------------------------
@pytest.mark.parametrize("relative", [False, True], ids=["absolute-times", "chunk-times"])
async def test_http_stream_gives_pcm_and_chunk_relative_visemes(
    wire: WireServer, relative: bool
) -> None:
    wire.script("el_timestamps", Behaviour(options={"relative_times": relative}))
    backend = tts(wire, voice="voice-123", output_format="pcm_16000",
                  voice_settings={"stability": 0.4}, language_code="en")  # fmt: skip
    assert backend.sample_rate == 16_000
    chunks = await collect(backend.stream(TEXT))
    assert len(chunks) >= 3 and all(c.sample_rate == 16_000 and c.text == TEXT for c in chunks)
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(samples, expected_samples(TEXT, 16_000), atol=1e-6)
    assert_cues_match(absolute_cues(chunks), reference_cues(TEXT))
    (call,) = wire.calls("el_timestamps")
    assert call.path == "/v1/text-to-speech/voice-123/stream/with-timestamps"
    assert call.query["output_format"] == "pcm_16000"
    assert call.headers["xi-api-key"] == ELEVENLABS_KEY
    body = call.json()
    assert body["text"] == TEXT and body["model_id"] == "eleven_flash_v2_5"
    assert body["language_code"] == "en" and body["voice_settings"]["stability"] == 0.4


async def test_http_first_chunk_arrives_before_the_end(wire: WireServer) -> None:
    gate = threading.Event()
    wire.script("el_timestamps", Behaviour(gate=gate))
    stream = tts(wire).stream(TEXT)
    first = await asyncio.wait_for(stream.__anext__(), 5)
    assert first.duration > 0 and first.visemes
    assert not wire.calls("el_timestamps")[0].finished
    gate.set()
    rest = await collect(stream)
    assert sum(c.duration for c in [first, *rest]) == pytest.approx(
        len(TEXT) * SECONDS_PER_CHAR, abs=1e-3
    )


async def test_plain_stream_without_alignment(wire: WireServer) -> None:
    chunks = await collect(tts(wire, alignment=False, output_format="pcm_22050").stream(TEXT))
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(samples, expected_samples(TEXT, 22_050), atol=1e-6)
    assert all(not c.visemes for c in chunks)
    assert len(wire.calls("el_stream")) == 1


async def test_http_retries_a_429_before_the_first_chunk(wire: WireServer) -> None:
    wire.script(
        "el_timestamps",
        Behaviour(status=429, headers={"retry-after": "0"},
                  body={"detail": {"status": "too_many_concurrent_requests", "message": "busy"}}),
    )  # fmt: skip
    chunks = await collect(tts(wire).stream(TEXT))
    assert chunks and len(wire.calls("el_timestamps")) == 2


async def test_http_429_without_retries_left_is_a_rate_limit_error(wire: WireServer) -> None:
    wire.script("el_timestamps", Behaviour(status=429, body={"detail": {"message": "busy"}}))
    with pytest.raises(RateLimitError) as info:
        await collect(tts(wire, max_retries=0).stream(TEXT))
    assert info.value.status == 429 and "busy" in str(info.value)


async def test_http_500_is_a_retryable_backend_error(wire: WireServer) -> None:
    wire.script("el_timestamps", Behaviour(status=500), Behaviour(status=500))
    with pytest.raises(BackendError) as info:
        await collect(tts(wire, max_retries=1).stream(TEXT))
    assert info.value.status == 500 and info.value.retryable and info.value.stage == "tts"
    assert len(wire.calls("el_timestamps")) == 2


async def test_http_stall_mid_stream_times_out(wire: WireServer) -> None:
    wire.script("el_timestamps", Behaviour(stall=2.0))
    stream = tts(wire, timeout=0.3, max_retries=0).stream(TEXT)
    await stream.__anext__()
    with pytest.raises(BackendTimeoutError):
        await collect(stream)


async def test_http_skipped_ndjson_lines_are_detected(wire: WireServer) -> None:
    # The SDK silently drops lines it cannot parse; the audio then ends short.
    wire.script("el_timestamps", Behaviour(malformed=True))
    with pytest.raises(BackendError) as info:
        await collect(tts(wire, max_retries=0).stream(TEXT))
    assert info.value.retryable and "lost" in str(info.value)


async def test_http_bad_key_is_an_authentication_error(wire: WireServer) -> None:
    backend = ElevenLabsTTS(api_key="el-wrong-key-1234567", base_url=wire.url)
    with pytest.raises(AuthenticationError) as info:
        await collect(backend.stream(TEXT))
    assert info.value.status == 401 and not info.value.retryable
    assert "Invalid API key" in str(info.value) and "el-wrong-key-1234567" not in str(info.value)
    assert len(wire.calls("el_timestamps")) == 1


def test_only_raw_pcm_formats_are_accepted() -> None:
    with pytest.raises(ConfigurationError, match="pcm_"):
        ElevenLabsTTS(api_key=ELEVENLABS_KEY, output_format="mp3_44100_128")  # type: ignore[arg-type]


# -- websocket stream-input -------------------------------------------------------------------
async def test_websocket_streams_text_in_and_audio_out(wire: WireServer) -> None:
    backend = tts(wire, mode="websocket", output_format="pcm_16000")
    assert backend.websocket_url == wire.ws_url
    more_text = asyncio.Event()

    async def llm_deltas() -> AsyncIterator[str]:
        yield "Black holes "
        yield "bend light. "
        await more_text.wait()  # the rest of the reply is not written yet
        yield "They shape"
        yield " galaxies."

    stream = backend.stream_text(llm_deltas())
    first = await asyncio.wait_for(stream.__anext__(), 5)  # audio while text is still due
    assert first.sample_rate == 16_000 and first.visemes and first.text is None
    more_text.set()
    chunks = [first, *await collect(stream)]
    spoken = [m["text"] for m in wire.ws_messages if m.get("text", "").strip()]
    assert "".join(spoken).split() == TEXT.split()
    assert wire.ws_messages[0]["text"] == " " and "generation_config" in wire.ws_messages[0]
    assert wire.ws_messages[-1] == {"text": ""}
    assert any(m.get("flush") for m in wire.ws_messages)
    total = sum(len(t) for t in spoken) * SECONDS_PER_CHAR
    assert sum(c.duration for c in chunks) == pytest.approx(total, abs=0.01)
    (call,) = wire.calls("el_ws")
    assert call.query["model_id"] == "eleven_flash_v2_5"
    assert call.query["output_format"] == "pcm_16000"


async def test_websocket_mode_serves_the_tts_protocol(wire: WireServer) -> None:
    chunks = await collect(tts(wire, mode="websocket").stream(TEXT))
    assert chunks and all(c.text == TEXT for c in chunks)
    assert absolute_cues(chunks)


async def test_websocket_bad_key_is_refused(wire: WireServer) -> None:
    backend = ElevenLabsTTS(api_key="el-wrong-key-1234567", base_url=wire.url, mode="websocket")
    with pytest.raises(BackendError) as info:
        await collect(backend.stream(TEXT))
    assert not info.value.retryable and "el-wrong-key-1234567" not in str(info.value)


async def test_websocket_error_message_is_raised(wire: WireServer) -> None:
    wire.script("el_ws", Behaviour(options={"error": True}))
    with pytest.raises(BackendError, match="quota exceeded") as info:
        await collect(tts(wire, mode="websocket").stream(TEXT))
    assert not info.value.retryable
