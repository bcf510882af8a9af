"""API keys: read from the argument or the environment, required where the service needs one, and
never shown in reprs, error messages, tracebacks or logs."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from lexperience import AudioChunk, AuthenticationError, Message, MissingCredentialsError
from lexperience.backends._cloud import Secret
from lexperience.backends.elevenlabs_tts import ElevenLabsTTS
from lexperience.backends.openai_llm import OpenAILLM
from lexperience.backends.openai_stt import OpenAISTT
from lexperience.backends.openai_tts import OpenAITTS
from lexperience.backends.replicate_avatar import ReplicateAvatar
from lexperience.testing.wire import OPENAI_KEY, WireServer

pytestmark = pytest.mark.cloud

WRONG = {
    "openai": "sk-leak-check-OPENAI-9f8e7d6c5b4a",
    "elevenlabs": "el-leak-check-ELEVEN-9f8e7d6c5b4a",
    "replicate": "r8_leak-check-REPLICATE-9f8e7d6c5b4a",
}


@pytest.mark.parametrize(
    ("factory", "env"),
    [
        (lambda: OpenAISTT(), "OPENAI_API_KEY"),
        (lambda: OpenAILLM(), "OPENAI_API_KEY"),
        (lambda: OpenAITTS(), "OPENAI_API_KEY"),
        (lambda: ElevenLabsTTS(), "ELEVENLABS_API_KEY"),
    ],
    ids=["openai-stt", "openai-llm", "openai-tts", "elevenlabs"],
)
def test_missing_key_names_the_environment_variable(factory: object, env: str) -> None:
    with pytest.raises(MissingCredentialsError, match=env) as info:
        factory()  # type: ignore[operator]
    assert info.value.env_var == env


def test_replicate_needs_a_token(portrait: Path) -> None:
    with pytest.raises(MissingCredentialsError, match="REPLICATE_API_TOKEN"):
        ReplicateAvatar(portrait=portrait)


def test_a_local_openai_compatible_server_needs_no_key() -> None:
    llm = OpenAILLM(base_url="http://localhost:11434/v1", model="llama3.2")
    assert llm.max_tokens_param == "max_tokens"


async def test_keys_come_from_the_environment(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", wire.openai_url)
    text = "".join([d async for d in OpenAILLM().stream([Message.user("hi")])])
    assert text == wire.reply_text
    assert wire.calls("chat")[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_reprs_never_show_keys(portrait: Path) -> None:
    backends = [
        OpenAISTT(api_key=WRONG["openai"]),
        OpenAILLM(api_key=WRONG["openai"]),
        OpenAITTS(api_key=WRONG["openai"]),
        ElevenLabsTTS(api_key=WRONG["elevenlabs"]),
        ReplicateAvatar(api_token=WRONG["replicate"], portrait=portrait),
        ReplicateAvatar(api_key=WRONG["replicate"], portrait=portrait),
    ]
    for backend in backends:
        parts = [repr(backend), str(backend), repr(vars(backend))]
        for value in vars(backend).values():  # one level down too: connections, error mappers
            parts.append(repr(value))
            parts.append(repr(getattr(value, "__dict__", "")))
        shown = " ".join(parts)
        assert not any(key in shown for key in WRONG.values()), shown
    secret = Secret("abc-secret")
    assert "abc-secret" not in repr(secret) + str(secret) + f"{secret}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


async def test_errors_tracebacks_and_logs_never_show_keys(
    wire: WireServer, portrait: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for sdk in ("openai", "elevenlabs", "replicate"):
        pytest.importorskip(sdk)
    caplog.set_level(logging.DEBUG)

    async def llm() -> None:
        backend = OpenAILLM(api_key=WRONG["openai"], base_url=wire.openai_url)
        _ = [d async for d in backend.stream([Message.user("hi")])]

    async def tts() -> None:
        backend = ElevenLabsTTS(api_key=WRONG["elevenlabs"], base_url=wire.url)
        _ = [c async for c in backend.stream("Hello there.")]

    async def avatar() -> None:
        backend = ReplicateAvatar(
            api_token=WRONG["replicate"], base_url=wire.url, portrait=portrait
        )

        async def audio() -> AsyncIterator[AudioChunk]:
            yield AudioChunk(np.full(3200, 0.1, dtype=np.float32), 16_000)

        _ = [f async for f in backend.animate(audio())]

    errors: list[AuthenticationError] = []
    for call in (llm, tts, avatar):
        with pytest.raises(AuthenticationError) as info:
            await call()
        errors.append(info.value)
    assert [e.backend for e in errors] == ["openai", "elevenlabs", "replicate"]
    for err in errors:
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        text += repr(err) + str(err)
        assert not any(key in text for key in WRONG.values()), text
    assert caplog.records  # the SDKs did log at DEBUG
    assert not any(key in caplog.text for key in WRONG.values())
