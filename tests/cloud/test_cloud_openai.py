"""OpenAI STT, LLM and TTS against the local wire server, through the official SDK."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import TypeVar

import numpy as np
import pytest

from lexperience import (
    Audio,
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    Message,
    RateLimitError,
)
from lexperience.backends.openai_llm import OpenAILLM
from lexperience.backends.openai_stt import OpenAISTT
from lexperience.backends.openai_tts import OpenAITTS
from lexperience.testing.fakes import speech_like
from lexperience.testing.wire import OPENAI_KEY, Behaviour, WireServer, tone

pytest.importorskip("openai")

pytestmark = pytest.mark.cloud

T = TypeVar("T")

MESSAGES = [Message.system("You are a host."), Message.user("What is a black hole?")]


def question() -> Audio:
    samples, _ = speech_like("what is a black hole", 48_000)
    return Audio(samples, 48_000)


def stt(wire: WireServer, **kw: object) -> OpenAISTT:
    return OpenAISTT(api_key=OPENAI_KEY, base_url=wire.openai_url, **kw)  # type: ignore[arg-type]


def llm(wire: WireServer, **kw: object) -> OpenAILLM:
    return OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url, **kw)  # type: ignore[arg-type]


def tts(wire: WireServer, **kw: object) -> OpenAITTS:
    return OpenAITTS(api_key=OPENAI_KEY, base_url=wire.openai_url, **kw)  # type: ignore[arg-type]


async def collect(stream: AsyncIterator[T]) -> list[T]:
    return [item async for item in stream]


# -- STT --------------------------------------------------------------------------------------
async def test_stt_whisper_sends_a_16k_wav_with_language_and_prompt(wire: WireServer) -> None:
    backend = stt(wire, model="whisper-1", prompt="Slow Signals, Wren Calloway")
    assert backend.stream is False  # whisper-1 does not stream
    transcript = await backend.transcribe(question(), language="en")
    assert transcript.text == "What is a black hole?"
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(question().duration)
    (call,) = wire.calls("transcribe")
    fields = {k: v[1].decode() for k, v in call.form.items() if k != "file"}
    assert fields["model"] == "whisper-1"
    assert fields["language"] == "en"
    assert fields["prompt"] == "Slow Signals, Wren Calloway"
    assert "stream" not in fields
    filename, wav = call.form["file"]
    assert filename == "audio.wav"
    uploaded = Audio.load(wav)
    assert uploaded.sample_rate == 16_000  # resampled from 48 kHz before upload
    assert uploaded.duration == pytest.approx(question().duration, abs=0.01)
    await backend.aclose()


async def test_stt_streams_partials_for_gpt4o_models(wire: WireServer) -> None:
    partials: list[str] = []

    async def on_partial(delta: str) -> None:
        partials.append(delta)

    backend = stt(wire, on_partial=on_partial)
    assert backend.model == "gpt-4o-mini-transcribe" and backend.stream is True
    transcript = await backend.transcribe(question())
    assert transcript.text == "What is a black hole?"
    assert partials == ["What", " is", " a", " black", " hole?"]
    (call,) = wire.calls("transcribe")
    assert call.form["stream"][1] == b"true"
    assert call.form["model"][1] == b"gpt-4o-mini-transcribe"


async def test_stt_partials_become_events_of_the_turn(wire: WireServer) -> None:
    from lexperience import Conversation, PartialTranscript, StreamingSTT, TranscriptEvent
    from lexperience.testing import FakeLLM, FakeTTS

    backend = stt(wire)
    assert isinstance(backend, StreamingSTT)
    conv = Conversation(stt=backend, llm=FakeLLM(), tts=FakeTTS())
    events = [e async for e in conv.stream(question())]
    partials = [e.text for e in events if isinstance(e, PartialTranscript)]
    assert partials == ["What", "What is", "What is a", "What is a black", "What is a black hole?"]
    final = next(e for e in events if isinstance(e, TranscriptEvent))
    assert final.transcript.text == "What is a black hole?"
    assert events.index(final) > max(i for i, e in enumerate(events)
                                      if isinstance(e, PartialTranscript))  # fmt: skip
    await backend.aclose()


async def test_stt_malformed_stream_is_a_retryable_error(wire: WireServer) -> None:
    wire.script("transcribe", Behaviour(malformed=True))
    with pytest.raises(BackendError) as info:
        await stt(wire, max_retries=0).transcribe(question())
    assert info.value.retryable and info.value.stage == "stt" and info.value.backend == "openai"


async def test_stt_malformed_json_body_is_a_retryable_error(wire: WireServer) -> None:
    wire.script("transcribe", Behaviour(malformed=True))
    with pytest.raises(BackendError) as info:
        await stt(wire, model="whisper-1", max_retries=0).transcribe(question())
    assert info.value.retryable
    assert "malformed" in str(info.value)


# -- LLM --------------------------------------------------------------------------------------
async def test_llm_streams_the_first_delta_before_the_reply_ends(wire: WireServer) -> None:
    gate = threading.Event()
    wire.script("chat", Behaviour(gate=gate))
    backend = llm(wire, model="llama3.2", temperature=0.3, extra_body={"top_k": 40})
    stream = backend.stream(MESSAGES, max_tokens=120)
    first = await asyncio.wait_for(stream.__anext__(), 5)
    assert first == "Black"
    assert not wire.calls("chat")[0].finished  # the server still holds the rest of the reply
    gate.set()
    rest = [delta async for delta in stream]
    assert first + "".join(rest) == wire.reply_text
    body = wire.calls("chat")[0].json()
    assert body["model"] == "llama3.2" and body["stream"] is True
    assert body["messages"] == [m.to_openai() for m in MESSAGES]
    assert body["temperature"] == 0.3 and body["top_k"] == 40
    assert body["max_tokens"] == 120  # a local server reads max_tokens
    assert "max_completion_tokens" not in body


async def test_llm_names_the_limit_max_completion_tokens_for_openai() -> None:
    backend = OpenAILLM(api_key=OPENAI_KEY)
    assert backend.max_tokens_param == "max_completion_tokens"


async def test_llm_retries_a_429_then_succeeds(wire: WireServer) -> None:
    wire.script("chat", Behaviour(status=429, headers={"retry-after-ms": "10"}))
    text = "".join(await collect(llm(wire, max_retries=2).stream(MESSAGES)))
    assert text == wire.reply_text
    assert len(wire.calls("chat")) == 2


async def test_llm_rate_limit_without_retries_left_is_a_rate_limit_error(wire: WireServer) -> None:
    wire.script("chat", Behaviour(status=429))
    with pytest.raises(RateLimitError) as info:
        await collect(llm(wire, max_retries=0).stream(MESSAGES))
    assert info.value.retryable and info.value.status == 429


async def test_llm_500_is_retryable_after_the_sdk_retries(wire: WireServer) -> None:
    wire.script(
        "chat",
        Behaviour(status=500, headers={"retry-after-ms": "10"}),
        Behaviour(status=500, headers={"retry-after-ms": "10"}),
    )
    with pytest.raises(BackendError) as info:
        await collect(llm(wire, max_retries=1).stream(MESSAGES))
    assert info.value.status == 500 and info.value.retryable
    assert len(wire.calls("chat")) == 2


async def test_llm_mid_stream_stall_times_out(wire: WireServer) -> None:
    wire.script("chat", Behaviour(stall=2.0))
    stream = llm(wire, timeout=0.3, max_retries=0).stream(MESSAGES)
    assert await stream.__anext__() == "Black"
    started = asyncio.get_running_loop().time()
    with pytest.raises(BackendTimeoutError) as info:
        await collect(stream)
    assert asyncio.get_running_loop().time() - started < 1.5
    assert info.value.retryable and info.value.stage == "llm"


async def test_llm_hang_before_headers_times_out(wire: WireServer) -> None:
    wire.script("chat", Behaviour(delay=2.0))
    with pytest.raises(BackendTimeoutError):
        await collect(llm(wire, timeout=0.3, max_retries=0).stream(MESSAGES))


async def test_llm_malformed_sse_is_a_retryable_error(wire: WireServer) -> None:
    wire.script("chat", Behaviour(malformed=True))
    with pytest.raises(BackendError) as info:
        await collect(llm(wire, max_retries=0).stream(MESSAGES))
    assert info.value.retryable
    assert not isinstance(info.value, BackendTimeoutError)


async def test_llm_bad_key_is_an_authentication_error_without_retries(wire: WireServer) -> None:
    backend = OpenAILLM(api_key="sk-wrong-key-000000", base_url=wire.openai_url)
    with pytest.raises(AuthenticationError) as info:
        await collect(backend.stream(MESSAGES))
    assert info.value.status == 401 and not info.value.retryable
    assert "Incorrect API key" in str(info.value)
    assert "sk-wrong-key-000000" not in str(info.value)
    assert len(wire.calls("chat")) == 1  # 401 is never retried


async def test_llm_responses_api_streams_output_text(wire: WireServer) -> None:
    backend = llm(wire, api="responses", model="gpt-5.4-mini")
    text = "".join(await collect(backend.stream(MESSAGES, max_tokens=200)))
    assert text == wire.reply_text
    body = wire.calls("responses")[0].json()
    assert body["stream"] is True and body["max_output_tokens"] == 200
    assert body["input"][0] == {"role": "developer", "content": "You are a host."}
    assert body["input"][1] == {"role": "user", "content": "What is a black hole?"}


async def test_llm_responses_failure_event_is_an_error(wire: WireServer) -> None:
    wire.script("responses", Behaviour(options={"fail": "server_error"}))
    with pytest.raises(BackendError) as info:
        await collect(llm(wire, api="responses").stream(MESSAGES))
    assert info.value.retryable and "it broke" in str(info.value)


# -- TTS --------------------------------------------------------------------------------------
async def test_tts_streams_24k_pcm_first_chunk_before_the_end(wire: WireServer) -> None:
    gate = threading.Event()
    wire.script("speech", Behaviour(gate=gate))
    backend = tts(wire, voice="coral", instructions="Speak warmly.")
    assert backend.sample_rate == 24_000
    text = "Black holes are regions where gravity wins."
    stream = backend.stream(text)
    first = await asyncio.wait_for(stream.__anext__(), 5)
    assert first.sample_rate == 24_000 and first.duration > 0
    assert not wire.calls("speech")[0].finished
    gate.set()
    chunks = [first, *[c async for c in stream]]
    samples = np.concatenate([c.samples for c in chunks])
    expected = tone(len(text) * 0.03, 24_000).astype(np.float32) / 32768.0
    np.testing.assert_allclose(samples, expected, atol=1e-6)
    body = wire.calls("speech")[0].json()
    assert body == {
        "model": "gpt-4o-mini-tts",
        "voice": "coral",
        "input": text,
        "response_format": "pcm",
        "instructions": "Speak warmly.",
    }


async def test_tts_body_cut_short_is_a_retryable_error(wire: WireServer) -> None:
    wire.script("speech", Behaviour(cut=True))
    with pytest.raises(BackendError) as info:
        await collect(tts(wire, max_retries=0).stream("A sentence long enough to be cut short."))
    assert info.value.retryable and info.value.stage == "tts"


async def test_tts_retries_a_503_then_speaks(wire: WireServer) -> None:
    wire.script("speech", Behaviour(status=503, headers={"retry-after-ms": "10"}))
    chunks = await collect(tts(wire).stream("Hello there."))
    assert chunks and len(wire.calls("speech")) == 2


async def test_stt_prepares_a_long_clip_off_the_event_loop(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: dict[str, list[int]] = {"resample": [], "wav": []}
    resample, to_wav = Audio.resample, Audio.to_wav_bytes

    def spy_resample(self: Audio, rate: int) -> Audio:
        threads["resample"].append(threading.get_ident())
        return resample(self, rate)

    def spy_wav(self: Audio) -> bytes:
        threads["wav"].append(threading.get_ident())
        return to_wav(self)

    monkeypatch.setattr(Audio, "resample", spy_resample)
    monkeypatch.setattr(Audio, "to_wav_bytes", spy_wav)
    loop_thread = threading.get_ident()
    backend = stt(wire, model="whisper-1")
    await backend.transcribe(question())  # ~1.6 s at 48 kHz: resampled and encoded in a thread
    assert threads["resample"] and threads["wav"]
    assert loop_thread not in threads["resample"] + threads["wav"]
    threads["resample"].clear()
    threads["wav"].clear()
    await backend.transcribe(Audio(np.zeros(1_000, dtype=np.float32), 16_000))  # tiny: inline
    assert threads["wav"] == [loop_thread]
